// A job's page: its frame grid (fast for 10,000 frames), the selected frame's details and log,
// its failures, and the last rendered frame as a picture.
//
// The grid is loaded once, then kept current by re-reading only the chunks the live feed names.
// When the job's own frame counts disagree with the grid (a chunk failed, the job was canceled
// or requeued: changes that name only the job) the grid is read again, at most every 2 s.

import { ask, askAll, readAll, saveOutput, serverNow, thumbBlobUrl } from "./api.js";
import { badge, fill, h, notify, progressBar, setText, updateBadge } from "./dom.js";
import { jobButtons, priorityField } from "./actions.js";
import { clock, duration, jobTimes, percent, refresher, seconds } from "./format.js";
import { Frames, failureList, frameDetail, frameSummary, liveFraction } from "./frames.js";
import { CODE, COLORS, FrameGrid, STATES } from "./grid.js";
import { RenderChart } from "./chart.js";

const THUMB = 480;
const FULL_GAP = 2000; // ms between two full reads of the grid
const MAX_CHUNKS = 1000; // more changed chunks than this: read the whole grid instead

/** How the job is cut into chunks: `chunk_size` 0 means the farm sizes each chunk itself. */
export function chunkingText(job) {
  return job.chunk_size ? `in chunks of ${job.chunk_size}` : "in automatic chunks";
}

export function jobDetail(jobId) {
  let job = null;
  let frames = new Frames(0, 0);
  let selected = -1;
  let lastFull = 0;
  let mismatchTimer = 0;
  let fullTimer = 0;
  let thumbTimer = 0;
  let thumbShownAt = 0;
  let thumbKey = ""; // the frame and version shown (or being fetched)
  let thumbUrl = ""; // its blob: URL, revoked when the next one shows
  const clientNames = new Map();
  const live = new Map(); // frame index -> its latest `live` progress (API or live feed)
  let shownFrame = null; // the frame row in the detail panel, to refresh its progress
  let chartAt = 0;
  let chartTimer = 0;
  const pending = { full: true, chunks: new Set(), clients: false };

  // -- elements --------------------------------------------------------------------------
  const path = h("div.path");
  const title = h("h1");
  const status = badge("");
  const priority = priorityField();
  const buttons = jobButtons();
  const bar = progressBar("big");
  const nums = {
    pct: h("strong"), done: h("span"), failed: h("span"), rendering: h("span"),
    queued: h("span"), canceled: h("span"), elapsed: h("span"), eta: h("span"),
  };
  const facts = h("dl.facts");
  const canvas = h("canvas.grid", { role: "img", "aria-label": "frame grid" });
  const legend = h("div.legend", STATES.map((s, i) => {
    const swatch = h("span.swatch");
    swatch.style.background = COLORS[i];
    return h("span", swatch, s);
  }));
  const detail = h("div.detail", h("p.hint", "Point at a frame for its node, time and attempts; click it for details and its log."));
  const failures = h("div.failures");
  const firstFailure = h("div.first-failure.panel", { role: "alert", hidden: true });
  const blocklist = h("div.blocklist");
  const image = h("img.last-frame", { alt: "Last rendered frame", hidden: true });
  const caption = h("p.caption", "No frame rendered yet.");
  const tooltip = document.getElementById("tooltip");
  const chart = new RenderChart({ onHover: tip, nodeName: (c) => nodeName(c) });
  let grid = null;

  // -- loading ---------------------------------------------------------------------------
  async function sync() {
    if (pending.full || pending.chunks.size > MAX_CHUNKS) {
      const wait = lastFull + FULL_GAP - Date.now();
      if (wait <= 0) return loadAll();
      // Read everything again soon; meanwhile keep the job's numbers current.
      pending.full = false;
      pending.chunks.clear();
      if (!fullTimer) fullTimer = setTimeout(() => { fullTimer = 0; pending.full = true; refresh(); }, wait);
    }
    const chunks = [...pending.chunks];
    const clients = pending.clients;
    pending.chunks.clear();
    pending.clients = false;
    const requests = [{ item: "job", action: "read", filters: { id: jobId } }];
    const frameRead = {
      item: "frame", action: "read", filters: { job_id: jobId, chunk_id: chunks },
    };
    if (chunks.length) requests.push({ ...frameRead, limit: 10000 });
    if (clients) requests.push({ item: "client", action: "read", limit: 1000 });
    const answers = await askAll(requests);
    if (!answers[0].data.length) return gone();
    job = answers[0].data[0];
    if (chunks.length) {
      const page = answers[1];
      // Big chunks do not fit in one answer: read the rest of their frames.
      const rest = page.data.length < page.total ? await readAll(frameRead, page.data.length) : [];
      for (const row of page.data.concat(rest)) frames.apply(row, grid);
    }
    if (clients) noteClients(answers[answers.length - 1].data);
    checkCounts();
    show();
    if (chunks.includes(frames.chunk[selected])) showSelected(true);
  }

  async function loadAll() {
    pending.full = false;
    pending.chunks.clear();
    pending.clients = false;
    lastFull = Date.now();
    const [jobAnswer, clientAnswer] = await askAll([
      { item: "job", action: "read", filters: { id: jobId } },
      { item: "client", action: "read", limit: 1000 },
    ]);
    if (!jobAnswer.data.length) return gone();
    job = jobAnswer.data[0];
    noteClients(clientAnswer.data);
    const rows = await readAll({
      item: "frame", action: "read", filters: { job_id: jobId }, order_by: "number",
    });
    const count = job.frame_end - job.frame_start + 1;
    if (frames.count !== count || frames.first !== job.frame_start) {
      frames = new Frames(count, job.frame_start);
      grid.reset(count, job.frame_start);
      selected = -1;
    }
    for (const row of rows) frames.apply(row, grid);
    show();
    if (selected >= 0) showSelected(true);
  }

  function noteClients(rows) {
    for (const c of rows) clientNames.set(c.id, c.name);
  }

  /** The grid should hold what the job's counts say; if not, something changed unseen. */
  function checkCounts() {
    const local = grid.counts();
    const same = STATES.every((s) => local[s] === (job.frames[s] || 0));
    clearTimeout(mismatchTimer);
    mismatchTimer = 0;
    if (!same) {
      // Give the live feed a moment to name the chunks before reading everything.
      mismatchTimer = setTimeout(() => { pending.full = true; refresh(); }, 1000);
    }
  }

  function gone() {
    fill(view, h("h1", `Job #${jobId}`), h("p.empty", "This job does not exist (any more)."),
      h("a", { href: "#/jobs" }, "← all jobs"));
  }

  // -- showing ---------------------------------------------------------------------------
  function show() {
    setText(path, `${job.project} / ${job.sequence} / ${job.shot}`);
    setText(title, `${job.name || "job"} #${job.id}`);
    document.title = `${job.name} #${job.id} · brender`;
    updateBadge(status, job.status);
    priority.update(job);
    buttons.update(job);
    bar.set(job.progress, job.status);
    showTimes();
    const c = grid.counts();
    setText(nums.pct, percent(job.progress));
    setText(nums.done, `${c.done} done`);
    setText(nums.failed, `${c.failed} failed`);
    setText(nums.rendering, `${c.rendering} rendering`);
    setText(nums.queued, `${c.queued} queued`);
    setText(nums.canceled, `${c.canceled} canceled`);
    nums.failed.hidden = !c.failed;
    nums.canceled.hidden = !c.canceled;
    canvas.dataset.total = frames.count;
    canvas.dataset.done = c.done;
    canvas.setAttribute("aria-label",
      `frames ${job.frame_start}–${job.frame_end}: ` + STATES.map((s) => `${c[s]} ${s}`).join(", "));
    fill(facts,
      h("dt", "Frames"), h("dd", `${job.frame_start}–${job.frame_end} ${chunkingText(job)}`),
      h("dt", "Output"), h("dd.mono", `${job.output} (${job.format})`),
      (job.outputs || []).map(movieFact),
      h("dt", "Blend file"), h("dd.mono", job.blend_file),
      h("dt", "Blender"), h("dd", blenderText(job)),
      job.waiting ? [h("dt", "Waiting"), h("dd.waiting", job.waiting)] : null,
      h("dt", "Submitted"), h("dd", clock(job.created_at)),
      h("dt", "Started"), h("dd", clock(job.started_at)),
      h("dt", "Finished"), h("dd", clock(job.finished_at)),
      job.error ? [h("dt", "Error"), h("dd.error", job.error)] : null);
    showFirstFailure();
    showFailures();
    showBlocklist();
    showLastFrame();
    applyLive(job.live || [], true);
    showChart();
  }

  /** Progress of frames in flight, from a job read (`all`: every one there is) or the feed. */
  function applyLive(entries, all) {
    const seen = new Set();
    for (const e of entries) {
      const i = e.frame - frames.first;
      if (i < 0 || i >= frames.count) continue;
      seen.add(i);
      live.set(i, e);
      grid.setPartial(i, liveFraction(e));
    }
    if (all) {
      for (const i of [...live.keys()]) {
        if (!seen.has(i)) {
          live.delete(i);
          grid.setPartial(i, null);
        }
      }
    }
    if (selected >= 0 && live.has(selected) && shownFrame && shownFrame.number === frames.first + selected) {
      fill(detail, frameDetail({ ...shownFrame, live: live.get(selected) }, nodeName));
    }
  }

  function showChart() {
    const wait = chartAt + 1000 - Date.now();
    if (wait > 0) { // at most one redraw a second while frames pour in
      if (!chartTimer) chartTimer = setTimeout(() => { chartTimer = 0; showChart(); }, wait);
      return;
    }
    chartAt = Date.now();
    chart.update(frames, grid.codes);
  }

  /** A movie output: its status, and a download link once it is made. */
  function movieFact(o) {
    const what = `${o.container} · ${o.codec} · ${o.fps} fps`;
    return [h("dt", "Movie"), h("dd.movie", { dataset: { status: o.status } },
      o.url ? movieLink(o.url, o.file.split("/").pop()) : badge(o.status), ` ${what}`)];
  }

  /** The movie's download: the token goes in a header (api.saveOutput), never in the link. */
  function movieLink(url, name) {
    return h("a", { href: url, onclick: (event) => {
      event.preventDefault();
      saveOutput(url, name).catch((err) => notify(err.message, "error"));
    } }, name);
  }

  function blenderText(job) {
    const parts = [job.file_version ? `file saved by ${job.file_version}` : "file version unknown"];
    if (job.blender) parts.push(`asks for ${job.blender}`);
    if (job.autoexec) parts.push("runs its Python scripts");
    return parts.join(" · ");
  }

  function showTimes() {
    if (!job) return;
    const { elapsed, eta } = jobTimes(job, serverNow());
    setText(nums.elapsed, `elapsed ${duration(elapsed)}`);
    setText(nums.eta, `left ${duration(eta)}`);
    nums.eta.dataset.eta = job.eta_seconds ?? "";
  }

  /** A failed job's page leads with why: the first failure (the job's own `error`). */
  function showFirstFailure() {
    const reason = job.status === "failed" ? job.error || firstFrameError() : "";
    firstFailure.hidden = !reason;
    if (!reason) return;
    const number = /^frame (\d+):/.exec(reason);
    fill(firstFailure, h("strong", "This job failed: "), h("span.reason", reason),
      number ? h("button.link", { type: "button", onclick: () => select(Number(number[1]) - frames.first) },
        `Show frame ${number[1]}`) : null);
  }

  function firstFrameError() {
    const [i, error] = [...frames.errors.entries()].sort((a, b) => a[0] - b[0])[0] || [];
    return i === undefined ? "" : `frame ${frames.first + i}: ${error || "no reason given"}`;
  }

  function showFailures() {
    if (!frames.errors.size) fill(failures);
    else fill(failures, failureList(frames, select));
  }

  function showBlocklist() {
    const entries = job.blocklist || [];
    if (!entries.length) {
      fill(blocklist);
      return;
    }
    fill(blocklist, h("h2", "Nodes that failed on this job"),
      h("ul", entries.map((b) => h("li",
        h("strong", nodeName(b.client_id)),
        ` — ${b.failures} failure${b.failures === 1 ? "" : "s"}${b.blocked ? ", blocked from this job" : ""}: ${b.reason}`))));
  }

  function showLastFrame() {
    const i = frames.latestDone(grid);
    if (i < 0) return;
    const wait = thumbShownAt + 1000 - Date.now();
    if (wait > 0) { // at most one new picture a second while frames pour in
      if (!thumbTimer) thumbTimer = setTimeout(() => { thumbTimer = 0; showLastFrame(); }, wait);
      return;
    }
    const key = `${frames.id[i]}@${frames.finished[i]}`;
    if (key !== thumbKey) {
      thumbKey = key;
      thumbShownAt = Date.now();
      const number = frames.first + i;
      thumbBlobUrl(frames.id[i], THUMB, frames.finished[i]).then((url) => {
        if (thumbKey !== key) { // a newer frame came meanwhile
          URL.revokeObjectURL(url);
          return;
        }
        if (thumbUrl) URL.revokeObjectURL(thumbUrl);
        thumbUrl = url;
        image.src = url;
        image.hidden = false;
        image.dataset.frame = number;
      }, () => {
        if (thumbKey === key) thumbKey = ""; // try again on the next change
      });
    }
    setText(caption, `Frame ${frames.first + i} · ${nodeName(frames.client[i])} · ${seconds(frames.time[i])} · ${clock(frames.finished[i])}`);
  }

  function nodeName(clientId) {
    if (!clientId) return "no node";
    return clientNames.get(clientId) || `node #${clientId}`;
  }

  // -- pointing and selecting ------------------------------------------------------------
  function summary(i) {
    return frameSummary(frames, grid.codes[i], i, nodeName);
  }

  function hover(i, event) {
    tip(i === null ? null : summary(i), event);
  }

  function tip(lines, event) {
    if (lines === null) {
      tooltip.hidden = true;
      return;
    }
    fill(tooltip, lines.map((line) => h("div", line)));
    tooltip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, window.innerHeight - tooltip.offsetHeight - 8);
    tooltip.style.left = `${Math.max(4, x)}px`;
    tooltip.style.top = `${Math.max(4, y)}px`;
  }

  function select(i) {
    selected = i;
    grid.select(i);
    showSelected(false);
  }

  async function showSelected(quiet) {
    if (selected < 0) return;
    const i = selected;
    if (!quiet) fill(detail, h("h2", `Frame ${frames.first + i}`), summary(i).map((l) => h("p", l)));
    if (!frames.id[i]) return;
    let answer;
    try {
      answer = await ask({ item: "frame", action: "read", filters: { id: frames.id[i] } });
    } catch (err) {
      notify(err.message, "error");
      return;
    }
    const f = answer.data[0];
    if (!f || selected !== i) return;
    shownFrame = f;
    if (f.live) live.set(i, f.live);
    fill(detail, frameDetail(f.status === "rendering" && live.has(i) ? { ...f, live: live.get(i) } : f, nodeName));
  }

  const refresh = refresher(sync, 250);
  const view = h("div.jobview");
  let ticker = 0;

  return {
    title: `Job #${jobId}`,
    mount(root) {
      fill(view,
        h("div.titlebar", h("div", path, h("div.titleline", title, status)),
          h("div.controls", h("label.prio", "Priority ", priority), buttons)),
        firstFailure,
        h("section.panel.summary", bar,
          h("div.nums", nums.pct, nums.done, nums.rendering, nums.queued, nums.failed,
            nums.canceled, nums.elapsed, nums.eta)),
        h("div.columns",
          h("section.panel.gridpanel", h("h2", "Frames"), legend, h("div.gridwrap", canvas), detail,
            h("h2", "Render time per frame"), chart.el),
          h("aside.side",
            h("section.panel", h("h2", "Last rendered frame"), image, caption),
            h("section.panel", failures, blocklist, h("h2", "Job"), facts))));
      fill(root, view);
      grid = new FrameGrid(canvas, { onHover: hover, onSelect: select });
      ticker = setInterval(showTimes, 1000);
      refresh();
    },
    changes(message) {
      if (message.deleted && (message.deleted.job || []).includes(jobId)) {
        gone();
        return;
      }
      if (Array.isArray(message.progress)) {
        applyLive(message.progress.filter((e) => e.job_id === jobId), false);
      }
      let wanted = false;
      if (message.chunk === "all" || message.job === "all") pending.full = true;
      else if (Array.isArray(message.chunk)) for (const id of message.chunk) pending.chunks.add(id);
      if (message.job === "all" || pending.full || (message.job || []).includes(jobId)) wanted = true;
      if (message.chunk) wanted = true;
      if (message.client) {
        pending.clients = true;
        wanted = true;
        // A node that went away gives its frames back: re-read what it was rendering.
        const changed = new Set(message.client === "all" ? [] : message.client);
        for (let i = 0; i < frames.count; i += 1) {
          if (grid.codes[i] === CODE.rendering && changed.has(frames.client[i])) {
            pending.chunks.add(frames.chunk[i]);
          }
        }
      }
      if (wanted) refresh();
    },
    refresh() {
      pending.full = true;
      refresh();
    },
    unmount() {
      clearInterval(ticker);
      clearTimeout(mismatchTimer);
      clearTimeout(fullTimer);
      clearTimeout(thumbTimer);
      thumbKey = "";
      if (thumbUrl) URL.revokeObjectURL(thumbUrl);
      clearTimeout(chartTimer);
      refresh.stop();
      if (grid) grid.destroy();
      tooltip.hidden = true;
    },
  };
}
