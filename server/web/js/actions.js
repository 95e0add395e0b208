// The job verbs and the priority field, shared by the jobs list and a job's page.

import { ask } from "./api.js";
import { actionButton, h, notify } from "./dom.js";

const VERBS = [
  { verb: "pause", label: "Pause", when: (j) => ["queued", "active"].includes(j.status) },
  { verb: "resume", label: "Resume", when: (j) => j.status === "paused" },
  {
    verb: "cancel", label: "Cancel", danger: true,
    when: (j) => ["queued", "active", "paused"].includes(j.status),
  },
  {
    verb: "requeue", label: "Requeue",
    when: (j) => (j.frames.failed || 0) + (j.frames.canceled || 0) > 0,
  },
];

function jobTitle(job) {
  return `${job.project} / ${job.sequence} / ${job.shot} / ${job.name} (#${job.id})`;
}

async function runVerb(job, verb) {
  if (verb === "cancel" && !window.confirm(`Cancel job ${jobTitle(job)}?`)) return;
  await ask({ item: "job", action: verb, filters: { id: job.id } });
  notify(`Job #${job.id}: ${verb} sent.`);
}

/** Buttons for a job; `update(job)` shows only those that make sense for its status. */
export function jobButtons() {
  let current = null;
  const buttons = VERBS.map((v) => {
    const b = actionButton(v.label, () => runVerb(current, v.verb), {
      class: v.danger ? "danger" : "", dataset: { verb: v.verb },
    });
    b.hidden = true;
    return [v, b];
  });
  const el = h("div.buttons", buttons.map(([, b]) => b));
  el.update = (job) => {
    current = job;
    for (const [v, b] of buttons) b.hidden = !v.when(job);
  };
  return el;
}

/** A number field for the job's priority (0-100): a change is sent at once. */
export function priorityField() {
  let current = null;
  const input = h("input.priority", {
    type: "number", min: 0, max: 100, step: 1, title: "Priority (0-100, higher first)",
    "aria-label": "priority",
  });
  input.addEventListener("click", (e) => e.stopPropagation());
  input.addEventListener("change", async () => {
    const value = Number(input.value);
    if (!Number.isInteger(value) || value < 0 || value > 100) {
      notify("Priority is a whole number from 0 to 100.", "error");
      input.value = current.priority;
      return;
    }
    try {
      await ask({ item: "job", action: "update", filters: { id: current.id }, values: { priority: value } });
      notify(`Job #${current.id}: priority ${value}.`);
    } catch (err) {
      notify(err.message, "error");
      input.value = current.priority;
    }
  });
  input.update = (job) => {
    current = job;
    if (document.activeElement !== input) input.value = job.priority;
  };
  return input;
}
