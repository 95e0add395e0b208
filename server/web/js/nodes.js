// Nodes: every render node, its state and its work; enable and disable it.

import { ask, askAll, serverNow } from "./api.js";
import { actionButton, badge, fill, h, notify, setText, updateBadge } from "./dom.js";
import { ago, bytes, refresher } from "./format.js";

const COLUMNS = ["Name", "Enabled", "Online", "Work", "Blender", "CPUs", "Memory", "Last seen", "Refused", ""];

function cell(label, ...children) {
  return h("td", { dataset: { label } }, ...children);
}

export function nodes() {
  const rows = new Map(); // client id -> row element
  const chunkInfo = new Map(); // chunk id -> {job_id, frame_start, frame_end}
  const jobNames = new Map(); // job id -> "shot / name"
  const body = h("tbody");
  const empty = h("p.empty", { hidden: true },
    "No render node has connected yet. Start one with: brender-node --master HOST:6000");
  let clients = [];

  async function load() {
    const answer = await ask({ item: "client", action: "read", order_by: "name", limit: 1000 });
    clients = answer.data;
    const unknownChunks = clients.map((c) => c.chunk_id).filter((id) => id && !chunkInfo.has(id));
    if (unknownChunks.length) {
      const [chunks] = await askAll([
        { item: "chunk", action: "read", filters: { id: unknownChunks }, limit: 1000 },
      ]);
      for (const c of chunks.data) chunkInfo.set(c.id, c);
      const unknownJobs = [...new Set(chunks.data.map((c) => c.job_id))].filter((id) => !jobNames.has(id));
      if (unknownJobs.length) {
        const jobs = await ask({ item: "job", action: "read", filters: { id: unknownJobs }, limit: 1000 });
        for (const j of jobs.data) jobNames.set(j.id, `${j.shot} / ${j.name}`);
      }
    }
    show();
  }

  function show() {
    const now = serverNow();
    const seen = new Set();
    for (const client of clients) {
      seen.add(client.id);
      let row = rows.get(client.id);
      if (!row) {
        row = makeRow(client.id);
        rows.set(client.id, row);
      }
      updateRow(row, client, now);
      body.append(row); // keeps the server's order
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.remove();
        rows.delete(id);
      }
    }
    empty.hidden = clients.length > 0;
  }

  function makeRow(id) {
    const parts = {
      name: h("strong"), host: h("small"), status: badge(""), online: h("span.online"),
      work: h("span.work"), blender: h("span"), cpus: h("span"), memory: h("span"), seen: h("span"),
      refused: h("span.refused"),
    };
    let current = null;
    parts.toggle = actionButton("", async () => {
      const action = current.status === "enabled" ? "disable" : "enable";
      await ask({ item: "client", action, filters: { id: current.id } });
      notify(`${current.name}: ${action}d.`);
      refresh();
    });
    const row = h("tr", { dataset: { id } },
      cell("Name", parts.name, parts.host),
      cell("Enabled", parts.status),
      cell("Online", parts.online),
      cell("Work", parts.work),
      cell("Blender", parts.blender),
      cell("CPUs", parts.cpus),
      cell("Memory", parts.memory),
      cell("Last seen", parts.seen),
      cell("Refused", parts.refused),
      cell("", parts.toggle));
    row.parts = parts;
    row.setClient = (c) => { current = c; };
    return row;
  }

  function updateRow(row, c, now) {
    const p = row.parts;
    row.setClient(c);
    row.dataset.name = c.name;
    setText(p.name, c.name);
    setText(p.host, c.hostname && c.hostname !== c.name ? c.hostname : "");
    updateBadge(p.status, c.status);
    setText(p.online, c.online ? "online" : "offline");
    p.online.dataset.online = c.online;
    p.online.dataset.busy = c.busy;
    const chunk = c.chunk_id ? chunkInfo.get(c.chunk_id) : null;
    if (c.busy && chunk) {
      const name = jobNames.get(chunk.job_id) || `job #${chunk.job_id}`;
      const frames = chunk.frame_start === chunk.frame_end
        ? `frame ${chunk.frame_start}` : `frames ${chunk.frame_start}–${chunk.frame_end}`;
      fill(p.work, h("a", { href: `#/job/${Number(chunk.job_id)}` }, name), ` · ${frames}`);
    } else {
      fill(p.work, c.busy ? "busy" : c.online ? "idle" : "—");
    }
    setText(p.blender, blendersText(c));
    setText(p.cpus, c.cpus || "—");
    setText(p.memory, bytes(c.memory));
    setText(p.seen, c.online ? "now" : ago(c.last_seen, now));
    // Frame reports the server refused since it started (server/reports.py).
    setText(p.refused, c.refused_reports ? `${c.refused_reports} reports` : "—");
    p.refused.title = c.refused_reports
      ? "frame reports for frames this node does not hold, or files its job does not name" : "";
    setText(p.toggle, c.status === "enabled" ? "Disable" : "Enable");
    p.toggle.dataset.action = c.status === "enabled" ? "disable" : "enable";
  }

  const refresh = refresher(load, 250);
  let ticker = 0;

  return {
    title: "Nodes",
    mount(root) {
      fill(root,
        h("h1", "Nodes"),
        h("div.tablewrap",
          h("table.nodes", h("thead", h("tr", COLUMNS.map((c) => h("th", c)))), body)),
        empty);
      ticker = setInterval(() => show(), 5000); // "last seen" moves on
      refresh();
    },
    changes(message) {
      if (message.job || message.shot || message.sequence || message.project) jobNames.clear();
      if (message.client) refresh();
    },
    refresh,
    unmount() {
      clearInterval(ticker);
      refresh.stop();
    },
  };
}

/** A node's Blenders: "3.4.1, 4.5.3 (bpy) · CUDA" (devices beyond the CPU, once). */
function blendersText(c) {
  const list = Array.isArray(c.blenders) && c.blenders.length
    ? c.blenders : (c.blender_version ? [{ version: c.blender_version, kind: "binary" }] : []);
  if (!list.length) return "—";
  const names = list.map((b) => b.kind === "bpy" ? `${b.version} (bpy)` : b.version);
  const devices = [...new Set(list.flatMap((b) => b.devices || []))].filter((d) => d !== "CPU");
  const extra = [devices.length ? devices.join(", ") : "", c.allow_autoexec ? "auto-exec" : ""]
    .filter(Boolean);
  return [names.join(", "), ...extra].join(" · ");
}
