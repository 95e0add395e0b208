"""The dashboard's live side: `/ws` pushes the farm's changes, coalesced (docs/dashboard.md).

The socket only carries *which* things changed (ids by kind, a few times a second at most);
the page re-reads them through `POST /api`. So a burst of 10,000 frame reports costs the
browser a handful of small messages, and the event path never touches the database.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import tornado.web
import tornado.websocket
from tornado.ioloop import IOLoop

from brender import __version__
from brender.server.api import token_ok
from brender.server.farm import Farm

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("web")
"""The page and its assets (plain HTML, CSS and JavaScript modules: nothing to build)."""

COALESCE = 0.25
"""Seconds between two `changes` messages: every change of that window goes in one message."""

HELLO_TIMEOUT = 10.0
PING_INTERVAL = 20.0
MAX_IDS = 5000
"""Past this many ids of one kind in a window, the kind is sent as `"all"` (re-read it all)."""

KINDS = ("job", "chunk", "client", "project", "sequence", "shot")

CLOSE_UNAUTHORIZED = 4401
CLOSE_NO_HELLO = 4408
CLOSE_BAD_MESSAGE = 4400


class EventSocket(tornado.websocket.WebSocketHandler):
    """One dashboard: `hello` with the token first, then `changes` messages until it goes."""

    def initialize(self, farm: Farm) -> None:
        self.farm = farm
        self._subscribed = False
        self._pending: dict[str, set[int] | None] = {}  # None: too many, re-read the kind
        self._deleted: dict[str, set[int]] = {}
        self._progress: dict[int, dict[str, Any]] = {}  # chunk id -> its latest progress
        self._flush_timer: object | None = None
        self._hello_timer: object | None = None

    @property
    def max_message_size(self) -> int:
        return 4096  # the page only ever sends `hello`

    @property
    def ping_interval(self) -> float:
        return PING_INTERVAL  # a vanished browser is noticed and unsubscribed

    def open(self, *args: str, **kwargs: str) -> None:
        loop = IOLoop.current()
        self._hello_timer = loop.call_later(HELLO_TIMEOUT, self._no_hello)

    def on_message(self, message: str | bytes) -> None:
        if self._subscribed:
            return  # nothing else is asked of the page yet; ignore rather than fail
        try:
            hello = json.loads(message)
        except ValueError:
            hello = None
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            self.close(CLOSE_BAD_MESSAGE, 'the first message must be {"type": "hello", ...}')
            return
        offered = hello.get("token")
        if not token_ok(self.farm.settings.token, offered):
            # A page without a token yet asks first; only a wrong token is worth a warning.
            level = logging.WARNING if offered else logging.INFO
            log.log(
                level,
                "dashboard socket from %s refused: %s token",
                self.request.remote_ip,
                "wrong" if offered else "no",
            )
            self.close(CLOSE_UNAUTHORIZED, "unauthorized: wrong or missing token")
            return
        self._cancel_hello_timer()
        self._subscribed = True
        self.farm.listeners.append(self._on_event)
        self._send(
            {"type": "welcome", "server_version": __version__, "coalesce": COALESCE, "kinds": KINDS}
        )

    def on_close(self) -> None:
        self._cancel_hello_timer()
        if self._flush_timer is not None:
            IOLoop.current().remove_timeout(self._flush_timer)
            self._flush_timer = None
        if self._subscribed:
            self._subscribed = False
            self.farm.listeners.remove(self._on_event)

    # -- events --------------------------------------------------------------------------------

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        """Called by `Farm.emit` for every change: remember the id, flush later. Never raises,
        so a dashboard can never break the code that reported the change."""
        try:
            if kind == "progress":  # the data itself goes out: the latest one of each chunk
                chunk_id = data.get("chunk_id")
                if isinstance(chunk_id, int):
                    self._progress[chunk_id] = data
            elif kind == "frame":  # a frame's report names its chunk: the page re-reads it
                self._note("chunk", data.get("chunk_id"))
            else:
                self._note(kind, data.get("id"))
                if kind == "chunk":
                    self._note("job", data.get("job_id"))
                if data.get("deleted"):
                    ident = data.get("id")
                    if isinstance(ident, int):
                        self._deleted.setdefault(kind, set()).add(ident)
            if self._flush_timer is None:
                self._flush_timer = IOLoop.current().call_later(COALESCE, self._flush)
        except Exception:
            log.exception("dashboard socket: could not note %s event %r", kind, data)

    def _note(self, kind: str, ident: object) -> None:
        if not isinstance(ident, int) or isinstance(ident, bool):
            return
        if kind not in self._pending:
            self._pending[kind] = set()
        ids = self._pending[kind]
        if ids is None:
            return
        ids.add(ident)
        if len(ids) > MAX_IDS:
            self._pending[kind] = None

    def _flush(self) -> None:
        self._flush_timer = None
        message: dict[str, Any] = {"type": "changes"}
        for kind, ids in self._pending.items():
            message[kind] = "all" if ids is None else sorted(ids)
        if self._deleted:
            message["deleted"] = {kind: sorted(ids) for kind, ids in self._deleted.items()}
        if self._progress:
            message["progress"] = [self._progress[c] for c in sorted(self._progress)]
        self._pending = {}
        self._deleted = {}
        self._progress = {}
        self._send(message)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            future = self.write_message(json.dumps(message, separators=(",", ":")))
        except tornado.websocket.WebSocketClosedError:
            return
        future.add_done_callback(lambda f: f.exception())  # a closed socket ends in on_close

    def _no_hello(self) -> None:
        self._hello_timer = None
        if not self._subscribed:
            self.close(CLOSE_NO_HELLO, f"no hello within {HELLO_TIMEOUT:g} s")

    def _cancel_hello_timer(self) -> None:
        if self._hello_timer is not None:
            IOLoop.current().remove_timeout(self._hello_timer)
            self._hello_timer = None


class PageFiles(tornado.web.StaticFileHandler):
    """The dashboard's files: revalidated on every load (so an upgrade shows at once; an
    unchanged file is a 304), and the page may load nothing from elsewhere."""

    def parse_url_path(self, url_path: str) -> str:
        # A NUL (`/static/%00`) made os.path raise: a 500 with a traceback. No file has one.
        if "\x00" in url_path:
            raise tornado.web.HTTPError(404)
        return super().parse_url_path(url_path)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        )
