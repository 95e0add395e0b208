"""One connected render node: reads its responses, writes its orders (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

from tornado.iostream import IOStream, StreamClosedError

from brender import __version__, wire
from brender.server.api import token_ok
from brender.server.errors import FarmError
from brender.server.farm import Farm
from brender.server.lines import LineReader, LineTooLong
from brender.server.services import work

log = logging.getLogger(__name__)

_requests = itertools.count(1)


class NodeSession:
    def __init__(self, stream: IOStream, reader: LineReader, farm: Farm, address: str) -> None:
        self.stream = stream
        self.reader = reader
        self.farm = farm
        self.address = address
        self.client_id: int | None = None
        self.name = ""
        self.enabled = True
        self.chunk_id: int | None = None
        self.job_id: int | None = None
        self.replaced = False
        self.last_heard = time.monotonic()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}

    # -- writing -------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        if self.stream.closed():
            return
        future = self.stream.write(wire.encode(message))
        future.add_done_callback(lambda f: f.exception())  # a closed stream is handled by run()

    def close(self) -> None:
        self.stream.close()

    async def system(self, command: str, timeout: float = 5.0) -> dict[str, Any]:
        """Ask the node a `system` question and wait for its answer."""
        request = next(_requests)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        self.send({"type": "system", "command": command, "request": request})
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise FarmError(
                f"node {self.name} did not answer within {timeout:g} s", "timeout"
            ) from None
        finally:
            self._pending.pop(request, None)

    # -- reading -------------------------------------------------------------------------------

    async def run(self, hello: dict[str, Any]) -> None:
        """Serve the node from its `hello` until the connection ends."""
        token = self.farm.settings.token
        offered = hello.get("token")
        if not token_ok(token, offered):
            self.send(
                {
                    "type": "error",
                    "code": "unauthorized",
                    "message": "this farm needs a valid token (--token / BRENDER_TOKEN)",
                }
            )
            log.warning("node from %s refused: missing or wrong token", self.address)
            await self._flush_and_close()
            return
        try:
            client_id = self.farm.node_joined(self, hello)
        except FarmError as exc:
            self.send({"type": "error", "code": exc.code, "message": exc.message})
            await self._flush_and_close()
            return
        self.send(
            {
                "type": "welcome",
                "client_id": client_id,
                "heartbeat": self.farm.settings.heartbeat,
                "server_version": __version__,
            }
        )
        reason = "connection closed"
        try:
            while True:
                line = await self.reader.readline()
                self.last_heard = time.monotonic()
                if line.strip():
                    self._handle(line)
        except StreamClosedError:
            pass
        except LineTooLong:
            reason = "sent a line over the size cap"
        finally:
            self.stream.close()
            for future in self._pending.values():
                future.cancel()
            self.farm.node_left(self, reason)

    async def _flush_and_close(self) -> None:
        with contextlib.suppress(StreamClosedError):
            await self.stream.write(b"")
        self.stream.close()

    def _handle(self, line: bytes) -> None:
        try:
            message = wire.decode(line)
            kind = message.get("type")
            handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
            if handler is None:
                raise FarmError(f"unknown message type {kind!r}")
            handler(self, message)
        except (wire.WireError, FarmError, KeyError, TypeError, ValueError) as exc:
            log.warning("client %s (%s) sent a bad message: %s", self.client_id, self.name, exc)
        except Exception:
            log.exception(
                "client %s (%s): handling %r failed", self.client_id, self.name, line[:200]
            )

    # -- responses -----------------------------------------------------------------------------

    def _on_frame(self, m: dict[str, Any]) -> None:
        assert self.client_id is not None
        render_time = m.get("render_time")
        seconds = float(render_time) if isinstance(render_time, int | float) else None
        if self.job_id is not None and m.get("chunk_id") == self.chunk_id:
            self.farm.speeds.record(self.job_id, self.client_id, seconds)
        if work.frame_done(
            self.client_id,
            _int(m, "chunk_id"),
            _int(m, "frame"),
            str(m.get("output_file", "")),
            seconds,
        ):
            self.farm.emit("frame", {"chunk_id": m["chunk_id"], "number": m["frame"]})

    def _on_chunk_done(self, m: dict[str, Any]) -> None:
        assert self.client_id is not None
        chunk_id = _int(m, "chunk_id")
        tail = m.get("log_tail") or []
        job_id = work.chunk_finished(
            self.client_id,
            chunk_id,
            bool(m.get("ok")),
            _opt_int(m.get("exit_code")),
            str(m.get("error") or ""),
            [str(x) for x in tail] if isinstance(tail, list) else [],
        )
        if job_id is not None:
            self.farm.emit("job", {"id": job_id})
        if self.chunk_id in (chunk_id, None):
            self.farm.node_idle(self.client_id)

    def _on_rejected(self, m: dict[str, Any]) -> None:
        assert self.client_id is not None
        log.warning(
            "client %d (%s) rejected chunk %s: %s",
            self.client_id,
            self.name,
            m.get("chunk_id"),
            m.get("reason"),
        )
        work.requeue_client(
            self.client_id, f"node rejected it: {m.get('reason')}", chunk_id=_int(m, "chunk_id")
        )
        self.farm.kick()

    def _on_system(self, m: dict[str, Any]) -> None:
        future = self._pending.get(_int(m, "request"))
        if future is not None and not future.done():
            future.set_result(m)

    def _on_ping(self, m: dict[str, Any]) -> None:
        self.send({"type": "pong", "t": m.get("t")})

    def _on_ignored(self, m: dict[str, Any]) -> None:
        pass


def _int(m: dict[str, Any], key: str) -> int:
    value = m.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FarmError(f"'{key}' must be an integer")
    return value


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_HANDLERS = {
    "frame": NodeSession._on_frame,
    "chunk_done": NodeSession._on_chunk_done,
    "rejected": NodeSession._on_rejected,
    "system": NodeSession._on_system,
    "ping": NodeSession._on_ping,
    "pong": NodeSession._on_ignored,
    "progress": NodeSession._on_ignored,
}
