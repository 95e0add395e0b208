"""One connected render node: decodes its messages and hands them to the farm (docs/protocol.md).

Every line the node sent that is in the read buffer is handled in one go. What answers the
node's reports (the `ack` of its reports, a `pong`) is posted, and goes out once the tick's
changes are committed, in one write: anything the node is told is durable. An order goes out at
once (its claim is committed in the same tick; if the master dies first, the node's `hello`
names the chunk and the returning master gives it back to it), carrying the last `ack`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from brender import __version__, messages, wire
from brender.server.api import token_ok
from brender.server.conn import Connection
from brender.server.errors import FarmError
from brender.server.farm import Farm

log = logging.getLogger(__name__)

_requests = itertools.count(1)


@dataclass
class _Outgoing:
    """What goes to the node once one batch is committed."""

    messages: list[messages.Message] = field(default_factory=list)
    ack: int | None = None


class NodeSession:
    def __init__(self, conn: Connection, farm: Farm) -> None:
        self.conn = conn
        self.farm = farm
        self.address = conn.peer
        self.client_id: int | None = None
        self.name = ""
        self.replaced = False
        self.last_heard = time.monotonic()
        self._pending: dict[int, asyncio.Future[messages.SystemReply]] = {}
        self._out: _Outgoing | None = None
        self._out_batch = -1
        self._durable = 0  # the highest report seq known durable (told, or on the next order)
        self._owed = False  # idle, and not told of `_durable` yet: its next order will, or `pay`

    # -- writing -------------------------------------------------------------------------------

    def send(self, message: messages.Message) -> None:
        """Write now (pings, system questions: nothing that claims durability)."""
        self._write(wire.encode(message.to_wire()))

    def order(self, render: messages.Render) -> None:
        """Send an order now, with the acknowledgement of what is durable so far."""
        data = render.to_wire()
        if self._durable:
            data["ack"] = self._durable
        self._owed = False
        self._write(wire.encode(data))

    def pay(self) -> None:
        """Tell an idle node now what is durable, if no order has told it (the farm calls this
        for each idle node its dispatch pass gives nothing)."""
        if self._owed:
            self._owed = False
            self._write(wire.encode(messages.Ack(self._durable).to_wire()))

    def post(self, message: messages.Message) -> None:
        """Write once everything changed so far is committed."""
        self._outgoing().messages.append(message)

    def _acked(self, seq: int | None) -> None:
        if seq is not None:
            out = self._outgoing()
            out.ack = seq if out.ack is None else max(out.ack, seq)

    def _outgoing(self) -> _Outgoing:
        store = self.farm.store
        if self._out is None or self._out_batch != store.batch_no:
            out = self._out = _Outgoing()
            self._out_batch = store.batch_no
            store.after_commit(lambda: self._deliver(out))
        return self._out

    def _deliver(self, out: _Outgoing) -> None:
        lines = []
        ack = out.ack
        if ack is not None:
            self._durable = max(self._durable, ack)
            if not out.messages and self.client_id is not None:
                # The usual case: told with the node's next order. A busy node gets one after
                # its chunk; an idle one in the next dispatch pass, which pays the ack instead
                # if it has nothing for the node (under load an idle node waits its turn, and
                # an `ack` line before each order was a write and a read per chunk).
                later = self._out
                if later is not None and later is not out and later.ack is not None:
                    return  # a batch still committing acknowledges more: it tells the node
                if not self.farm.busy(self.client_id):
                    self._owed = True
                    self.farm.dispatch.owe_ack(self.client_id)
                return
        for message in out.messages:
            if ack is not None and isinstance(message, messages.Render):
                message = dataclasses.replace(message, ack=ack)  # the order carries the ack
                ack = None
            lines.append(wire.encode(message.to_wire()))
        if ack is not None and not (self.client_id is not None and self.farm.busy(self.client_id)):
            # A node that is rendering hears of its reports with its next order or pong
            # instead: one line less per chunk; an idle node is told at once.
            lines.insert(0, wire.encode(messages.Ack(ack).to_wire()))
        self._write(b"".join(lines))

    def _write(self, data: bytes) -> None:
        self.conn.write(data)  # straight to the socket; a closed connection drops it

    def close(self) -> None:
        self.conn.close()

    async def system(self, command: str, timeout: float = 5.0) -> messages.SystemReply:
        """Ask the node a `system` question and wait for its answer."""
        request = next(_requests)
        future: asyncio.Future[messages.SystemReply] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        self.send(messages.SystemRequest(command, request))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise FarmError(
                f"node {self.name} did not answer within {timeout:g} s", "timeout"
            ) from None
        finally:
            self._pending.pop(request, None)

    # -- reading -------------------------------------------------------------------------------

    def _held_key(self, client_id: int) -> str | None:
        """The upload key of the chunk this node kept on joining (its welcome carries it)."""
        node = self.farm.nodes.get(client_id)
        if node is None or node.chunk_id is None:
            return None
        chunk = self.farm.scheduler.held_by(client_id, node.chunk_id)
        return chunk.upload_key if chunk is not None else None

    async def run(self, first: dict[str, Any]) -> None:
        """Serve the node from its `hello` until the connection ends."""
        try:
            hello = messages.Hello.parse(first)
        except messages.MessageError as exc:
            await self._refuse("bad_request", f"invalid hello: {exc}")
            return
        if not token_ok(self.farm.settings.token, hello.token):
            log.warning("node from %s refused: missing or wrong token", self.address)
            await self._refuse(
                "unauthorized", "this farm needs a valid token (--token / BRENDER_TOKEN)"
            )
            return
        try:
            client_id = await self.farm.node_joined(self, hello)
        except FarmError as exc:
            await self._refuse(exc.code, exc.message)
            return
        settings = self.farm.settings
        key = self._held_key(client_id)
        welcome = messages.Welcome(
            client_id, settings.heartbeat, __version__, settings.http_port, key,
            wire.PROTOCOL_VERSION,
        )  # fmt: skip
        self.send(welcome)
        reason = "connection closed"
        try:
            # Lines are handled as they arrive, in the call that read them (server/conn.py).
            self.conn.push_to(self._on_lines)
            reason = await self.conn.wait_closed()
        finally:
            self.conn.close()
            for future in self._pending.values():
                future.cancel()
            self.farm.node_left(self, reason)

    def _on_lines(self, lines: list[bytes]) -> None:
        """Every whole line the node sent that one read brought."""
        self.last_heard = time.monotonic()
        for line in lines:
            if line.strip():
                self._handle(line)

    async def _refuse(self, code: str, text: str) -> None:
        self.send(messages.Error(code, text))
        self.conn.close()  # the transport sends what it holds, then closes

    def _handle(self, line: bytes) -> None:
        try:
            message = messages.from_node(wire.decode_message(line))
            handler = _HANDLERS.get(type(message))
            if handler is None:
                raise FarmError(f"a {message.TYPE!r} message is not expected from a node")
            handler(self, message)
        except (wire.WireError, messages.MessageError, FarmError) as exc:
            self.farm.quiet.note(
                (self.client_id, "bad message"), log, logging.WARNING,
                "client %s (%s) sent a bad message: %s", self.client_id, self.name, exc,
            )  # fmt: skip
        except Exception:
            log.exception(
                "client %s (%s): handling %r failed", self.client_id, self.name, line[:200]
            )

    def _on_frame(self, m: messages.FrameDone) -> None:
        assert self.client_id is not None
        self.farm.frame_saved(self.client_id, m)
        self._acked(m.seq)

    def _on_chunk_done(self, m: messages.ChunkDone) -> None:
        assert self.client_id is not None
        for report in m.saved or ():  # its frame reports, folded into the end
            self.farm.frame_saved(self.client_id, report)
        self.farm.chunk_ended(self.client_id, m)
        self._acked(m.seq)

    def _on_rejected(self, m: messages.Rejected) -> None:
        assert self.client_id is not None
        self.farm.rejected(self.client_id, m)

    def _on_system(self, m: messages.SystemReply) -> None:
        future = self._pending.get(m.request)
        if future is not None and not future.done():
            future.set_result(m)

    def _on_ping(self, m: messages.Ping) -> None:
        self.post(messages.Pong(m.t))  # after the commit: it confirms what came before it

    def _on_progress(self, m: messages.Progress) -> None:
        assert self.client_id is not None
        self.farm.progress(self.client_id, m)

    def _on_ignored(self, m: messages.Message) -> None:
        pass


_HANDLERS: dict[type, Any] = {
    messages.FrameDone: NodeSession._on_frame,
    messages.ChunkDone: NodeSession._on_chunk_done,
    messages.Rejected: NodeSession._on_rejected,
    messages.SystemReply: NodeSession._on_system,
    messages.Ping: NodeSession._on_ping,
    messages.Pong: NodeSession._on_ignored,
    messages.Progress: NodeSession._on_progress,
}
