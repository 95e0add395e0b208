"""One simulated render node: a real loopback TCP connection speaking docs/protocol.md.

Used by bench/simnodes.py, many to a process; see there for what it is and is not. Like the
real node it numbers its `frame` and `chunk_done` reports (`seq`) and keeps them in an in-order
outbox until the master's `ack` (or a `render` carrying one) says they are durable, keeps
"rendering" when the master drops it, and reconnects with backoff (0.5 s doubling to 5 s,
±25 %), saying in its `hello` which chunk it holds. A chunk's last frame (all of a zero-cost
chunk's) is saved as the chunk ends, so for a master of protocol 2 it folds those reports into
the `chunk_done` (one line a one-frame chunk), as the real node's outbox folds reports that wait
with their chunk's end.

It is lean because it shares the machine with the server it measures: a report is a line
built from a byte template (its `seq` added when it is sent), the server's lines are parsed
by orjson alone, and every node reads into one shared buffer (`get_buffer`: asyncio and uvloop
call `buffer_updated` right after the read, before any other node's).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

from brender import wire

if TYPE_CHECKING:
    from bench.simnodes import SimulatedNodes

Message = dict[str, Any]
Report = tuple[int, bytes]  # (its chunk id, its line without the seq and the end)
FramePath = Callable[[int], bytes]  # frame n's file as JSON text, without the quotes

_BUFFER = bytearray(256 * 1024)  # every node's reads land here in turn
_READS = memoryview(_BUFFER)
_LINE = orjson.OPT_APPEND_NEWLINE
FRAME = b'{"type":"frame","chunk_id":%d,"frame":%d,"output_file":"%b","render_time":%a,"seq":'
DONE = (
    b'{"type":"chunk_done","chunk_id":%d,"ok":%b,"exit_code":%d,"canceled":%b,'
    b'"frames_done":[%b],"error":"%b","log_tail":[],%b"seq":'
)
SAVED = b'{"frame":%d,"output_file":"%b","render_time":%a}'  # one of a chunk_done's `saved`
SEQ = b"%d}\n"
PING = b'{"type":"ping","t":%d.0}\n'


@functools.lru_cache(maxsize=64)  # once per output pattern, not per order
def output_template(output: str) -> FramePath:
    """The JSON text (without quotes) of frame n's file for an order's `output`: `####`
    replaced by the number and `.png` added, as a real node's Blender names it; no `output`,
    /bench/NNNN.png."""
    if not output:
        return b"/bench/%04d.png".__mod__
    # Escaping neither makes nor takes a '#'; a '%' is doubled so that only ours format.
    text = orjson.dumps(output)[1:-1].replace(b"%", b"%%")
    template = text.replace(b"####", b"%04d") + b".png"
    numbers = output.count("####")
    if numbers == 1:
        return template.__mod__  # the usual pattern: one C call a frame
    return lambda n: template % ((n,) * numbers)


class SimulatedNode(asyncio.BufferedProtocol):
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
        self.fold = False  # the master reads frame reports folded into a chunk_done
        self.chunk_id: int | None = None
        self.idle_since: float | None = None
        self.orders = 0
        self.first_order_at: float | None = None
        self.reconnects = 0
        self._partial = b""  # the start of a line whose end has not arrived
        self._timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._done_frames: list[int] = []
        self._sent: deque[tuple[int, int, bytes]] = deque()  # (seq, chunk id, line), in order
        self._unsent: list[Report] = []  # after the sent ones; numbered when sent
        self._seq = 0
        self._loaded: set[int] = set()  # jobs whose file a warm node has loaded
        self._pings = itertools.count(1)
        self._backoff = 0.5

    # -- the connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; both are stream transports.
        self.transport = cast(asyncio.Transport, transport)
        self._partial = b""
        i = self.index
        held = self.chunk_id if self.chunk_id is not None else self._unacked_chunk()
        self._write(
            wire.encode(
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

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READS

    def buffer_updated(self, nbytes: int) -> None:
        now = time.perf_counter()
        lines: Sequence[bytes | memoryview]
        if not self._partial and _BUFFER.find(b"\n", 0, nbytes) == nbytes - 1:
            lines = (_READS[:nbytes],)  # one whole line, the usual read
        else:
            split = (self._partial + _READS[:nbytes]).split(b"\n")
            self._partial = split.pop()
            lines = split
        for line in lines:
            if not line:
                continue
            message = orjson.loads(line)
            kind = message["type"]
            if kind == "render":
                self._render(message, now)
            elif kind == "ack":
                self._acked(message["seq"])
            else:
                self._other(kind, message)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _report(self, reports: list[Report]) -> None:
        """Reports go through the outbox: numbered and sent now when online, in one write."""
        if self._unsent:
            reports = self._unsent + reports
            self._unsent = []
        if not self.online:
            self._unsent = reports
            return
        seq = self._seq
        sent = self._sent
        out = []
        for chunk, line in reports:
            seq += 1
            sent.append((seq, chunk, line))
            out.append(line)
            out.append(SEQ % seq)
        self._seq = seq
        self._write(b"".join(out))

    def _acked(self, seq: int) -> None:
        sent = self._sent
        while sent and sent[0][0] <= seq:
            sent.popleft()

    def _unacked_chunk(self) -> int | None:
        if self._unsent:
            return self._unsent[-1][0]
        return self._sent[-1][1] if self._sent else None

    def close(self) -> None:
        self._cancel_timers()
        if self.transport is not None:
            self.transport.close()

    # -- orders --------------------------------------------------------------------------------

    def _other(self, kind: str, message: Message) -> None:
        """Every line but `render` and `ack` (those two are read in `buffer_updated`)."""
        if kind == "ping":
            self._write(orjson.dumps({"type": "pong", "t": message.get("t")}, option=_LINE))
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
            self._write(orjson.dumps({**message, "data": data}, option=_LINE))
        elif kind == "error":
            self.harness.stats.errors.append(f"{self.name}: {message}")

    def _welcome(self, message: Message) -> None:
        self.online = True
        self.fold = (message.get("protocol") or 1) >= wire.FOLDED_REPORTS
        self._backoff = 0.5
        # Everything not acknowledged goes again, in order: the master ignores duplicates.
        self._unsent[:0] = [(chunk, line) for _, chunk, line in self._sent]
        self._sent.clear()
        if self._unsent:
            self._report([])
        heartbeat = float(message.get("heartbeat") or 0)
        if heartbeat > 0 and self.harness.heartbeat:
            self._schedule_ping(heartbeat * random.random(), heartbeat)
        if not self.welcomed.done():
            self.welcomed.set_result(int(message["client_id"]))

    def _render(self, order: Message, now: float) -> None:
        ack = order.get("ack")
        if ack is not None:
            self._acked(ack)
        stats = self.harness.stats
        stats.orders += 1
        if not self.orders:
            self.first_order_at = now
            stats.nodes_started += 1
        self.orders += 1
        if self.idle_since is not None:
            stats.latencies.append((self.idle_since, now - self.idle_since))
            self.idle_since = None
        chunk = order["chunk_id"]
        if self.chunk_id is not None:
            if chunk != self.chunk_id:
                stats.rejected += 1
                reason = f"busy with chunk {self.chunk_id}"
                rejected = {"type": "rejected", "chunk_id": chunk, "reason": reason}
                self._write(orjson.dumps(rejected, option=_LINE))
            return
        self.chunk_id = chunk
        frames: list[int] = order["frames"]
        path = output_template(order.get("output") or "")
        if self.harness.free or self.harness.cost.chunk_seconds(frames, self.speed) <= 0:
            # Zero cost: every frame and the chunk's end at once, as a node's outbox would
            # (folded into one line for a master that reads that).
            stats.frames += len(frames)
            self._done_frames = frames
            self._finish(True, saved=[(n, path(n), 0.0) for n in frames])
            return
        self._done_frames = []
        job = int(order.get("job_id") or 0)
        cost = self.harness.cost
        startup = 0.0 if self.harness.warm and job in self._loaded else cost.startup
        if self.harness.warm:
            self._loaded.add(job)
        first = (startup + cost.frame_cost(frames[0])) / self.speed
        self._timer = asyncio.get_running_loop().call_later(
            first, self._frame_saved, frames, 0, path
        )

    def _frame_saved(self, frames: list[int], i: int, path: FramePath) -> None:
        n = frames[i]
        chunk = self.chunk_id
        assert chunk is not None
        seconds = round(self.harness.cost.frame_cost(n) / self.speed, 4)
        self._done_frames.append(n)
        self.harness.stats.frames += 1
        if i + 1 == len(frames):
            self._finish(True, saved=[(n, path(n), seconds)])
            return
        self._report([(chunk, FRAME % (chunk, n, path(n), seconds))])
        following = self.harness.cost.frame_cost(frames[i + 1]) / self.speed
        self._timer = asyncio.get_running_loop().call_later(
            following, self._frame_saved, frames, i + 1, path
        )

    def _finish(
        self, ok: bool, canceled: bool = False, saved: list[tuple[int, bytes, float]] | None = None
    ) -> None:
        """The chunk's end, after the reports of its `saved` frames (number, file, seconds)."""
        chunk = self.chunk_id
        assert chunk is not None
        reports: list[Report] = []
        folded = b""
        if saved and self.fold:
            folded = b'"saved":[%b],' % b",".join(SAVED % frame for frame in saved)
        elif saved:
            reports = [(chunk, FRAME % (chunk, *frame)) for frame in saved]
        done = DONE % (
            chunk,
            b"true" if ok else b"false",
            0 if ok else -15,
            b"true" if canceled else b"false",
            orjson.dumps(self._done_frames)[1:-1],
            b"" if ok else b"canceled",
            folded,
        )
        reports.append((chunk, done))
        self._report(reports)
        self.idle_since = time.perf_counter()
        self.chunk_id = None
        self._timer = None
        self.harness.stats.chunks += 1

    # -- heartbeat -----------------------------------------------------------------------------

    def _schedule_ping(self, delay: float, every: float) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        self._ping_timer = asyncio.get_running_loop().call_later(delay, self._ping, every)

    def _ping(self, every: float) -> None:
        self._write(PING % next(self._pings))
        self._ping_timer = asyncio.get_running_loop().call_later(every, self._ping, every)

    def _cancel_timers(self, keep_ping: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ping_timer is not None and not keep_ping:
            self._ping_timer.cancel()
            self._ping_timer = None
