// The live feed: `/ws` tells which jobs, chunks and nodes changed; views re-read them.
// Protocol (docs/dashboard.md): we send {"type": "hello", "token": …} first; the server
// answers "welcome" (or closes with 4401 for a wrong token), then "changes" messages.

import { getToken } from "./api.js";

const UNAUTHORIZED = 4401;

export class Live {
  /**
   * onChanges(message): a coalesced `changes` message.
   * onWelcome(): (re)connected and subscribed: re-read everything, something may be missed.
   * onState(state): "connecting" | "live" | "offline" | "unauthorized".
   * onUnauthorized(): the server refused our token.
   */
  constructor({ onChanges, onWelcome, onState, onUnauthorized }) {
    this.handlers = { onChanges, onWelcome, onState, onUnauthorized };
    this.socket = null;
    this.backoff = 500;
    this.timer = 0;
  }

  start() {
    clearTimeout(this.timer);
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    this.handlers.onState("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: "hello", token: getToken() }));
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "welcome") {
        this.backoff = 500;
        this.handlers.onState("live");
        this.handlers.onWelcome();
      } else if (message.type === "changes") {
        this.handlers.onChanges(message);
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === UNAUTHORIZED) {
        this.handlers.onState("unauthorized");
        this.handlers.onUnauthorized();
        return; // until a new token is given: start() again
      }
      this.handlers.onState("offline");
      this.timer = setTimeout(() => this.start(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 5000);
    };
  }
}
