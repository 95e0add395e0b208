"""The TCP listener (default port 6000): API clients, render nodes and people with telnet.

The first line decides who is on the other end: a `hello` is a node, any other JSON object an
API client, anything else a person at the console. The handler only frames lines, caps their
size and hands them on.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from brender import wire
from brender.server import api, console
from brender.server.farm import Farm
from brender.server.lines import LineReader, LineTooLong
from brender.server.nodes import NodeSession

log = logging.getLogger(__name__)


class FarmTCPServer(TCPServer):
    def __init__(self, farm: Farm) -> None:
        super().__init__(max_buffer_size=4 * wire.MAX_LINE)
        self.farm = farm

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        peer = _peer(address)
        # Small lines both ways: without this an order written after a pong waits for the
        # peer's delayed ACK (~40 ms at p99 in bench dispatch-latency).
        stream.set_nodelay(True)
        reader = LineReader(stream)
        try:
            pending, arrived = await console.first_line(reader)
            if not arrived:
                # No console line starts with "{": a slow JSON client can skip the greeting.
                await stream.write(console.BANNER + console.PROMPT)
            first = await pending
            if not first.lstrip().startswith(b"{"):
                await console.Console(self.farm, stream, reader, peer).run(first)
                return
            if not arrived:
                await stream.write(b"\r\n")  # end the prompt's line before the first answer
            try:
                message = wire.decode(first)
            except wire.WireError as exc:
                message = None
                await stream.write(wire.encode(api.error_answer(None, exc.code, exc.message)))
            if message is not None and message.get("type") == "hello":
                await NodeSession(stream, reader, self.farm, peer).run(message)
                return
            await self._serve_api(stream, reader, message)
        except StreamClosedError:
            pass
        except LineTooLong as exc:
            await _last_words(stream, api.error_answer(None, "too_large", str(exc)))
        except Exception:
            log.exception("connection from %s failed", peer)
        finally:
            stream.close()

    async def _serve_api(
        self, stream: IOStream, reader: LineReader, first: dict[str, Any] | None
    ) -> None:
        caller = api.Caller(transport="tcp")
        if first is not None:
            await stream.write(_line(await api.handle(self.farm, first, caller)))
        while True:
            line = await reader.readline()
            if not line.strip():
                continue
            try:
                request: Any = wire.loads(line)
            except wire.WireError as exc:
                await stream.write(wire.encode(api.error_answer(None, exc.code, exc.message)))
                continue
            await stream.write(_line(await api.handle(self.farm, request, caller)))


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


async def _last_words(stream: IOStream, message: dict[str, Any]) -> None:
    with contextlib.suppress(StreamClosedError):
        await stream.write(wire.encode(message))


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
