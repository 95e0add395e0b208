// The frame grid: one <canvas> cell per frame, drawn once and then repainted by index, so a
// 10,000-frame job costs one draw at load and a few rectangles per change.

export const STATES = ["queued", "rendering", "done", "failed", "canceled"];
export const CODE = Object.fromEntries(STATES.map((s, i) => [s, i]));
export const COLORS = ["#3b4352", "#f0b429", "#2fbf71", "#ef4e4e", "#8a7ca8"];
const UNKNOWN = 255;
const UNFILLED = "#6b5420"; // the part of a rendering frame still to do (COLORS[rendering], dim)
const MAX_HEIGHT = 520;

export class FrameGrid {
  /** onHover(index|null, event) and onSelect(index|null) tell which cell is pointed at. */
  constructor(canvas, { onHover, onSelect }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.codes = new Uint8Array(0);
    this.partial = new Map(); // index -> fraction done (0–1) of a rendering frame, from `live`
    this.first = 0;
    this.selected = -1;
    this.dirty = new Set();
    this.frame = 0;
    this.cell = 10;
    this.gap = 1;
    this.cols = 1;
    canvas.addEventListener("mousemove", (e) => onHover(this.indexAt(e), e));
    canvas.addEventListener("mouseleave", (e) => onHover(null, e));
    canvas.addEventListener("click", (e) => {
      const index = this.indexAt(e);
      if (index !== null) onSelect(index);
    });
    this.resizer = new ResizeObserver(() => this.layout());
    this.resizer.observe(canvas.parentElement);
  }

  /** A job of `count` frames numbered from `first`: every cell unknown until `set`. */
  reset(count, first) {
    this.codes = new Uint8Array(count).fill(UNKNOWN);
    this.partial.clear();
    this.first = first;
    this.selected = -1;
    this.layout();
  }

  set(index, code) {
    if (index < 0 || index >= this.codes.length || this.codes[index] === code) return;
    this.codes[index] = code;
    if (code !== CODE.rendering && this.partial.delete(index)) this.showPartial();
    this.dirty.add(index);
    this.schedule();
  }

  /** How far a rendering frame is (0–1), or null when its node has not said. */
  setPartial(index, fraction) {
    if (index < 0 || index >= this.codes.length) return;
    if (fraction === null || this.codes[index] !== CODE.rendering) {
      if (!this.partial.delete(index)) return;
    } else {
      const f = Math.max(0, Math.min(1, fraction));
      if (this.partial.get(index) === f) return;
      this.partial.set(index, f);
    }
    this.showPartial();
    this.dirty.add(index);
    this.schedule();
  }

  /** `data-partial` on the canvas: "frame:fraction" of every partly filled cell, for tests
   * and tools (the pixels say the same). */
  showPartial() {
    this.canvas.dataset.partial = [...this.partial]
      .sort((a, b) => a[0] - b[0])
      .map(([i, f]) => `${this.first + i}:${f.toFixed(3)}`)
      .join(" ");
  }

  select(index) {
    const old = this.selected;
    this.selected = index === null ? -1 : index;
    if (old >= 0) this.dirty.add(old);
    if (this.selected >= 0) this.dirty.add(this.selected);
    this.schedule();
  }

  counts() {
    const out = Object.fromEntries(STATES.map((s) => [s, 0]));
    for (const code of this.codes) if (code < STATES.length) out[STATES[code]] += 1;
    return out;
  }

  destroy() {
    this.resizer.disconnect();
    cancelAnimationFrame(this.frame);
  }

  // -- drawing -----------------------------------------------------------------------------

  layout() {
    const n = Math.max(1, this.codes.length);
    const width = Math.max(120, this.canvas.parentElement.clientWidth);
    const target = Math.min(MAX_HEIGHT, Math.max(96, n * 3));
    let cell = Math.floor(Math.sqrt((width * target) / n));
    cell = Math.max(4, Math.min(32, cell));
    this.gap = cell >= 12 ? 2 : 1;
    this.cell = cell - this.gap;
    this.cols = Math.max(1, Math.min(n, Math.floor((width + this.gap) / cell)));
    const rows = Math.ceil(n / this.cols);
    const height = rows * cell - this.gap;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${this.cols * cell - this.gap}px`;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round((this.cols * cell - this.gap) * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    Object.assign(this.canvas.dataset, {
      cell: this.cell, gap: this.gap, cols: this.cols, dpr,
    });
    this.dirty.clear();
    this.drawAll();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    if (this.dirty.size > this.codes.length / 4) {
      this.drawAll();
    } else {
      for (const index of this.dirty) this.drawCell(index);
    }
    this.dirty.clear();
  }

  drawAll() {
    const ctx = this.ctx;
    ctx.fillStyle = "#161a21";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    for (let i = 0; i < this.codes.length; i += 1) this.drawCell(i);
  }

  drawCell(index) {
    const ctx = this.ctx;
    const step = this.cell + this.gap;
    const x = (index % this.cols) * step;
    const y = Math.floor(index / this.cols) * step;
    const code = this.codes[index];
    ctx.fillStyle = code < COLORS.length ? COLORS[code] : "#232833";
    ctx.fillRect(x, y, this.cell, this.cell);
    const part = code === CODE.rendering ? this.partial.get(index) : undefined;
    if (part !== undefined && part < 1) {
      // Left to right: the done part in the rendering colour, the rest dim.
      const done = Math.round(this.cell * part);
      ctx.fillStyle = UNFILLED;
      ctx.fillRect(x + done, y, this.cell - done, this.cell);
    }
    if (this.cell >= 22) {
      ctx.fillStyle = code === CODE.queued || code === UNKNOWN ? "#aab2c0" : "#0e1116";
      ctx.font = `${this.cell >= 28 ? 11 : 9}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(String((this.first + index) % 10000), x + this.cell / 2, y + this.cell / 2 + 1);
    }
    if (index === this.selected) {
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 2;
      ctx.strokeRect(x + 1, y + 1, this.cell - 2, this.cell - 2);
    }
  }

  indexAt(event) {
    const rect = this.canvas.getBoundingClientRect();
    const step = this.cell + this.gap;
    const col = Math.floor((event.clientX - rect.left) / step);
    const row = Math.floor((event.clientY - rect.top) / step);
    if (col < 0 || col >= this.cols || row < 0) return null;
    const index = row * this.cols + col;
    return index < this.codes.length ? index : null;
  }
}
