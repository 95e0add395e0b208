"""JSON API clients over the server's TCP port (docs/api.md): a blocking one for set-up and
checks, an asyncio one for use next to the simulated nodes on the same event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

from brender import wire

HOST = "127.0.0.1"  # the benchmarks never talk to anything but loopback


class ApiError(RuntimeError):
    """The server answered `ok: false`."""


def _unwrap(answer: dict[str, Any], request: dict[str, Any]) -> Any:
    if not answer.get("ok"):
        raise ApiError(f"{request.get('item')} {request.get('action')}: {answer.get('error')}")
    return answer["data"]


class Api:
    """One TCP connection, one request at a time; console text (not starting '{') is skipped."""

    def __init__(self, port: int, timeout: float = 120.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.file = self.sock.makefile("rwb")

    def request(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.file.write(wire.encode(obj))
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            if line.lstrip().startswith(b"{"):
                return wire.decode(line)

    def ok(self, obj: dict[str, Any]) -> Any:
        return _unwrap(self.request(obj), obj)

    def timed(self, obj: dict[str, Any]) -> tuple[float, Any]:
        """Seconds from sending the request to its whole answer, and the answer's data."""
        start = time.perf_counter()
        data = self.ok(obj)
        return time.perf_counter() - start, data

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncApi:
    """The same, on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> AsyncApi:
        reader, writer = await asyncio.open_connection(HOST, port, limit=wire.MAX_LINE * 16)
        return cls(reader, writer)

    async def request(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.writer.write(wire.encode(obj))
        await self.writer.drain()
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            if line.lstrip().startswith(b"{"):
                return wire.decode(line)

    async def ok(self, obj: dict[str, Any]) -> Any:
        return _unwrap(await self.request(obj), obj)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


# -- the requests the scenarios make ------------------------------------------------------------


def submit_request(
    shot: str,
    frames: int,
    *,
    blend_file: str = "/bench/scene.blend",
    chunk_size: int | None = None,
    paused: bool = False,
    output: str | None = None,
    frame_start: int = 1,
    project: str = "bench",
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "project": project,
        "sequence": "sq",
        "shot": shot,
        "blend_file": blend_file,
        "frame_start": frame_start,
        "frame_end": frame_start + frames - 1,
        "paused": paused,
    }
    if chunk_size is not None:
        values["chunk_size"] = chunk_size
    if output is not None:
        values["output"] = output
    return {"item": "job", "action": "submit", "values": values}


def job_request(job_id: int) -> dict[str, Any]:
    return {"item": "job", "action": "read", "filters": {"id": job_id}}


def verb_request(job_ids: list[int], verb: str) -> dict[str, Any]:
    return {"item": "job", "action": verb, "filters": {"id": job_ids}}


CHEAP_REQUEST = {"item": "project", "action": "read", "limit": 1}
"""An API answer that needs the database but almost no work: "is it serving?"."""
