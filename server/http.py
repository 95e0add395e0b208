"""The HTTP listener (default port 8080): `POST /api`, `GET /api/<item>`.

Handlers parse, cap sizes, authenticate and call the one dispatcher; nothing else.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import tornado.web
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream, SSLIOStream
from tornado.log import access_log, gen_log

from brender import wire
from brender.server import api, downloads, thumbs, uploads, ws
from brender.server.accept import Gate, Listener
from brender.server.farm import Farm

MAX_BODY = 8 * wire.MAX_LINE
MAX_BATCH = 1000
DISCARD_LIMIT = 64 * 1024 * 1024
"""Bytes of an over-long body read (and dropped) so that its 413 reaches the client."""

STATUS = {
    "bad_json": 400,
    "bad_request": 400,
    "unknown_item": 404,
    "unknown_action": 400,
    "unsupported_action": 405,
    "not_found": 404,
    "invalid_value": 422,
    "conflict": 409,
    "too_large": 413,
    "unauthorized": 401,
    "timeout": 504,
    "unavailable": 503,
    "missing_files": 409,
    "hash_mismatch": 400,
    "quota": 507,
    "internal": 500,
}


@tornado.web.stream_request_body
class ApiHandler(tornado.web.RequestHandler):
    """`POST /api` and `GET /api/<item>`. The body is taken as it streams in, so one over
    `MAX_BODY` is answered 413, not cut off by a closed connection."""

    def initialize(self, farm: Farm) -> None:
        self.farm = farm
        self._body = bytearray()
        self._over = False

    def prepare(self) -> None:
        # A body over MAX_BODY is read and dropped, then answered 413: a client still sending
        # would see a broken pipe, not the answer, were it sent at once. Past DISCARD_LIMIT
        # the answer goes at once and the connection closes.
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > DISCARD_LIMIT:
            self._over = True
            self._error("too_large", f"request body over {MAX_BODY} bytes")
            return
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            connection.set_max_body_size(DISCARD_LIMIT)

    def data_received(self, chunk: bytes) -> None:
        if len(self._body) + len(chunk) > MAX_BODY:
            self._over = True
            self._body.clear()
        elif not self._over:
            self._body += chunk

    def check_xsrf_cookie(self) -> None:
        """A token header, not a cookie, authenticates: no XSRF to guard against."""

    def _caller(self) -> api.Caller:
        caller = api.Caller(transport="http")
        token = self.farm.settings.token
        offered = api.bearer(self.request.headers.get("Authorization", ""))
        if token and offered is not None:
            caller.authed = api.token_ok(token, offered)
        return caller

    def _reply(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(wire.encode(body))

    def _error(self, code: str, message: str) -> None:
        self._reply(api.error_answer(None, code, message), STATUS.get(code, 400))

    async def post(self) -> None:
        if self._over:
            if not self._finished:
                self._error("too_large", f"request body over {MAX_BODY} bytes")
            return
        raw = bytes(self._body)
        try:
            body = wire.loads(raw, MAX_BODY, walk=False)  # the walk after the token check
        except wire.WireError as exc:
            return self._error(exc.code, exc.message)
        caller = self._caller()
        scan = wire.Scan.of(raw)
        if isinstance(body, list):
            if len(body) > MAX_BATCH:
                return self._error("too_large", f"at most {MAX_BATCH} requests in one list")
            answers = [await api.handle(self.farm, item, caller, scan) for item in body]
            return self._reply(answers)
        answer = await api.handle(self.farm, body, caller, scan)
        status = 200 if answer["ok"] else STATUS.get(answer["error"]["code"], 400)
        self._reply(answer, status)

    async def get(self, item: str) -> None:
        """`GET /api/jobs?status=active&limit=10`: a read with filters from the query string."""
        request: dict[str, Any] = {"item": item, "action": "read", "filters": {}}
        for key, raw_values in self.request.query_arguments.items():
            values = [_scalar(v.decode("utf-8", "replace")) for v in raw_values]
            if key in ("limit", "offset", "order_by"):
                request[key] = values[-1]
            else:
                request["filters"][key] = values[0] if len(values) == 1 else values
        answer = await api.handle(self.farm, request, self._caller())
        status = 200 if answer["ok"] else STATUS.get(answer["error"]["code"], 400)
        self._reply(answer, status)


def _scalar(text: str) -> Any:
    """Query-string values are text; numbers and true/false/null mean what they say."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if text.lstrip("-").isdigit() and len(text) < 16:
        return int(text)
    return text


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, with the path only: a query string may carry a token
    (`/thumb/7?token=…`), and a log is read by more people than the farm's admin."""
    status = handler.get_status()
    if status < 400:
        return  # as before: only what went wrong
    request = handler.request
    level = logging.WARNING if status < 500 else logging.ERROR
    access_log.log(level, "%d %s %s (%s) %.2fms", status, request.method, request.path,
                   request.remote_ip, 1000.0 * request.request_time())  # fmt: skip


def make_app(farm: Farm) -> tornado.web.Application:
    web = str(ws.WEB_DIR)
    files = uploads.routes(farm, farm.blobs) if farm.blobs is not None else []
    return tornado.web.Application(
        [
            *files,
            *downloads.routes(farm),
            (r"/api", ApiHandler, {"farm": farm}),
            (r"/api/([a-z]+)", ApiHandler, {"farm": farm}),
            (r"/ws", ws.EventSocket, {"farm": farm}),
            (r"/thumb/([0-9]+)", thumbs.ThumbHandler, {"farm": farm}),
            (r"/()", ws.PageFiles, {"path": web, "default_filename": "index.html"}),
            (r"/static/(.*)", ws.PageFiles, {"path": web}),
        ],
        log_function=log_request,
    )


class _Counted:
    """A connection of the HTTP port that gives its place back to the gate when it closes."""

    _release: Callable[[], None] | None = None

    def close(self, exc_info: Any = False) -> None:
        super().close(exc_info)  # type: ignore[misc]
        if self._release is not None:
            release, self._release = self._release, None
            release()


class _CountedStream(_Counted, IOStream):
    def __init__(self, sock: socket.socket, release: Callable[[], None]) -> None:
        super().__init__(sock, max_buffer_size=MAX_BODY + 1024 * 1024)
        self._release = release


class _CountedTLSStream(_Counted, SSLIOStream):
    def __init__(self, sock: ssl.SSLSocket, release: Callable[[], None]) -> None:
        super().__init__(sock, max_buffer_size=MAX_BODY + 1024 * 1024)
        self._release = release


class _OncePerMinute(logging.Filter):
    """Tornado logs every failed TLS handshake ("SSL Error on …"): a port scan or a plain-HTTP
    client would fill the log. One line a minute says it happens."""

    def __init__(self) -> None:
        super().__init__()
        self._said = -60.0
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("SSL Error on"):
            return True
        now = time.monotonic()
        if now - self._said < 60.0:
            self.dropped += 1
            return False
        self._said = now
        return True


def listen_http(
    server: HTTPServer,
    sockets: list[socket.socket],
    gate: Gate,
    tls: ssl.SSLContext | None = None,
) -> list[Listener]:
    """Serve HTTP (HTTPS with `tls`) on `sockets` through the port's gate: connections over
    its caps are closed at once, and running out of descriptors pauses accepting instead of
    spinning. The handshake runs on the loop, bounded by the server's idle timeout."""

    def accepted(sock: socket.socket, peer: str) -> None:
        address = sock.getpeername()
        stream: IOStream
        if tls is None:
            stream = _CountedStream(sock, lambda: gate.release(peer))
        else:
            try:
                wrapped = tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError):
                sock.close()
                gate.release(peer)
                return
            stream = _CountedTLSStream(wrapped, lambda: gate.release(peer))
        server.handle_stream(stream, address)

    if tls is not None and not any(isinstance(f, _OncePerMinute) for f in gen_log.filters):
        gen_log.addFilter(_OncePerMinute())
    body = wire.encode(api.error_answer(None, "unavailable", "too many connections; retry"))
    refusal = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body
    # Over TLS a refused peer gets no plain bytes: it expects a handshake.
    return [Listener(sock, gate, accepted, refusal if tls is None else b"") for sock in sockets]
