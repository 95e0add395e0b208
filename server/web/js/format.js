// Numbers and times as people read them, and a small refresh scheduler.

import { notify } from "./dom.js";
import { ApiError } from "./api.js";

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export function seconds(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return value < 10 ? `${value.toFixed(2)} s` : duration(value);
}

export function bytes(n) {
  if (!n) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function ago(timestamp, now) {
  if (!timestamp) return "never";
  const d = Math.max(0, now - timestamp);
  if (d < 5) return "just now";
  return `${duration(d)} ago`;
}

export function clock(timestamp) {
  if (!timestamp) return "—";
  return new Date(timestamp * 1000).toLocaleString();
}

export function percent(fraction) {
  return `${Math.floor((fraction || 0) * 1000) / 10}%`;
}

/** Elapsed time and the server's estimate of the time left (`eta_seconds`: from each node's
 * measured pace on the job and the nodes on it now; null, shown "—", until there is data). */
export function jobTimes(job, now) {
  const started = job.started_at;
  const end = job.finished_at || now;
  const elapsed = started ? Math.max(0, end - started) : null;
  const eta = job.eta_seconds ?? null;
  return { elapsed, eta };
}

/**
 * Run `task` now, or once more when it ends if asked again meanwhile: never two at a time,
 * and at most one every `gap` ms. Errors go to the notice bar (the token prompt for 401).
 */
export function refresher(task, gap = 250) {
  let running = false;
  let again = false;
  let last = 0;
  let timer = 0;
  let stopped = false;
  async function run() {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    const wait = last + gap - Date.now();
    if (wait > 0) {
      if (!timer) timer = setTimeout(() => { timer = 0; run(); }, wait);
      return;
    }
    running = true;
    last = Date.now();
    try {
      await task();
    } catch (err) {
      if (!(err instanceof ApiError && err.code === "unauthorized")) {
        notify(err.message || String(err), "error");
      }
    } finally {
      running = false;
      if (again) {
        again = false;
        run();
      }
    }
  }
  run.stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  return run;
}
