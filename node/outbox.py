"""The in-order outbox of `frame` and `chunk_done` reports, which survives disconnects.

Each report is written with a `seq` number. It leaves the outbox for good only once the master
has said it is durable: an `ack` (or a `render` carrying `ack`) with that number or a higher
one, or the `pong` of a `ping` sent after it (the master answers both only after committing
what it read before). Until then a lost connection puts it back at the front, so nothing
written into a dying socket is lost; the master ignores the duplicates this can make.

Frame reports still waiting when their chunk's `chunk_done` joins them are folded into it
(`saved`: one line instead of one per frame) when the master reads that (`fold`, from its
`welcome`); a folded end taken for a master that does not is sent unfolded again. No report
waits for folding: it only happens to reports that were waiting anyway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from typing import Any

from brender.messages import ChunkDone, FrameDone

log = logging.getLogger(__name__)

Report = FrameDone | ChunkDone

MAX_UNCONFIRMED = 10_000
MAX_PINGS = 100


class Outbox:
    """Reports waiting to be written, and written ones waiting for the master's pong."""

    def __init__(self) -> None:
        self._waiting: deque[Report] = deque()
        self._unconfirmed: deque[tuple[int, Report]] = deque()
        self._pings: dict[float, int] = {}
        self._seq = 0
        self._last_t = 0.0
        self.ready = asyncio.Event()
        """Set when there is something to write."""
        self.settled = asyncio.Event()
        """Set when the master has read every report."""
        self.settled.set()
        self.fold = False
        """The master reads frame reports folded into a `chunk_done` (`Welcome.folds`)."""

    def put(self, message: Report) -> None:
        self._waiting.append(message)
        self.settled.clear()
        self.ready.set()

    def take(self) -> Report | None:
        """The next report to write, numbered; it stays unconfirmed until acknowledged."""
        waiting = self._waiting
        if not waiting:
            return None
        first = waiting[0]
        if self.fold and isinstance(first, FrameDone):
            self._fold(first.chunk_id)
        elif not self.fold and isinstance(first, ChunkDone) and first.saved:
            waiting.popleft()  # folded for a master that read it; this one does not
            waiting.appendleft(dataclasses.replace(first, saved=None))
            waiting.extendleft(reversed(first.saved))
        self._seq += 1
        message = dataclasses.replace(waiting.popleft(), seq=self._seq)
        self._unconfirmed.append((self._seq, message))
        if len(self._unconfirmed) > MAX_UNCONFIRMED:
            self._unconfirmed.popleft()
        return message

    def _fold(self, chunk_id: int) -> None:
        """The frame reports at the front, when the end of their chunk waits right after them,
        into that end."""
        waiting = self._waiting
        count = 0
        for message in waiting:
            if not isinstance(message, FrameDone) or message.chunk_id != chunk_id:
                break
            count += 1
        if count == len(waiting):
            return
        end = waiting[count]
        if not isinstance(end, ChunkDone) or end.chunk_id != chunk_id:
            return
        saved: list[FrameDone] = []
        for _ in range(count):
            report = waiting.popleft()
            assert isinstance(report, FrameDone)
            saved.append(dataclasses.replace(report, seq=None))
        waiting[0] = dataclasses.replace(end, saved=(*saved, *(end.saved or ())))

    def ping_time(self) -> float:
        """A unique `t` for a ping; its pong confirms every report taken before it."""
        t = max(time.time(), self._last_t + 1e-6)
        self._last_t = t
        self._pings[t] = self._seq
        while len(self._pings) > MAX_PINGS:
            del self._pings[next(iter(self._pings))]
        return t

    def pong(self, t: Any) -> None:
        """The master answered the ping `t`: it has read everything taken before it."""
        if not isinstance(t, int | float) or t not in self._pings:
            return
        seq = self._pings[t]
        for older in [key for key in self._pings if key <= t]:
            del self._pings[older]
        self.ack(seq)

    def ack(self, seq: Any) -> None:
        """The master made every report up to `seq` durable."""
        if not isinstance(seq, int) or isinstance(seq, bool):
            return
        while self._unconfirmed and self._unconfirmed[0][0] <= seq:
            self._unconfirmed.popleft()
        if not self._unconfirmed and not self._waiting:
            self.settled.set()

    def connection_lost(self) -> None:
        """Put what the master may not have read back at the front, in order."""
        if self._unconfirmed:
            log.info("will resend %d report(s) the master may not have read", len(self))
        self._waiting.extendleft(message for _, message in reversed(self._unconfirmed))
        self._unconfirmed.clear()
        self._pings.clear()
        if self._waiting:
            self.ready.set()

    def first_chunk_id(self) -> int | None:
        """The chunk of the oldest report the master has not confirmed, if any."""
        if self._unconfirmed:
            return self._unconfirmed[0][1].chunk_id
        if self._waiting:
            return self._waiting[0].chunk_id
        return None

    def __len__(self) -> int:
        return len(self._waiting) + len(self._unconfirmed)
