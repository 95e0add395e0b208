// A job's frames in the page: compact per-frame columns, and the panels that describe them.

import { ask } from "./api.js";
import { actionButton, badge, h, notify } from "./dom.js";
import { clock, duration, seconds } from "./format.js";
import { CODE, STATES } from "./grid.js";

const MAX_REASONS = 20;
const MAX_RANGES = 8;

/** Per-frame columns, indexed by `number - frame_start`. */
export class Frames {
  constructor(count, first) {
    this.first = first;
    this.count = count;
    this.id = new Int32Array(count);
    this.chunk = new Int32Array(count);
    this.client = new Int32Array(count);
    this.attempts = new Uint16Array(count);
    this.time = new Float64Array(count).fill(NaN);
    this.started = new Float64Array(count);
    this.finished = new Float64Array(count);
    this.errors = new Map();
  }

  apply(row, grid) {
    const i = row.number - this.first;
    if (i < 0 || i >= this.count) return false;
    this.id[i] = row.id;
    this.chunk[i] = row.chunk_id;
    this.client[i] = row.client_id || 0;
    this.attempts[i] = row.attempts || 0;
    this.time[i] = row.render_time ?? NaN;
    this.started[i] = row.started_at || 0;
    this.finished[i] = row.finished_at || 0;
    if (row.status === "failed") this.errors.set(i, row.error || "");
    else this.errors.delete(i);
    grid.set(i, CODE[row.status] ?? 255);
    return true;
  }

  /** The index of the most recently finished done frame, or -1. */
  latestDone(grid) {
    let best = -1;
    for (let i = 0; i < this.count; i += 1) {
      if (grid.codes[i] === CODE.done && (best < 0 || this.finished[i] > this.finished[best])) best = i;
    }
    return best;
  }
}

/** Consecutive indices as [first, last] pairs. */
export function toRanges(indices) {
  const out = [];
  for (const i of indices) {
    const last = out[out.length - 1];
    if (last && last[1] === i - 1) last[1] = i;
    else out.push([i, i]);
  }
  return out;
}

/** Failed frames grouped by reason, as ranges ("52–300"): readable at any size. */
export function failureList(frames, select) {
  const groups = new Map();
  for (const [i, error] of [...frames.errors.entries()].sort((a, b) => a[0] - b[0])) {
    const key = error || "no reason given";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(i);
  }
  return [
    h("h2", `Failed frames (${frames.errors.size})`),
    h("ul", [...groups].slice(0, MAX_REASONS).map(([reason, indices]) => {
      const ranges = toRanges(indices);
      return h("li",
        ranges.slice(0, MAX_RANGES).map(([a, b]) => {
          const label = a === b ? `${frames.first + a}` : `${frames.first + a}–${frames.first + b}`;
          const link = h("button.link", { type: "button", title: "show this frame" }, label);
          link.addEventListener("click", () => select(a));
          return [link, " "];
        }),
        ranges.length > MAX_RANGES ? `and ${ranges.length - MAX_RANGES} more ranges ` : null,
        h("div.reason", reason));
    })),
    groups.size > MAX_REASONS ? h("p.hint", `and ${groups.size - MAX_REASONS} more reasons`) : null,
  ];
}

/** What the page knows of frame `i` without asking: for the tooltip. */
export function frameSummary(frames, code, i, nodeName) {
  const lines = [`Frame ${frames.first + i} · ${STATES[code] || "unknown"}`];
  if (frames.client[i]) lines.push(`node ${nodeName(frames.client[i])}`);
  if (!Number.isNaN(frames.time[i])) lines.push(`render time ${seconds(frames.time[i])}`);
  lines.push(`${frames.attempts[i]} attempt${frames.attempts[i] === 1 ? "" : "s"}`);
  if (frames.errors.has(i)) lines.push(frames.errors.get(i));
  return lines;
}

/** How much of a frame in flight is done (0–1) by its `live` progress, or null if unknown. */
export function liveFraction(live) {
  if (!live) return null;
  if (live.phase === "loading" || live.phase === "synchronizing") return 0;
  if (live.phase === "compositing" || live.phase === "saving") return 1;
  if (live.total > 0 && live.samples !== null && live.samples !== undefined) {
    return Math.min(1, live.samples / live.total);
  }
  return null;
}

/** A frame in flight, in words: "rendering · 64/128 samples · 12 s left". */
export function liveText(live) {
  const parts = [live.phase || "rendering"];
  if (live.total) parts.push(`${live.samples ?? 0}/${live.total} samples`);
  if (live.remaining !== null && live.remaining !== undefined) parts.push(`${duration(live.remaining)} left`);
  return parts.join(" · ");
}

/** A frame row as read from the API: its facts, its failure and log, and a requeue button. */
export function frameDetail(f, nodeName) {
  return [
    h("h2", `Frame ${f.number}`, " ", badge(f.status)),
    h("dl.facts",
      h("dt", "Node"), h("dd", nodeName(f.client_id)),
      f.status === "rendering" && f.live ? [
        h("dt", "Progress"), h("dd.live", {
          dataset: { samples: f.live.samples ?? "", total: f.live.total ?? "", remaining: f.live.remaining ?? "" },
        }, liveText(f.live))] : null,
      h("dt", "Render time"), h("dd", seconds(f.render_time)),
      h("dt", "Attempts"), h("dd", String(f.attempts)),
      h("dt", "Started"), h("dd", clock(f.started_at)),
      h("dt", "Finished"), h("dd", clock(f.finished_at)),
      h("dt", "Output"), h("dd.mono", f.output_file || "—"),
      f.error ? [h("dt", "Failure"), h("dd.error", f.error)] : null),
    ["failed", "canceled"].includes(f.status)
      ? actionButton("Requeue this frame", async () => {
        await ask({ item: "frame", action: "requeue", filters: { id: f.id } });
        notify(`Frame ${f.number} requeued.`);
      })
      : null,
    attemptList(f.history || [], nodeName, f.log_tail),
    f.log_tail ? [h("h3", "Log tail"), h("pre.log", f.log_tail)] : null,
  ];
}

/** Every try of a frame, oldest first: node, start, end, exit, how it ended, its log tail
 * (folded; not again when it is the frame's own, shown under the list). */
export function attemptList(history, nodeName, shownTail) {
  if (!history.length) return null;
  return [
    h("h3", `Attempts (${history.length})`),
    h("table.attempts",
      h("thead", h("tr", ["#", "Node", "Started", "Ended", "Exit", "Outcome"].map((t) => h("th", t)))),
      h("tbody", history.map((a, i) => h("tr", { dataset: { outcome: a.outcome, client: a.client_id ?? "" } },
        h("td", String(i + 1)),
        h("td", nodeName(a.client_id)),
        h("td", clock(a.started_at)),
        h("td", clock(a.finished_at)),
        h("td.exit", a.exit_code === null || a.exit_code === undefined ? "—" : String(a.exit_code)),
        h("td", badge(a.outcome), a.error ? h("span.error", ` ${a.error}`) : null))))),
    history.filter((a) => a.log_tail && a.log_tail !== shownTail).map((a) => h("details.attemptlog",
      h("summary", `Log tail of attempt ${history.indexOf(a) + 1} (${nodeName(a.client_id)})`),
      h("pre.log", a.log_tail))),
  ];
}
