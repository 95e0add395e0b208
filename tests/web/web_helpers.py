"""Helpers for the dashboard's tests: Debian's Chromium under Playwright, and a fast stand-in
node that reports frames at once (to load the page with a 10,000-frame job finishing)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from farmctl import frame_file

Saver = Callable[[dict[str, Any], int], str]
"""What a stand-in node reports as frame `n` of a `render` order (and puts there, if anything)."""


def saving(picture: Path) -> Saver:
    """Report each frame's own file (the order's output pattern), a hard link to `picture`."""

    def save(order: dict[str, Any], n: int) -> str:
        target = Path(frame_file(order, n))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(picture, target)
        return str(target)

    return save


CHROMIUM = os.environ.get("BRENDER_TEST_CHROMIUM", "/usr/bin/chromium")
# Root needs --no-sandbox; the rest keeps Chromium from reaching out (this network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DONE_RGB = (0x2F, 0xBF, 0x71)  # grid.js COLORS[done]

# The colour of every cell of the frame grid, read back from the canvas's pixels (one read of
# the whole canvas, so that polling a 10,000-cell grid stays cheap).
GRID_PIXELS = """(c) => {
  const ctx = c.getContext("2d");
  const cell = +c.dataset.cell, gap = +c.dataset.gap, cols = +c.dataset.cols;
  const dpr = +c.dataset.dpr, n = +c.dataset.total, out = [];
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < n; i += 1) {
    const x = (i % cols) * (cell + gap), y = Math.floor(i / cols) * (cell + gap);
    const at = ((Math.floor(y * dpr) + 1) * c.width + Math.floor(x * dpr) + 1) * 4;
    out.push([d[at], d[at + 1], d[at + 2]]);
  }
  return out;
}"""

# True once the grid has `total` cells, all painted within 3 of `rgb` in each channel.
GRID_PAINTED = (
    "([total, rgb]) => { const c = document.querySelector('canvas.grid');"
    " if (!c || c.dataset.total !== String(total) || !c.dataset.cols) return false;"
    f" const pixels = ({GRID_PIXELS})(c);"
    " return pixels.length === total"
    " && pixels.every((p) => p.every((v, i) => Math.abs(v - rgb[i]) <= 3)); }"
)


def painted_grid(page: Any, total: int, rgb: tuple[int, int, int], timeout: float = 20000) -> Any:
    """The grid's cell colours once all `total` cells are painted `rgb`. The grid paints on the
    animation frame after its data changed, so this polls the canvas rather than waiting a
    fixed time; after `timeout` ms it answers what is painted then, for the caller's assert."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(GRID_PAINTED, arg=[total, list(rgb)], polling=100, timeout=timeout)
    return page.locator("canvas.grid").evaluate(GRID_PIXELS)


class FakeNode:
    """Speaks the node protocol (docs/protocol.md) and reports every ordered frame as saved at
    once, with `output_file(order, frame)` as its file. Only for load: real rendering is
    NodeProcess."""

    def __init__(
        self,
        port: int,
        name: str,
        output_file: Saver,
        token: str | None = None,
        fail_once: set[int] | None = None,
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rwb")
        self.output_file = output_file
        self.chunks = 0
        self.fail_once = set(fail_once or ())  # these frames fail the first time they're ordered
        hello: dict[str, Any] = {
            "type": "hello",
            "protocol": 1,
            "node_id": uuid.uuid4().hex,
            "name": name,
            "hostname": name,
            "mac_address": "02:00:00:00:00:99",
            "cpus": 1,
            "memory": 1 << 30,
            "blender_version": "stand-in",
            "chunk": None,
        }
        if token:
            hello["token"] = token
        self._send(hello)
        welcome = self._read()
        assert welcome and welcome.get("type") == "welcome", welcome
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _send(self, message: dict[str, Any]) -> None:
        self.file.write(json.dumps(message).encode() + b"\n")
        self.file.flush()

    def _read(self) -> dict[str, Any] | None:
        line = self.file.readline()
        return json.loads(line) if line else None

    def _serve(self) -> None:
        try:
            while (message := self._read()) is not None:
                if message.get("type") == "render":
                    self._render(message)
                elif message.get("type") == "ping":
                    self._send({"type": "pong", "t": message.get("t")})
        except (OSError, ValueError):
            pass

    def _render(self, order: dict[str, Any]) -> None:
        chunk_id = order["chunk_id"]
        failing = sorted(self.fail_once & set(order["frames"]))
        for frame in order["frames"]:
            if frame in failing:
                continue
            self._send(
                {
                    "type": "frame",
                    "chunk_id": chunk_id,
                    "frame": frame,
                    "output_file": self.output_file(order, frame),
                    "render_time": 0.01,
                }
            )
        done: dict[str, Any] = {
            "type": "chunk_done",
            "chunk_id": chunk_id,
            "ok": True,
            "exit_code": 0,
            "log_tail": [],
        }
        if failing:
            self.fail_once -= set(failing)
            error = f"Error: stand-in failure on frames {failing}"
            done.update(ok=False, exit_code=1, error=error, log_tail=["Fra:1 | Syncing", error])
        self._send(done)
        self.chunks += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(10)


class Dashboard:
    """One browser tab on the dashboard: logs in with the farm token when asked, and records
    console errors, uncaught exceptions and dialogs (an XSS would open one)."""

    def __init__(self, page: Any, base_url: str, token: str | None) -> None:
        self.page = page
        self.base_url = base_url
        self.token = token
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()

    def open(self, route: str = "#/") -> Any:
        """Load the page at `route` and wait until it is live (logging in when it asks)."""
        page = self.page
        page.goto(f"{self.base_url}/{route}")
        # Predicates answer false, never throw, while an element is not there yet.
        page.wait_for_function(
            "() => document.querySelector('#conn')?.dataset.state === 'live'"
            " || document.querySelector('#login')?.hidden === false",
            timeout=15000,
        )
        if page.locator("#login").is_visible():
            assert self.token, "the page asked for a token on a farm without one"
            page.fill("#token", self.token)
            page.click("#login button[type=submit]")
        page.wait_for_function(
            "() => document.querySelector('#conn')?.dataset.state === 'live'", timeout=15000
        )
        return page

    def go(self, route: str) -> Any:
        """Follow a link inside the page (no reload)."""
        self.page.evaluate("(r) => { location.hash = r; }", route)
        return self.page
