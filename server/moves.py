"""The one place each status changes, and the journal of every change.

`job_to`, `chunk_to` and `frames_to` ask the move tables of server/states.py before they move
anything, update the counts kept in memory (the farm's totals for `server status` among them)
and put the row to the `Store`, so the database follows within a tick.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from brender.server.live import (
    ALL_QUEUED,
    ATTEMPT_ROW,
    CHUNK_ROW,
    FRAME_ROW,
    JOB_ROW,
    LiveChunk,
    LiveJob,
    now,
)
from brender.server.states import (
    CHUNK_MOVES,
    FRAME_MOVES,
    JOB_FINAL,
    JOB_MOVES,
    ChunkStatus,
    FrameStatus,
    JobStatus,
)
from brender.server.store import Store

_RUNNING = ChunkStatus.RUNNING  # read once: an enum member's lookup is a descriptor call
_CHUNK_ENDS = frozenset((ChunkStatus.DONE, ChunkStatus.FAILED, ChunkStatus.CANCELED))

MAX_RETIRED = 100_000
"""Retired upload keys remembered (about 10 MB), to tell a stale frame from a forged one."""

Emit = Callable[[str, dict[str, Any]], None]


@dataclass
class Totals:
    """Farm-wide counts for `server status`, kept as rows move (no query over the frames)."""

    frames: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FrameStatus, 0))
    jobs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(JobStatus, 0))


class Journal:
    """Status changes in memory, each journaled; the running chunks by id and by node."""

    def __init__(self, store: Store, emit: Emit) -> None:
        self.store = store
        self.emit = emit
        self.totals = Totals()
        self.running: dict[int, LiveChunk] = {}
        self.by_client: dict[int, set[int]] = {}
        self.next_chunk_id = 1
        self._ids = threading.Lock()
        self.retired_keys: OrderedDict[str, int] = OrderedDict()
        """Upload keys of chunk runs that ended (key → chunk id, the newest `MAX_RETIRED`):
        a frame PUT with one is a node whose chunk is not its own now (409), not a wrong
        key (403)."""

    def new_chunk_ids(self, count: int) -> list[int]:
        """Ids for chunks about to be written: the server allocates them, without a round trip
        (a submit asks from the writer's thread, hence the lock)."""
        with self._ids:
            first = self.next_chunk_id
            self.next_chunk_id += count
        return list(range(first, first + count))

    def _track(self, chunk: LiveChunk) -> None:
        self.running[chunk.id] = chunk
        if chunk.client_id is not None:
            self.by_client.setdefault(chunk.client_id, set()).add(chunk.id)

    def _untrack(self, chunk: LiveChunk) -> None:
        self.running.pop(chunk.id, None)
        if chunk.client_id is not None:
            held = self.by_client.get(chunk.client_id)
            if held is not None:
                held.discard(chunk.id)
                if not held:
                    del self.by_client[chunk.client_id]

    # -- the one place each status changes -----------------------------------------------------

    def job_to(self, job: LiveJob, new: JobStatus, **fields: Any) -> None:
        JOB_MOVES.check(job.status, new)
        if job.status != new:
            self.totals.jobs[job.status] -= 1
            self.totals.jobs[new] += 1
        job.status = new.value
        if new == JobStatus.ACTIVE and job.started_at is None:
            job.started_at = now()
        if new in JOB_FINAL:
            job.finished_at = now()
        elif new == JobStatus.QUEUED:
            job.finished_at = None
        for key, value in fields.items():
            setattr(job, key, value)
        self.store.put(JOB_ROW, job.id, job.row())
        self.emit("job", {"id": job.id})

    def chunk_to(self, chunk: LiveChunk, new: ChunkStatus, **fields: Any) -> None:
        CHUNK_MOVES.check(chunk.status, new)
        chunk.status = new._value_  # (`.value` is a descriptor call: this is the hot path)
        if new is not _RUNNING:
            if chunk.upload_key is not None:
                self.retired_keys[chunk.upload_key] = chunk.id
                if len(self.retired_keys) > MAX_RETIRED:
                    self.retired_keys.popitem(last=False)
                chunk.upload_key = None
            chunk.refused = ""  # of the run that ends here
            if new in _CHUNK_ENDS:
                chunk.finished_at = now()
        for key, value in fields.items():
            setattr(chunk, key, value)
        self.store.put(CHUNK_ROW, chunk.id, chunk.row())

    def start_run(
        self,
        chunk: LiveChunk,
        client_id: int,
        *,
        spent: int,
        started_at: float | None = None,
        **fields: Any,
    ) -> tuple[int, ...]:
        """A queued chunk starts running on this node: out of its job's queue, tracked, its
        frames rendering (`spent` attempts each: 1 for a new run, 0 for a node that reclaims
        the run it had). Answers the frames sent."""
        job = chunk.job
        job.queue.take(chunk)
        frames = tuple(chunk.frames)
        if started_at is not None:
            fields["started_at"] = started_at  # a new run; a reclaimed one keeps its start
        self.chunk_to(
            chunk, ChunkStatus.RUNNING, client_id=client_id, frames=frames, done={},
            upload_key=job.new_upload_key(), **fields,
        )  # fmt: skip
        self._track(chunk)
        job.running[chunk.id] = chunk
        self.frames_to(
            job, frames, FrameStatus.QUEUED, FrameStatus.RENDERING, client_id,
            chunk_id=chunk.id, started_at=started_at, spent=spent,
        )  # fmt: skip
        return frames

    def frames_to(
        self,
        job: LiveJob,
        numbers: Collection[int],
        old: FrameStatus,
        new: FrameStatus,
        client_id: int | None,
        *,
        chunk_id: int | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        output_file: str | None = None,
        render_time: float | None = None,
        error: str | None = None,
        log_tail: str | None = None,
        spent: int = 0,
    ) -> None:
        """Move frames of one job from `old` to `new`; `spent` adds to each one's attempts."""
        self.count_move(job, old, new, len(numbers))
        attempts = job.attempts
        put = self.store.put
        status = new._value_
        for n in numbers:
            used = attempts.get(n, 0) + spent
            if used:
                attempts[n] = used
            else:
                attempts.pop(n, None)
            put(
                FRAME_ROW,
                (job.id, n),
                (
                    status,
                    client_id,
                    used,
                    chunk_id,
                    started_at,
                    finished_at,
                    output_file,
                    render_time,
                    error,
                    log_tail,
                    job.id,
                    n,
                ),
            )

    def count_move(self, job: LiveJob, old: str, new: FrameStatus, count: int) -> None:
        """`count` frames of the job move from `old` to `new`: the table allows it, the counts
        follow (the caller writes the rows)."""
        FRAME_MOVES.check(old, new)
        job.counts[old] -= count
        job.counts[new] += count
        self.totals.frames[old] -= count
        self.totals.frames[new] += count

    def all_queued_to(self, job: LiveJob, new: FrameStatus, error: str) -> None:
        """Every queued frame of the job to `new` at once: one UPDATE, not a row per frame."""
        self.count_move(job, FrameStatus.QUEUED, new, sum(len(c.frames) for c in job.queue))
        self.store.execute(
            ALL_QUEUED,
            (new.value, now() if new in (FrameStatus.FAILED,) else None, error, job.id,
             FrameStatus.QUEUED.value),
        )  # fmt: skip
        job.queue.clear()

    def attempts_ended(
        self,
        chunk: LiveChunk,
        client_id: int,
        exit_code: int | None,
        culprit: int | None = None,
        outcome: str = "failed",
        error: str = "",
        log_tail: str = "",
    ) -> None:
        """The chunk's run on this node ended: a row per frame it tried, put in the same batch
        as the chunk's end (one multi-row INSERT). Its saved frames ended when they were saved;
        `culprit`, the frame it was on when it stopped, ends now with `outcome`."""
        job_id, start, run = chunk.job.id, chunk.started_at, (chunk.id, chunk.attempts)
        put = self.store.put
        saved_exit = exit_code if culprit is None else None  # not the crash that came later
        for n, saved in chunk.done.items():
            put(ATTEMPT_ROW, (*run, n), (job_id, n, chunk.id, client_id, "done", saved_exit, "",
                                         "", start, saved))  # fmt: skip
        if culprit is not None:
            put(ATTEMPT_ROW, (*run, culprit), (job_id, culprit, chunk.id, client_id, outcome,
                                               exit_code, error, log_tail, start, now()))  # fmt: skip
