"""One simulated render node: a real loopback TCP connection speaking docs/protocol.md.

Used by bench/simnodes.py, many to a process; see there for what it is and is not. Like the
real node it numbers its `frame` and `chunk_done` reports (`seq`) and keeps them in an in-order
outbox until the master's `ack` (or a `render` carrying one) says they are durable, keeps
"rendering" when the master drops it, and reconnects with backoff (0.5 s doubling to 5 s,
±25 %), saying in its `hello` which chunk it holds.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import TYPE_CHECKING, Any

from brender import wire

if TYPE_CHECKING:
    from bench.simnodes import SimulatedNodes

Message = dict[str, Any]


class SimulatedNode(asyncio.Protocol):
    """One simulated node; the same object serves each of its connections in turn."""

    def __init__(self, harness: SimulatedNodes, index: int, speed: float) -> None:
        self.harness = harness
        self.index = index
        self.speed = speed
        self.node_id = f"{harness.prefix}-{index:06d}"
        self.name = f"{harness.prefix}-{index:04d}"
        self.transport: asyncio.Transport | None = None
        self.welcomed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.online = False  # welcomed on the current connection
        self.chunk_id: int | None = None
        self.idle_since: float | None = None
        self.orders = 0
        self.first_order_at: float | None = None
        self.reconnects = 0
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._done_frames: list[int] = []
        self._outbox: list[tuple[int, Message]] = []  # (its seq, 0: unsent)
        self._seqs = itertools.count(1)
        self._loaded: set[int] = set()  # jobs whose file a warm node has loaded
        self._pings = itertools.count(1)
        self._backoff = 0.5

    # -- the connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        i = self.index
        held = self.chunk_id if self.chunk_id is not None else self._unacked_chunk()
        self._send(
            {
                "type": "hello",
                "protocol": wire.PROTOCOL_VERSION,
                "node_id": self.node_id,
                "name": self.name,
                "hostname": self.name,
                "mac_address": f"02:b0:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:"
                f"{i >> 8 & 255:02x}:{i & 255:02x}",
                "cpus": 2,
                "memory": 8 * 2**30,
                "blender_version": "3.4.1",
                "warm": self.harness.warm,
                "token": None,
                "chunk": None
                if held is None
                else {"chunk_id": held, "running": self.chunk_id is not None},
            }
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.online = False
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(f"{self.name}: closed before welcome"))
        if self.harness.closing:
            self._cancel_timers()
            return
        self.reconnects += 1
        self.harness.stats.lost += 1
        self.harness.stats.errors.append(f"{self.name}: connection lost ({exc})")
        self._reconnect_later()

    def _reconnect_later(self) -> None:
        delay = self._backoff * random.uniform(0.75, 1.25)
        self._backoff = min(self._backoff * 2, 5.0)
        loop = asyncio.get_running_loop()
        loop.call_later(delay, lambda: loop.create_task(self._reconnect()))

    async def _reconnect(self) -> None:
        if self.harness.closing:
            return
        self.welcomed = asyncio.get_running_loop().create_future()
        try:
            await asyncio.get_running_loop().create_connection(
                lambda: self, self.harness.host, self.harness.port
            )
        except OSError:
            self._reconnect_later()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if line.strip():
                self._handle(wire.decode(line), now)

    def _send(self, *messages: Message) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(wire.encode(m) for m in messages))

    def _report(self, *messages: Message) -> None:
        """Reports go through the outbox: sent now when online, numbered."""
        self._outbox.extend((0, m) for m in messages)
        if self.online:
            self._flush()

    def _flush(self) -> None:
        unsent = []
        numbered = []
        for seq, message in self._outbox:
            if seq == 0:
                seq = next(self._seqs)
                message = {**message, "seq": seq}
                unsent.append(message)
            numbered.append((seq, message))
        self._outbox = numbered
        self._send(*unsent)

    def _acked(self, seq: object) -> None:
        if isinstance(seq, int):
            self._outbox = [(s, m) for s, m in self._outbox if s == 0 or s > seq]

    def _unacked_chunk(self) -> int | None:
        ids = [m["chunk_id"] for _, m in self._outbox]
        return ids[-1] if ids else None

    def close(self) -> None:
        self._cancel_timers()
        if self.transport is not None:
            self.transport.close()

    # -- orders --------------------------------------------------------------------------------

    def _handle(self, message: Message, now: float) -> None:
        kind = message.get("type")
        if kind == "render":
            self._acked(message.get("ack"))
            self._render(message, now)
        elif kind == "ack":
            self._acked(message.get("seq"))
        elif kind == "ping":
            self._send({"type": "pong", "t": message.get("t")})
        elif kind == "pong":
            pass
        elif kind == "welcome":
            self._welcome(message)
        elif kind == "cancel":
            if message.get("chunk_id") == self.chunk_id:
                self._cancel_timers(keep_ping=True)
                self._finish(ok=False, canceled=True)
        elif kind == "system":
            data = {"hostname": self.name, "cpus": 2, "busy": self.chunk_id is not None}
            self._send({**message, "data": data})
        elif kind == "error":
            self.harness.stats.errors.append(f"{self.name}: {message}")

    def _welcome(self, message: Message) -> None:
        self.online = True
        self._backoff = 0.5
        # Everything not acknowledged goes again, in order: the master ignores duplicates.
        self._outbox = [(0, m) for _, m in self._outbox]
        if self._outbox:
            self._flush()
        heartbeat = float(message.get("heartbeat") or 0)
        if heartbeat > 0 and self.harness.heartbeat:
            self._schedule_ping(heartbeat * random.random(), heartbeat)
        if not self.welcomed.done():
            self.welcomed.set_result(int(message["client_id"]))

    def _render(self, order: Message, now: float) -> None:
        stats = self.harness.stats
        stats.orders += 1
        if not self.orders:
            self.first_order_at = now
            stats.nodes_started += 1
        self.orders += 1
        if self.idle_since is not None:
            stats.latencies.append((self.idle_since, now - self.idle_since))
            self.idle_since = None
        if self.chunk_id is not None:
            if order["chunk_id"] != self.chunk_id:
                stats.rejected += 1
                reason = f"busy with chunk {self.chunk_id}"
                self._send(
                    {
                        "type": "rejected",
                        "chunk_id": order["chunk_id"],
                        "reason": reason,
                    }
                )
            return
        self.chunk_id = int(order["chunk_id"])
        self._done_frames = []
        frames: list[int] = list(order["frames"])
        output = str(order.get("output", ""))
        cost = self.harness.cost
        if cost.chunk_seconds(frames, self.speed) <= 0:
            # Zero cost: every frame and the chunk's end in one write, as a node's outbox would.
            reports = [self._frame_message(n, output, 0.0) for n in frames]
            stats.frames += len(frames)
            self._done_frames = frames
            self._finish(ok=True, extra=reports)
            return
        job = int(order.get("job_id") or 0)
        startup = 0.0 if self.harness.warm and job in self._loaded else cost.startup
        if self.harness.warm:
            self._loaded.add(job)
        first = (startup + cost.frame_cost(frames[0])) / self.speed
        self._timer = asyncio.get_running_loop().call_later(
            first, self._frame_saved, frames, 0, output
        )

    def _frame_saved(self, frames: list[int], i: int, output: str) -> None:
        n = frames[i]
        seconds = self.harness.cost.frame_cost(n) / self.speed
        self._done_frames.append(n)
        self.harness.stats.frames += 1
        if i + 1 == len(frames):
            self._finish(ok=True, extra=[self._frame_message(n, output, seconds)])
            return
        self._report(self._frame_message(n, output, seconds))
        following = self.harness.cost.frame_cost(frames[i + 1]) / self.speed
        self._timer = asyncio.get_running_loop().call_later(
            following, self._frame_saved, frames, i + 1, output
        )

    def _frame_message(self, n: int, output: str, seconds: float) -> Message:
        path = output.replace("####", f"{n:04d}") + ".png" if output else f"/bench/{n:04d}.png"
        return {
            "type": "frame",
            "chunk_id": self.chunk_id,
            "frame": n,
            "output_file": path,
            "render_time": round(seconds, 4),
        }

    def _finish(self, ok: bool, canceled: bool = False, extra: list[Message] | None = None) -> None:
        done: Message = {
            "type": "chunk_done",
            "chunk_id": self.chunk_id,
            "ok": ok,
            "exit_code": 0 if ok else -15,
            "canceled": canceled,
            "frames_done": self._done_frames,
            "error": "" if ok else "canceled",
            "log_tail": [],
        }
        self._report(*(extra or []), done)
        now = time.perf_counter()
        self.idle_since = now
        self.chunk_id = None
        self._timer = None
        self.harness.stats.chunks += 1

    # -- heartbeat -----------------------------------------------------------------------------

    def _schedule_ping(self, delay: float, every: float) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()

        def ping() -> None:
            self._send({"type": "ping", "t": float(next(self._pings))})
            self._schedule_ping(every, every)

        self._ping_timer = asyncio.get_running_loop().call_later(delay, ping)

    def _cancel_timers(self, keep_ping: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ping_timer is not None and not keep_ping:
            self._ping_timer.cancel()
            self._ping_timer = None
