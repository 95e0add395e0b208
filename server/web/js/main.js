// The dashboard's entry: routes (#/, #/nodes, #/jobs, #/job/ID), the token prompt, the live feed.

import { ask, getToken, onUnauthorized, setToken } from "./api.js";
import { notify } from "./dom.js";
import { jobDetail } from "./job.js";
import { jobs } from "./jobs.js";
import { Live } from "./live.js";
import { nodes } from "./nodes.js";
import { overview } from "./overview.js";

const view = document.getElementById("view");
const conn = document.getElementById("conn");
const login = document.getElementById("login");
const tokenInput = document.getElementById("token");
const tokenButton = document.getElementById("token-button");

let current = null;
let ready = false; // the server accepted us (the live feed said welcome)

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "nodes") return { name: "nodes", make: nodes };
  if (parts[0] === "jobs") return { name: "jobs", make: jobs };
  if (parts[0] === "job" && /^\d+$/.test(parts[1] || "")) {
    const id = Number(parts[1]);
    return { name: "jobs", make: () => jobDetail(id) };
  }
  return { name: "overview", make: overview };
}

function route() {
  if (!ready) return;
  if (current) current.unmount();
  const { name, make } = parseRoute();
  for (const a of document.querySelectorAll("nav a")) {
    a.setAttribute("aria-current", a.dataset.view === name ? "page" : "false");
  }
  current = make();
  document.title = `${current.title} · brender`;
  notify("");
  current.mount(view);
  window.scrollTo(0, 0);
}

function showLogin(message) {
  ready = false;
  login.hidden = false;
  document.getElementById("login-message").textContent = message;
  tokenInput.focus();
}

const live = new Live({
  onChanges: (message) => current && current.changes(message),
  onWelcome: () => {
    login.hidden = true;
    tokenButton.hidden = !getToken();
    if (!ready) {
      ready = true;
      route();
    } else if (current) {
      current.refresh(); // after a reconnect: whatever changed meanwhile
    }
  },
  onState: (state) => {
    conn.dataset.state = state;
    conn.textContent = {
      connecting: "connecting…", live: "live", offline: "reconnecting…", unauthorized: "token needed",
    }[state];
  },
  onUnauthorized: () => {
    tokenButton.hidden = false;
    showLogin("This farm needs a token. Paste the farm token (BRENDER_TOKEN) below.");
  },
});

onUnauthorized(() => live.start()); // the API refused us: ask the socket, which asks for a token

login.addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(tokenInput.value.trim());
  tokenInput.value = "";
  live.start();
});

tokenButton.addEventListener("click", () => showLogin("Enter another farm token."));

// Without the live feed (a proxy that drops WebSockets, a server restarting) the page still
// works: it starts once the API answers, and re-reads the current view every few seconds.
async function withoutLiveFeed() {
  if (conn.dataset.state === "live" || conn.dataset.state === "unauthorized") return;
  try {
    await ask({ item: "server", action: "status" });
  } catch {
    return;
  }
  if (!ready && login.hidden) {
    ready = true;
    route();
  } else if (current) {
    current.refresh();
  }
}

window.addEventListener("hashchange", route);
live.start();
setInterval(withoutLiveFeed, 5000);
