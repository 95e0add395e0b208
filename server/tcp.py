"""The TCP listener (default port 6000): API clients, render nodes and people with telnet.

The first line decides who is on the other end: a `hello` is a node, any other JSON object an
API client, anything else a person at the console. The connection (server/conn.py) only frames
lines, caps their size and hands them on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from brender import wire
from brender.server import api, console
from brender.server.conn import Connection, LineTooLong
from brender.server.farm import Farm
from brender.server.nodes import NodeSession

log = logging.getLogger(__name__)


class FarmTCP:
    """What serves each connection of the TCP port (asyncio Protocols, server/conn.py)."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.servers: list[asyncio.Server] = []

    async def listen(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            server = await loop.create_server(lambda: Connection(self.serve), sock=sock)
            self.servers.append(server)

    def stop(self) -> None:
        for server in self.servers:
            server.close()

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
                message = wire.decode(first)
            except wire.WireError as exc:
                message = None
                conn.write(wire.encode(api.error_answer(None, exc.code, exc.message)))
            if message is not None and message.get("type") == "hello":
                await NodeSession(conn, self.farm).run(message)
                return
            await self._serve_api(conn, message)
        except LineTooLong as exc:
            conn.write(wire.encode(api.error_answer(None, "too_large", str(exc))))

    async def _serve_api(self, conn: Connection, first: dict[str, Any] | None) -> None:
        caller = api.Caller(transport="tcp")
        if first is not None:
            await conn.send(_line(await api.handle(self.farm, first, caller)))
        while True:
            line = await conn.readline()
            if not line.strip():
                continue
            try:
                request: Any = wire.loads(line)
            except wire.WireError as exc:
                await conn.send(wire.encode(api.error_answer(None, exc.code, exc.message)))
                continue
            await conn.send(_line(await api.handle(self.farm, request, caller)))


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
