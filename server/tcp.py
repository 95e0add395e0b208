"""The TCP listener (default port 6000): API clients, render nodes and people with telnet.

The first line decides who is on the other end: a `hello` is a node, any other JSON object an
API client, anything else a person at the console. The connection (server/conn.py) only frames
lines, caps their size and hands them on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from typing import Any

from brender import wire
from brender.server import api, console
from brender.server.accept import Gate, Listener
from brender.server.conn import Connection, LineTooLong
from brender.server.farm import Farm
from brender.server.nodes import NodeSession
from brender.tls import HANDSHAKE_TIMEOUT

log = logging.getLogger(__name__)


IDLE = 300.0
"""Seconds an API or console connection may stay silent (nodes ping; see Connection.push_to)."""
REFUSAL = wire.encode(
    api.error_answer(None, "unavailable", "too many connections to this farm; try again later")
)
_NOT_TLS = "this port speaks TLS: connect with TLS (a node: --master tls://HOST:PORT)"
NOT_TLS = wire.encode(
    {
        **api.error_answer(None, "bad_request", _NOT_TLS),
        **{"type": "error", "code": "bad_request", "message": _NOT_TLS},  # a node reads these
    }
)
TLS_HANDSHAKE = 0x16
"""The first byte of a TLS client's first record (its ClientHello)."""


class FarmTCP:
    """What serves each connection of the TCP port (asyncio Protocols, server/conn.py), let in
    by the port's gate (server/accept.py)."""

    def __init__(
        self, farm: Farm, gate: Gate, idle: float = IDLE, tls: ssl.SSLContext | None = None
    ) -> None:
        self.farm = farm
        self.gate = gate
        self.idle = idle
        self.tls = tls
        self.listeners: list[Listener] = []
        self._attaching: set[asyncio.Future[None]] = set()
        self._said = -60.0
        self.failed_handshakes = 0

    def listen(self, sockets: list[socket.socket]) -> None:
        refusal = REFUSAL if self.tls is None else b""  # a TLS peer expects a handshake
        for sock in sockets:
            self.listeners.append(Listener(sock, self.gate, self._accepted, refusal))

    def _accepted(self, sock: socket.socket, peer: str) -> None:
        def factory() -> Connection:
            return Connection(self.serve, idle=self.idle, on_lost=lambda: self.gate.release(peer))

        task = asyncio.ensure_future(self._attach(sock, peer, factory))
        self._attaching.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._attaching.discard)

    async def _attach(self, sock: socket.socket, peer: str, factory: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.tls is None:
                await loop.connect_accepted_socket(factory, sock=sock)
                return
            await self._tls_only(sock)
            await loop.connect_accepted_socket(
                factory, sock=sock, ssl=self.tls, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
            )
        except OSError as exc:  # ssl.SSLError and TimeoutError are OSErrors
            if self.tls is not None:
                self._handshake_failed(peer, exc)
            sock.close()
            self.gate.release(peer)

    async def _tls_only(self, sock: socket.socket) -> None:
        """Wait for the peer's first byte: a plain client (JSON, telnet) is told in one plain
        line that this port speaks TLS, instead of getting a handshake error it cannot read."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(sock.fileno(), readable)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                await ready
        finally:
            loop.remove_reader(sock.fileno())
        first = sock.recv(1, socket.MSG_PEEK)
        if not first:
            raise ConnectionResetError("closed before its handshake")
        if first[0] != TLS_HANDSHAKE:
            with contextlib.suppress(OSError):
                sock.send(NOT_TLS)
            raise ConnectionRefusedError("a plain connection to the TLS port")

    def _handshake_failed(self, peer: str, exc: OSError) -> None:
        """One log line a minute: a port scan must not fill the log."""
        self.failed_handshakes += 1
        now = time.monotonic()
        if now - self._said >= 60.0:
            self._said = now
            log.warning(
                "TLS connection from %s failed (%s); %d so far", peer, exc, self.failed_handshakes
            )

    def stop(self) -> None:
        for listener in self.listeners:
            listener.close()

    async def serve(self, conn: Connection) -> None:
        # asyncio sets TCP_NODELAY on its TCP sockets: small lines both ways never wait for the
        # peer's delayed ACK (~40 ms at p99 in bench dispatch-latency without it).
        try:
            pending, arrived = await console.first_line(conn)
            if not arrived:
                # No console line starts with "{": a slow JSON client can skip the greeting.
                conn.write(console.BANNER + console.PROMPT)
            first = await pending
            if not first.lstrip().startswith(b"{"):
                await console.Console(self.farm, conn).run(first)
                return
            if not arrived:
                conn.write(b"\r\n")  # end the prompt's line before the first answer
            try:
                message = wire.decode(first, walk=False)  # an API request's: after its token
            except wire.WireError as exc:
                message = None
                conn.write(wire.encode(api.error_answer(None, exc.code, exc.message)))
            if message is not None and message.get("type") == "hello":
                try:
                    wire.check_tree(message, first)  # its token is checked by its session
                except wire.WireError as exc:
                    conn.write(wire.encode(api.error_answer(None, exc.code, exc.message)))
                    return
                await NodeSession(conn, self.farm).run(message)
                return
            await self._serve_api(conn, message, first)
        except LineTooLong as exc:
            conn.write(wire.encode(api.error_answer(None, "too_large", str(exc))))

    async def _serve_api(
        self, conn: Connection, first: dict[str, Any] | None, first_text: bytes
    ) -> None:
        caller = api.Caller(transport="tcp")
        if first is not None:
            scan = wire.Scan.of(first_text)
            await conn.send(_line(await api.handle(self.farm, first, caller, scan)))
        while True:
            line = await conn.readline()
            if not line.strip():
                continue
            try:
                request: Any = wire.loads(line, walk=False)  # the walk after the token check
            except wire.WireError as exc:
                await conn.send(wire.encode(api.error_answer(None, exc.code, exc.message)))
                continue
            answer = await api.handle(self.farm, request, caller, wire.Scan.of(line))
            await conn.send(_line(answer))


def _line(answer: dict[str, Any]) -> bytes:
    """The answer as one line, or a `too_large` error when the peer could not read that line.

    Pages always fit (server/budget.py); this catches the rest, such as a verb that names
    100,000 frames, whose answer lists them all."""
    line = wire.encode(answer)
    if len(line) <= wire.MAX_LINE:
        return line
    log.warning("an answer of %d bytes is over the line cap; sent an error instead", len(line))
    what = "the request was carried out, but its answer" if answer.get("ok") else "the answer"
    message = (
        f"{what} ({len(line)} bytes) is over the {wire.MAX_LINE}-byte line cap; "
        "read the rows it concerns page by page"
    )
    small_id = "id" in answer and len(wire.encode(answer["id"])) <= 1024
    echo = {"id": answer["id"]} if small_id else None
    return wire.encode(api.error_answer(echo, "too_large", message))
