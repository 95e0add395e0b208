// Jobs: every job with its progress, times and verbs; the priority can be edited in place.

import { ask, serverNow } from "./api.js";
import { badge, fill, h, progressBar, setText, updateBadge } from "./dom.js";
import { jobButtons, priorityField } from "./actions.js";
import { duration, jobTimes, percent, refresher } from "./format.js";

const PAGE = 50;
const FILTERS = {
  unfinished: ["queued", "active", "paused"],
  finished: ["completed", "failed", "canceled"],
  all: null,
};
const COLUMNS = ["#", "Project / sequence / shot", "Job", "Status", "Priority", "Progress",
  "Frames", "Elapsed", "Left", ""];
const HIERARCHY = ["project", "sequence", "shot"];

function cell(label, ...children) {
  return h("td", { dataset: { label } }, ...children);
}

export function jobs() {
  let filter = sessionStorage.getItem("brender.jobs.filter") || "unfinished";
  let offset = 0;
  let page = { data: [], total: 0 };
  const rows = new Map();
  const body = h("tbody");
  const pager = h("div.pager");
  const empty = h("p.empty", { hidden: true });
  const tabs = h("div.tabs", { role: "tablist" }, Object.keys(FILTERS).map((name) => {
    const tab = h("button", { type: "button", role: "tab", dataset: { filter: name } }, name);
    tab.addEventListener("click", () => {
      filter = name;
      offset = 0;
      sessionStorage.setItem("brender.jobs.filter", name);
      markTab();
      refresh();
    });
    return tab;
  }));

  function markTab() {
    for (const tab of tabs.children) tab.setAttribute("aria-selected", tab.dataset.filter === filter);
  }

  async function load() {
    const request = {
      item: "job", action: "read", order_by: ["-priority", "-id"], limit: PAGE, offset,
    };
    if (FILTERS[filter]) request.filters = { status: FILTERS[filter] };
    page = await ask(request);
    show();
  }

  function show() {
    const now = serverNow();
    const seen = new Set();
    page.data.forEach((job, i) => {
      seen.add(job.id);
      let row = rows.get(job.id);
      if (!row) {
        row = makeRow(job.id);
        rows.set(job.id, row);
      }
      updateRow(row, job, now);
      // Move a row only when it is out of place: moving it would blur a priority being edited.
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.remove();
        rows.delete(id);
      }
    }
    empty.hidden = page.data.length > 0;
    setText(empty, filter === "unfinished"
      ? "No job is queued or running. Jobs come from Blender's brender panel or the API."
      : "No job here.");
    showPager();
  }

  function showPager() {
    if (page.total <= PAGE) {
      fill(pager);
      return;
    }
    const last = Math.min(offset + PAGE, page.total);
    const prev = h("button", { type: "button", disabled: offset === 0 }, "← newer");
    const next = h("button", { type: "button", disabled: last >= page.total }, "older →");
    prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); refresh(); });
    next.addEventListener("click", () => { offset += PAGE; refresh(); });
    fill(pager, prev, h("span", `${offset + 1}–${last} of ${page.total}`), next);
  }

  function makeRow(id) {
    const parts = {
      path: h("span.path"), name: h("a", { href: `#/job/${Number(id)}` }), status: badge(""),
      priority: priorityField(), bar: progressBar(), pct: h("span.pct"), frames: h("span"),
      elapsed: h("span"), eta: h("span"), buttons: jobButtons(),
    };
    const row = h("tr", { dataset: { id } },
      cell("#", String(id)),
      cell("Shot", parts.path),
      cell("Job", parts.name),
      cell("Status", parts.status),
      cell("Priority", parts.priority),
      cell("Progress", h("div.progress", parts.bar, parts.pct)),
      cell("Frames", parts.frames),
      cell("Elapsed", parts.elapsed),
      cell("Left", parts.eta),
      cell("", parts.buttons));
    row.parts = parts;
    return row;
  }

  function updateRow(row, job, now) {
    const p = row.parts;
    row.dataset.project = job.project;
    setText(p.path, HIERARCHY.map((k) => job[k]).join(" / "));
    setText(p.name, job.name || `job ${job.id}`);
    updateBadge(p.status, job.status);
    p.priority.update(job);
    p.bar.set(job.progress, job.status);
    setText(p.pct, percent(job.progress));
    const f = job.frames;
    setText(p.frames, `${f.done} done${f.failed ? ` · ${f.failed} failed` : ""} / ${f.total}`);
    const { elapsed, eta } = jobTimes(job, now);
    setText(p.elapsed, duration(elapsed));
    setText(p.eta, duration(eta));
    p.buttons.update(job);
  }

  const refresh = refresher(load, 500);
  let ticker = 0;

  return {
    title: "Jobs",
    mount(root) {
      markTab();
      fill(root,
        h("div.titlebar", h("h1", "Jobs"), tabs),
        h("div.tablewrap",
          h("table.jobs", h("thead", h("tr", COLUMNS.map((c) => h("th", c)))), body)),
        empty, pager);
      ticker = setInterval(() => show(), 1000); // elapsed and left tick on
      refresh();
    },
    changes(message) {
      if (message.job || message.chunk || HIERARCHY.some((k) => message[k])) refresh();
    },
    refresh,
    unmount() {
      clearInterval(ticker);
      refresh.stop();
    },
  };
}
