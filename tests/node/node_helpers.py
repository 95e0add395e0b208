"""Test doubles and helpers for the node tests: a tiny fake master, polling with deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psutil

from brender import wire

T = TypeVar("T")
Message = dict[str, Any]


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run one async test body with an overall deadline."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def wait_for_condition(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def alive(pid: int) -> bool:
    """True while `pid` is a running process (a zombie is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: list[int], timeout: float = 5.0) -> None:
    """Poll until none of `pids` is a live process (from sync code only: it blocks)."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes still alive: {[p for p in pids if alive(p)]}")
        time.sleep(0.02)


class MasterConnection:
    """One node connection as the fake master sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.hello: Message = {}
        self.received: list[Message] = []
        self.inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self.acked = 0
        """The highest report `seq` this master has acknowledged."""

    def send(self, message: Message) -> None:
        self.writer.write(wire.encode(message))

    async def expect(self, kind: str, timeout: float = 30.0) -> Message:
        """The next message of type `kind` (others are skipped but kept in `received`)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind!r} within {timeout} s; got {self.received}")
            try:
                message = await asyncio.wait_for(self.inbox.get(), remaining)
            except TimeoutError:
                continue
            if message is None:
                raise AssertionError(f"connection closed while waiting for {kind!r}")
            if message.get("type") == kind:
                return message

    def of_type(self, *kinds: str) -> list[Message]:
        return [m for m in self.received if m.get("type") in kinds]

    def drop(self) -> None:
        """Close the connection abruptly, as a crashing master would."""
        self.writer.transport.abort()


class FakeMaster:
    """Accepts node connections on 127.0.0.1: checks `hello`, answers `welcome` (or `error`),
    answers pings and acknowledges reports (`ack` of their `seq`) as the real master does once
    they are durable, and queues everything for the test to read. With `answer_pings` False it
    confirms nothing, so the node must keep its reports."""

    def __init__(self, *, heartbeat: float = 0.5, refuse: Message | None = None) -> None:
        self.heartbeat = heartbeat
        self.refuse = refuse
        self.hold_welcome = 0.0
        self.answer_pings = True
        self.before_welcome: list[Message] = []
        self.welcome_gate: asyncio.Event | None = None
        """When set to an event: the welcome waits for it."""
        self.protocol: int | None = None
        """The welcome's `protocol` (None: left out, as a master from before protocol 2)."""
        self.port = 0
        self.connections: asyncio.Queue[MasterConnection] = asyncio.Queue()
        self.all: list[MasterConnection] = []
        self._server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in self.all:
                connection.writer.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeMaster:
        """`async with FakeMaster() as master:` stops it however the test ends."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def next_connection(self, timeout: float = 30.0) -> MasterConnection:
        return await asyncio.wait_for(self.connections.get(), timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = MasterConnection(reader, writer)
        self.all.append(connection)
        try:
            connection.hello = wire.decode(await reader.readuntil(b"\n"))
            assert connection.hello["type"] == "hello", connection.hello
            if self.refuse is not None:
                connection.send(self.refuse)
                await writer.drain()
                writer.close()
                await self.connections.put(connection)
                return
            if self.hold_welcome:
                await asyncio.sleep(self.hold_welcome)
            if self.welcome_gate is not None:
                await self.welcome_gate.wait()
            for message in self.before_welcome:
                connection.send(message)
            welcome = {
                "type": "welcome",
                "client_id": len(self.all),
                "heartbeat": self.heartbeat,
                "server_version": "test",
            }
            if self.protocol is not None:
                welcome["protocol"] = self.protocol
            connection.send(welcome)
            await self.connections.put(connection)
            while True:
                message = wire.decode(await reader.readuntil(b"\n"))
                connection.received.append(message)
                if message.get("type") == "ping" and self.answer_pings:
                    connection.send({"type": "pong", "t": message["t"]})
                if isinstance(message.get("seq"), int) and self.answer_pings:
                    connection.send({"type": "ack", "seq": message["seq"]})
                    connection.acked = message["seq"]
                await connection.inbox.put(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            await connection.inbox.put(None)
            writer.close()
