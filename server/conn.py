"""One TCP connection as an asyncio `Protocol`: lines in, bytes out, a hard cap per line.

Bytes go straight to the socket (`transport.write`), and a node's lines are handed to its
session as they arrive (`push_to`), in the same call that read them: no future, no task switch
and no stream buffer per line, which is most of what a node connection costs (bench/RESULTS.md).
API clients and the console read line by line (`readline`), waiting as coroutines do.

The cap: a peer that sends more than `wire.MAX_LINE` bytes without a newline gets `LineTooLong`
from its next read (or its session is told), so the caller can answer before it closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from brender import wire

log = logging.getLogger(__name__)


class LineTooLong(Exception):
    """The peer sent more than `wire.MAX_LINE` bytes without a newline."""


class ConnectionClosed(Exception):
    """The peer went away (or the connection was closed) before a whole line came."""


Handler = Callable[["Connection"], Awaitable[None]]
Sink = Callable[[list[bytes]], None]


class Connection(asyncio.Protocol):
    """A connection; `handler(conn)` serves it from its first byte and closes it when done."""

    def __init__(
        self,
        handler: Handler,
        max_line: int = wire.MAX_LINE,
        idle: float | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.handler = handler
        self.max_line = max_line
        self.idle = idle
        """Seconds a peer may send nothing before it is closed (None: never; nodes are watched
        by the farm's node timeout instead, see `push_to`)."""
        self.on_lost = on_lost
        self._heard = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self.peer = "?"
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for a newline
        self._closed = False
        self._too_long = False
        self._waiter: asyncio.Future[None] | None = None
        self._sink: Sink | None = None
        self._writable: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    # -- asyncio's side ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.peer = _peer(transport.get_extra_info("peername"))
        loop = asyncio.get_running_loop()
        self._lost = loop.create_future()
        self._heard = loop.time()
        if self.idle is not None:
            self._idle_timer = loop.call_later(self.idle, self._check_idle)
        self.task = loop.create_task(self._serve())

    def _check_idle(self) -> None:
        """Close a peer that has sent nothing for `idle` seconds (checked, not reset per read)."""
        self._idle_timer = None
        if self.idle is None or self._closed:
            return
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._heard
        if quiet >= self.idle:
            log.debug("closing %s: nothing heard for %.0f s", self.peer, quiet)
            self.close()
        else:
            self._idle_timer = loop.call_later(self.idle - quiet, self._check_idle)

    def data_received(self, data: bytes) -> None:
        if self.idle is not None:
            self._heard = asyncio.get_running_loop().time()
        self._buffer += data
        if self._sink is not None:
            self._push()
        elif self._too_long or self._newline() >= 0 or len(self._buffer) > self.max_line:
            self._wake()

    def eof_received(self) -> bool:
        return False  # close the transport: a half-closed peer has nothing more to say

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.on_lost is not None:
            self.on_lost()
            self.on_lost = None
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def _serve(self) -> None:
        try:
            await self.handler(self)
        except (ConnectionClosed, ConnectionError):
            pass
        except Exception:
            log.exception("connection from %s failed", self.peer)
        finally:
            self.close()

    # -- reading ----------------------------------------------------------------------------

    def _newline(self) -> int:
        pos = self._buffer.find(b"\n", self._scanned)
        self._scanned = len(self._buffer) if pos < 0 else pos
        return pos

    def _take(self) -> bytes | None:
        """The next whole line of the buffer without its newline, or None; flags one too long."""
        pos = self._newline()
        if pos > self.max_line or (pos < 0 and len(self._buffer) > self.max_line):
            self._buffer.clear()
            self._scanned = 0
            self._too_long = True
            return None
        if pos < 0:
            return None
        line = bytes(self._buffer[:pos])
        del self._buffer[: pos + 1]
        self._scanned = 0
        return line[:-1] if line.endswith(b"\r") else line

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def readline(self) -> bytes:
        """The next line without its newline; raises ConnectionClosed at the end and
        LineTooLong for a line over the cap."""
        while True:
            line = self._take()
            if self._too_long:
                self._too_long = False
                raise LineTooLong(f"line longer than {self.max_line} bytes")
            if line is not None:
                return line
            if self._closed:
                raise ConnectionClosed()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def push_to(self, sink: Sink) -> None:
        """From now on, hand every whole line to `sink` as it arrives (lines already buffered
        first); `wait_closed` then says how the connection ended. A node pings: no idle
        timeout of this connection's own from now on."""
        self.idle = None
        self._sink = sink
        self._push()

    def _push(self) -> None:
        lines = []
        while (line := self._take()) is not None:
            lines.append(line)
        if lines and self._sink is not None:
            self._sink(lines)
        if self._too_long:
            self.close()

    def buffered(self) -> bool:
        return bool(self._buffer)

    async def wait_closed(self) -> str:
        """Wait until the connection ends; answers why, for the log."""
        if self._lost is not None:
            await self._lost
        return "sent a line over the size cap" if self._too_long else "connection closed"

    # -- writing ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send now (the kernel's buffer takes it; the rest is queued by the transport)."""
        if data and not self._closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the peer reads slower than we write (for answers that may be big)."""
        if self._closed:
            raise ConnectionClosed()
        if self._writable is not None and not self._writable.done():
            await self._writable

    async def send(self, data: bytes) -> None:
        """Write, then wait for room: what a request/answer loop does per answer."""
        self.write(data)
        await self.drain()

    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
