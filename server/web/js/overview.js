// Overview: the farm at a glance — nodes, jobs by state, frames per minute, active jobs.

import { askAll, serverNow } from "./api.js";
import { badge, fill, h, progressBar, setText } from "./dom.js";
import { bytes, duration, jobTimes, percent, refresher } from "./format.js";

const JOB_STATES = ["active", "queued", "paused", "completed", "failed", "canceled"];
const WINDOW = 60; // seconds of "frames done per minute"

const SEED = 500; // recent frames read at mount to know the rate at once

/**
 * Frames done in the last minute: seeded from the most recent done frames, then counted
 * from the farm's done total, which every refresh reads anyway.
 */
class DoneRate {
  constructor() {
    this.times = [];
    this.last = null;
    this.capped = false;
  }

  seed(frames, now) {
    for (const f of frames.slice().reverse()) {
      if (f.finished_at && f.finished_at >= now - WINDOW) this.times.push(f.finished_at);
    }
    this.capped = frames.length >= SEED && this.times.length >= SEED;
  }

  note(total, now) {
    if (this.last !== null && total > this.last) {
      const n = Math.min(total - this.last, 100000);
      for (let i = 0; i < n; i += 1) this.times.push(now);
    }
    this.last = total;
    while (this.times.length && this.times[0] < now - WINDOW) this.times.shift();
    if (this.capped && this.times.length < SEED) this.capped = false;
  }

  text() {
    return this.capped ? `${this.times.length}+` : String(this.times.length);
  }
}

function stat(label, value, extra) {
  const number = h("strong.value", value);
  const el = h("div.stat", h("span.label", label), number, extra || null);
  el.value = number;
  return el;
}

export function overview() {
  let root = null;
  let seeded = false;
  const doneRate = new DoneRate();
  const nodes = { online: stat("online", "–"), busy: stat("busy", "–"), disabled: stat("disabled", "–") };
  const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, stat(s, "–")]));
  const rate = stat("frames / min", "–");
  const frameTotals = stat("frames done", "–");
  const active = h("div.joblist");
  const nodeList = h("div.nodelist");
  const localNode = h("section.panel.localnode", { hidden: true });
  const files = h("p.files", { hidden: true });

  for (const [state, el] of Object.entries(jobs)) el.dataset.state = state;

  async function load() {
    const requests = [
      { item: "server", action: "status" },
      {
        item: "job", action: "read", filters: { status: ["active", "queued", "paused"] },
        order_by: ["-priority", "id"], limit: 8,
      },
      { item: "client", action: "read", order_by: "name", limit: 200 },
    ];
    if (!seeded) {
      requests.push({
        item: "frame", action: "read", filters: { status: "done" },
        order_by: "-finished_at", limit: SEED,
      });
    }
    const [status, jobRead, clientRead, recent] = await askAll(requests);
    const now = serverNow();
    if (recent) {
      seeded = true;
      doneRate.seed(recent.data, now);
    }
    const s = status.data;
    doneRate.note(s.frames.done || 0, now);
    show(s, jobRead, clientRead.data, now);
  }

  function show(s, jobRead, clients, now) {
    showLocalNode(s.local_node);
    const c = s.clients;
    setText(nodes.online.value, `${c.online} / ${c.total}`);
    setText(nodes.busy.value, c.busy);
    setText(nodes.disabled.value, c.total - c.enabled);
    for (const state of JOB_STATES) setText(jobs[state].value, s.jobs[state] || 0);
    setText(rate.value, doneRate.text());
    const totalFrames = Object.values(s.frames).reduce((a, b) => a + b, 0);
    setText(frameTotals.value, `${s.frames.done || 0} / ${totalFrames}`);
    files.hidden = !s.files;
    if (s.files) {
      setText(files, `Uploaded files: ${s.files.count} stored, ${s.files.bytes ? bytes(s.files.bytes) : "0 B"} of ${bytes(s.files.quota)}`);
    }

    if (!jobRead.data.length) {
      fill(active, h("p.empty", "No job is queued or running. Jobs come from Blender's brender panel or the API."));
    } else {
      fill(active, jobRead.data.map((job) => activeJob(job, now)));
      if (jobRead.total > jobRead.data.length) {
        active.append(h("a.more", { href: "#/jobs" }, `all ${jobRead.total} unfinished jobs →`));
      }
    }
    if (!clients.length) {
      fill(nodeList, h("p.empty", "No render node has connected yet. Start one with: brender-node --master HOST:6000"));
    } else {
      fill(nodeList, clients.map(nodeChip));
    }
  }

  // `brender-server --local-node` whose node process is not running: say so, with its last words.
  function showLocalNode(local) {
    localNode.hidden = !local || local.state === "running";
    if (localNode.hidden) return;
    const why = local.last_exit === null ? "it has not started yet" : `it exited with code ${local.last_exit}`;
    fill(localNode,
      h("h2", "The local node is down"),
      h("p", `${why}; the server restarts it (${local.restarts} restarts so far). Its last lines:`),
      h("pre.log", (local.last_lines || []).join("\n") || "(none)"));
  }

  function activeJob(job, now) {
    const bar = progressBar();
    bar.set(job.progress, job.status);
    const { elapsed, eta } = jobTimes(job, now);
    return h("a.jobrow", { href: `#/job/${Number(job.id)}` },
      h("div.jobname",
        h("span.path", `${job.project} / ${job.sequence} / ${job.shot}`),
        h("strong", job.name), badge(job.status)),
      bar,
      h("div.jobnums",
        h("span", `${percent(job.progress)} · ${job.frames.done}/${job.frames.total} frames`),
        job.frames.failed ? h("span.failed", `${job.frames.failed} failed`) : null,
        h("span", `elapsed ${duration(elapsed)}`),
        h("span", `left ${duration(eta)}`)));
  }

  function nodeChip(client) {
    let state = "offline";
    if (client.online) state = client.busy ? "busy" : "idle";
    if (client.status === "disabled") state = client.online ? `${state}, disabled` : "disabled";
    return h("a.nodechip", { href: "#/nodes", dataset: { online: client.online, busy: client.busy, status: client.status } },
      h("span.dot"), h("span.name", client.name), h("span.state", state));
  }

  const refresh = refresher(load, 1000);
  let ticker = 0;

  return {
    title: "Overview",
    mount(el) {
      root = el;
      fill(root,
        h("h1", "Overview"),
        localNode,
        h("section.cards",
          h("div.card", h("h2", "Nodes"), h("div.stats", nodes.online, nodes.busy, nodes.disabled)),
          h("div.card.wide", h("h2", "Jobs"), h("div.stats", JOB_STATES.map((s) => jobs[s]))),
          h("div.card", h("h2", "Frames"), h("div.stats", rate, frameTotals))),
        files,
        h("section.panel", h("h2", "Unfinished jobs"), active),
        h("section.panel", h("h2", "Render nodes"), nodeList));
      ticker = setInterval(refresh, 5000); // the per-minute window moves on
      refresh();
    },
    changes() {
      refresh();
    },
    refresh,
    unmount() {
      clearInterval(ticker);
      refresh.stop();
    },
  };
}
