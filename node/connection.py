"""The node's link to the master: hello/welcome, reconnect with backoff, heartbeat, outbox.

Orders are handed to `on_order` as they arrive. `frame` and `chunk_done` reports go through
the `Outbox` (they survive disconnects); everything else is sent now or dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable

from brender import messages, wire
from brender.messages import Message
from brender.node.errors import NodeError, Unauthorized
from brender.node.outbox import Outbox, Report
from brender.tls import ClientTLS, check_pin, describe

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5
CONNECT_TIMEOUT = 10.0
WELCOME_TIMEOUT = 30.0
MAX_EARLY = 100
"""Orders the master may send before its `welcome` (they are served right after it)."""


def jittered(delay: float) -> float:
    """`delay` ± 25 %, so a farm of nodes does not reconnect in lockstep."""
    return delay * random.uniform(0.75, 1.25)


class Connection:
    """Keeps one connection to the master alive and hands each order to `on_order`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        hello: Callable[[], messages.Hello],
        on_order: Callable[[Message], None],
        on_welcome: Callable[[messages.Hello, messages.Welcome], None] | None = None,
        max_backoff: float = 5.0,
        tls: ClientTLS | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        """How the master's certificate is checked; None: plain TCP."""
        self.max_backoff = max_backoff
        self.client_id: int | None = None
        self.http_port: int | None = None
        """The master's HTTP port, from its `welcome` (uploaded jobs' files, frames back)."""
        self._hello = hello
        self._on_order = on_order
        self._on_welcome = on_welcome
        self._writer: asyncio.StreamWriter | None = None
        self._outbox = Outbox()
        self._welcomed = False

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def http_url(self) -> str | None:
        """The master's HTTP address, when its `welcome` named the port."""
        if self.http_port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls is not None else "http"  # one certificate for both ports
        return f"{scheme}://{host}:{self.http_port}"

    @property
    def connected(self) -> bool:
        """Welcomed by the master and not lost since."""
        return self._writer is not None

    def send(self, message: Message) -> None:
        """Send now if connected, else drop: for answers that are stale a moment later."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(wire.encode(message.to_wire()))

    def queue(self, message: Report) -> None:
        """Send in order, now or after the next welcome; kept until the master read it."""
        self._outbox.put(message)

    def pending_chunk_id(self) -> int | None:
        """The chunk of the oldest report the master has not read yet, if any."""
        return self._outbox.first_chunk_id()

    async def settle(self, timeout: float) -> bool:
        """Wait until the master has read every queued report (or `timeout`)."""
        try:
            async with asyncio.timeout(timeout):
                await self._outbox.settled.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Connect, serve, reconnect, forever; raises `Unauthorized` if the token is refused."""
        delay = FIRST_BACKOFF
        said = ""  # the last reason logged: each new one once, repeats at debug level
        while True:
            try:
                # asyncio.timeout, never wait_for: on 3.11 wait_for drops a cancel that lands
                # with its result, and a node told to stop would go on serving
                # (tests/node/test_node_stop_race.py).
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await self._open()
            except (OSError, TimeoutError) as exc:
                reason = describe(exc, self.host) or str(exc) or type(exc).__name__
                level = logging.ERROR if isinstance(exc, ssl.SSLError) else logging.WARNING
                log.log(
                    logging.DEBUG if reason == said else level,
                    "cannot reach the master at %s (%s); retrying",
                    self.address,
                    reason,
                )
                said = reason
            else:
                self._welcomed = False
                try:
                    await self._serve(reader, writer)
                except Unauthorized:
                    raise
                except (OSError, EOFError, TimeoutError, NodeError, wire.WireError) as exc:
                    # Refused before a welcome, the same way each time: said once.
                    reason = str(exc)
                    again = reason == said and not self._welcomed
                    log.log(
                        logging.DEBUG if again else logging.WARNING,
                        "connection to the master at %s lost: %s",
                        self.address,
                        reason,
                    )
                    said = reason
                except Exception:
                    log.exception("connection to the master at %s failed", self.address)
                finally:
                    await self._close(writer)
                if self._welcomed:
                    delay, said = FIRST_BACKOFF, ""
            await asyncio.sleep(jittered(delay))
            delay = min(delay * 2, self.max_backoff)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the master; over TLS, its certificate checked (CA or pin)."""
        if self.tls is None:
            return await asyncio.open_connection(self.host, self.port, limit=wire.MAX_LINE)
        reader, writer = await asyncio.open_connection(
            self.host,
            self.port,
            limit=wire.MAX_LINE,
            ssl=self.tls.context(),
            server_hostname=self.host,
            ssl_handshake_timeout=CONNECT_TIMEOUT,
        )
        try:
            check_pin(writer.get_extra_info("ssl_object"), self.tls.pin, self.host)
        except ssl.SSLError:
            await self._close(writer)
            raise
        return reader, writer

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = self._hello()
        writer.write(wire.encode(hello.to_wire()))
        await writer.drain()
        async with asyncio.timeout(WELCOME_TIMEOUT):
            answer, early = await self._handshake(reader)
        if self._on_welcome is not None:
            self._on_welcome(hello, answer)
        self.client_id = answer.client_id
        self.http_port = answer.http_port
        self._outbox.fold = answer.folds()
        heartbeat = answer.heartbeat if answer.heartbeat > 0 else 0
        log.info("connected to the master at %s as client %s", self.address, self.client_id)
        self._welcomed = True
        self._writer = writer
        self._outbox.ready.set()
        for message in early:
            self._dispatch(message)
        tasks = [
            asyncio.create_task(self._read_loop(reader, heartbeat)),
            asyncio.create_task(self._flush_loop(writer)),
        ]
        if heartbeat:
            tasks.append(asyncio.create_task(self._ping_loop(heartbeat)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            self._writer = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._outbox.connection_lost()

    async def _handshake(
        self, reader: asyncio.StreamReader
    ) -> tuple[messages.Welcome, list[Message]]:
        """The master's `welcome`, and any order it sent before it (served after it)."""
        early: list[Message] = []
        while True:
            answer = await self._read(reader)
            if answer is None:
                raise NodeError("the master closed the connection before its welcome")
            if isinstance(answer, messages.Welcome):
                return answer, early
            if isinstance(answer, messages.Error):
                text = f"{answer.code}: {answer.message}"
                if answer.code == "unauthorized":
                    raise Unauthorized(f"the master at {self.address} refused us: {text}")
                raise NodeError(f"the master refused us ({text})")
            if len(early) >= MAX_EARLY:
                raise NodeError(f"no 'welcome' from the master, got {answer.TYPE!r}")
            early.append(answer)

    async def _read(self, reader: asyncio.StreamReader) -> Message | None:
        """The next message (console text and unknown messages skipped); None at the end."""
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return None
            except asyncio.LimitOverrunError:
                raise NodeError(f"the master sent a line over {wire.MAX_LINE} bytes") from None
            if not line.lstrip().startswith(b"{"):
                continue
            try:
                raw = wire.decode_message(line)
            except wire.WireError as exc:
                log.warning("ignoring a bad line from the master: %s", exc.message)
                continue
            try:
                return messages.from_server(raw)
            except messages.MessageError as exc:
                self._refused(raw, exc)

    def _refused(self, raw: dict[str, object], exc: messages.MessageError) -> None:
        """A render order we cannot take is answered, so the master gives the chunk back."""
        chunk_id = raw.get("chunk_id")
        if raw.get("type") == "render":
            log.warning("rejecting chunk %s: invalid render order: %s", chunk_id, exc)
            held = (
                chunk_id if isinstance(chunk_id, int) and not isinstance(chunk_id, bool) else None
            )
            self.send(messages.Rejected(held, f"invalid render order: {exc}"))
        else:
            text = str(raw)[:200]
            log.warning("ignoring a message from the master (%s): %s", exc, text)

    async def _read_loop(self, reader: asyncio.StreamReader, heartbeat: float) -> None:
        # We ping every heartbeat and the master answers at once: this long a silence is a
        # dead link (a master host that vanished without closing the socket).
        timeout = max(4 * heartbeat, 15.0) if heartbeat else None
        while True:
            try:
                # Not wait_for: on 3.11 it can swallow a cancel that comes with a line, and a
                # node told to stop would go on reading (seen as a node that would not stop).
                async with asyncio.timeout(timeout):
                    message = await self._read(reader)
            except TimeoutError:
                raise NodeError(f"no word from the master for {timeout:g} s") from None
            if message is None:
                raise EOFError("the master closed the connection")
            self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        if isinstance(message, messages.Ping):
            self.send(messages.Pong(message.t))
        elif isinstance(message, messages.Pong):
            self._outbox.pong(message.t)
        elif isinstance(message, messages.Ack):
            self._outbox.ack(message.seq)
        elif isinstance(message, messages.Error):
            log.warning("the master says: %s: %s", message.code, message.message)
        else:
            if isinstance(message, messages.Render) and message.ack is not None:
                self._outbox.ack(message.ack)
            self._on_order(message)

    async def _flush_loop(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await self._outbox.ready.wait()
            self._outbox.ready.clear()
            # The master acknowledges each report (`ack`) once it is durable: no ping needed.
            while (message := self._outbox.take()) is not None:
                writer.write(wire.encode(message.to_wire()))
                await writer.drain()

    async def _ping_loop(self, heartbeat: float) -> None:
        while True:
            await asyncio.sleep(heartbeat)
            self._ping()

    def _ping(self) -> None:
        if self._writer is None:
            return
        self.send(messages.Ping(self._outbox.ping_time()))

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
