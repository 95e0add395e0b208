// The render-time chart of a job page: seconds per done frame by frame number, one colour per
// node, a dashed line at the job's median; pointing at a mark names the frame. Plain SVG.

import { h } from "./dom.js";
import { seconds } from "./format.js";
import { CODE } from "./grid.js";

const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#4ea1ff", "#f58f29", "#b57cff", "#39c5bb", "#ff6f91", "#c3d94e", "#f0d35c", "#9aa5b8"];
const W = 640;
const H = 200;
const PAD = { left: 44, right: 10, top: 10, bottom: 24 };

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

export function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A frame's seconds: Blender's render time, else its node's wall clock. */
function frameSeconds(frames, i) {
  if (!Number.isNaN(frames.time[i])) return frames.time[i];
  if (frames.started[i] && frames.finished[i]) return frames.finished[i] - frames.started[i];
  return null;
}

export class RenderChart {
  /** onHover(lines|null, event): what to show in the page's tooltip. */
  constructor({ onHover, nodeName }) {
    this.onHover = onHover;
    this.nodeName = nodeName;
    this.el = h("div.chart");
    this.key = "";
  }

  /** Draw the done frames (skipped when nothing changed since the last draw). */
  update(frames, codes) {
    const points = [];
    for (let i = 0; i < frames.count; i += 1) {
      if (codes[i] !== CODE.done) continue;
      const s = frameSeconds(frames, i);
      if (s !== null && Number.isFinite(s)) points.push([frames.first + i, s, frames.client[i]]);
    }
    const key = `${frames.first}:${frames.count}:${points.length}:${points.reduce((a, p) => a + p[1], 0)}`;
    if (key === this.key) return;
    this.key = key;
    this.draw(points, frames);
  }

  draw(points, frames) {
    if (!points.length) {
      this.el.replaceChildren(h("p.hint", "No frame done yet: the render-time chart appears with the first."));
      return;
    }
    const mid = median(points.map((p) => p[1]));
    const top = Math.max(...points.map((p) => p[1]), mid) * 1.1 || 1;
    const x0 = frames.first;
    const x1 = Math.max(frames.first + frames.count - 1, x0 + 1);
    const sx = (n) => PAD.left + ((n - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
    const sy = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
    const nodes = [...new Set(points.map((p) => p[2]))].sort((a, b) => a - b);
    const colour = new Map(nodes.map((c, i) => [c, PALETTE[i % PALETTE.length]]));
    const r = points.length > 2000 ? 1.5 : points.length > 300 ? 2.5 : 3.5;
    const marks = points.map(([n, s, c]) => {
      const mark = svg("circle", {
        class: "mark", cx: sx(n).toFixed(1), cy: sy(s).toFixed(1), r, fill: colour.get(c),
        "data-frame": n, "data-seconds": s.toFixed(3), "data-client": c,
      });
      mark.addEventListener("mousemove", (e) => this.onHover(
        [`Frame ${n}`, `${seconds(s)}`, `node ${this.nodeName(c)}`], e));
      mark.addEventListener("mouseleave", (e) => this.onHover(null, e));
      return mark;
    });
    const axis = svg("g", { class: "axis" },
      svg("line", { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }),
      svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }),
      label(PAD.left - 4, sy(top / 1.1) + 4, seconds(top / 1.1), "end"),
      label(PAD.left - 4, H - PAD.bottom + 4, "0", "end"),
      label(PAD.left, H - 6, String(x0), "start"),
      label(W - PAD.right, H - 6, String(x1), "end"));
    const medianLine = svg("line", {
      class: "median", x1: PAD.left, x2: W - PAD.right, y1: sy(mid), y2: sy(mid),
    });
    const chart = svg("svg", {
      class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `render time of ${points.length} frames, median ${seconds(mid)}`,
      "data-marks": points.length, "data-median": mid.toFixed(3),
    }, axis, medianLine, label(W - PAD.right, sy(mid) - 4, `median ${seconds(mid)}`, "end"),
    svg("g", { class: "marks" }, ...marks));
    const legend = h("div.legend", nodes.map((c) => {
      const swatch = h("span.swatch");
      swatch.style.background = colour.get(c);
      return h("span", swatch, this.nodeName(c));
    }));
    this.el.replaceChildren(chart, legend);
  }
}

function label(x, y, text, anchor) {
  const t = svg("text", { x, y, "text-anchor": anchor });
  t.textContent = text;
  return t;
}
