"""What the scheduler holds in memory for each unfinished job, and how it is journaled.

A `LiveJob` is a job that may still need a node: its queued chunks (by first frame), its running
chunks, its frame counts by status, the attempts its frames have used and its per-node failures.
Every change to one of these is also `put` to the `Store` as a row of one of the statements
below, so the database follows memory a tick later, in one transaction.
"""

from __future__ import annotations

import heapq
import json
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from brender.blendfile import Requirement, Version
from brender.server import movie
from brender.server.errors import FarmError
from brender.server.movie import MovieSpec
from brender.server.states import FrameStatus, JobStatus
from brender.server.store import Params, Statement

_DISPATCHABLE = frozenset((JobStatus.QUEUED.value, JobStatus.ACTIVE.value))

AUTO = 0
"""`chunk_size` 0: the farm sizes each chunk as nodes claim it (server/chunking.py)."""


def now() -> float:
    return time.time()


def _version(text: str | None) -> Version | None:
    """A stored version ("" when unknown); checked when it was stored."""
    try:
        return Version.parse(text) if text else None
    except ValueError:
        return None


def _requirement(text: str | None) -> Requirement | None:
    try:
        return Requirement.parse(text) if text else None
    except ValueError:
        return None


def _movie(text: str | None) -> MovieSpec | None:
    """A stored movie request (checked when it was stored)."""
    try:
        return movie.check_spec(json.loads(text)) if text else None
    except (ValueError, FarmError):
        return None


def _frame_merge(old: Params, new: Params) -> Params:
    # (status, client_id, attempts) always take the later value (the client may be None: no
    # node holds the frame now); the others are "unchanged" when None (COALESCE in the SQL), so
    # an earlier move's error text or chunk survives; (job_id, number) are the key. Spelt out:
    # once per frame, 5x cheaper than a comprehension over the twelve.
    status, client, attempts, chunk, started, finished, output, seconds, error, tail, job, n = new
    return (
        status, client, attempts,
        old[3] if chunk is None else chunk,
        old[4] if started is None else started,
        old[5] if finished is None else finished,
        old[6] if output is None else output,
        old[7] if seconds is None else seconds,
        old[8] if error is None else error,
        old[9] if tail is None else tail,
        job, n,
    )  # fmt: skip


FRAME_ROW = Statement(
    "frame",
    "UPDATE frame SET status = {p}, client_id = {p}, attempts = {p},"
    " chunk_id = COALESCE({p}, chunk_id), started_at = COALESCE({p}, started_at),"
    " finished_at = COALESCE({p}, finished_at), output_file = COALESCE({p}, output_file),"
    " render_time = COALESCE({p}, render_time), error = COALESCE({p}, error),"
    " log_tail = COALESCE({p}, log_tail)"
    " WHERE job_id = {p} AND number = {p}",
    _frame_merge,
    order=1,
    many="UPDATE frame SET status = v.column1, client_id = v.column2, attempts = v.column3,"
    " chunk_id = COALESCE(v.column4, frame.chunk_id),"
    " started_at = COALESCE(v.column5, frame.started_at),"
    " finished_at = COALESCE(v.column6, frame.finished_at),"
    " output_file = COALESCE(v.column7, frame.output_file),"
    " render_time = COALESCE(v.column8, frame.render_time),"
    " error = COALESCE(v.column9, frame.error), log_tail = COALESCE(v.column10, frame.log_tail)"
    " FROM (VALUES {values}) AS v WHERE frame.job_id = v.column11 AND frame.number = v.column12",
)
_CHUNK_UPSERT = (
    "INSERT INTO chunk (id, job_id, frame_start, frame_end, status, client_id, failed_client,"
    " attempts, exit_code, error, log_tail, started_at, finished_at) VALUES {values}"
    " ON CONFLICT (id) DO UPDATE SET frame_start = excluded.frame_start,"
    " frame_end = excluded.frame_end, status = excluded.status, client_id = excluded.client_id,"
    " failed_client = excluded.failed_client, attempts = excluded.attempts,"
    " exit_code = excluded.exit_code, error = excluded.error, log_tail = excluded.log_tail,"
    " started_at = excluded.started_at, finished_at = excluded.finished_at"
)
CHUNK_ROW = Statement(
    "chunk",
    _CHUNK_UPSERT.format(
        values="({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
    ),
    order=0,
    many=_CHUNK_UPSERT,
)
JOB_ROW = Statement(
    "job",
    "UPDATE job SET status = {p}, started_at = {p}, finished_at = {p}, error = {p} WHERE id = {p}",
    order=2,
)
ALL_QUEUED = Statement(
    "queued frames",
    "UPDATE frame SET status = {p}, finished_at = COALESCE({p}, finished_at),"
    " error = {p} WHERE job_id = {p} AND status = {p}",
)
_ATTEMPT_INSERT = (
    "INSERT INTO attempt (job_id, number, chunk_id, client_id, outcome, exit_code, error,"
    " log_tail, started_at, finished_at) VALUES {values}"
)
ATTEMPT_ROW = Statement(
    "attempt",
    _ATTEMPT_INSERT.format(values="({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"),
    order=3,
    many=_ATTEMPT_INSERT,
)
"""A frame's try, written with its chunk's end: one multi-row INSERT a batch on SQLite."""
MOVIE_ROW = Statement(
    "movie", "UPDATE job SET movie_status = {p}, movie_file = {p} WHERE id = {p}", order=2
)
BLOCK_ROW = Statement(
    "blocklist",
    "INSERT INTO blocklist (job_id, client_id, failures, reason, created_at)"
    " VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (job_id, client_id)"
    " DO UPDATE SET failures = excluded.failures, reason = excluded.reason",
)


@dataclass(eq=False, slots=True)
class LiveChunk:
    """A chunk row that is queued or running. `frames` are its queued frames while queued
    (a `range` while they are contiguous), the frames sent out while running."""

    id: int
    job: LiveJob
    frames: Sequence[int]
    status: str = "queued"
    client_id: int | None = None
    failed_client: int | None = None
    attempts: int = 0
    exit_code: int | None = None
    error: str = ""
    log_tail: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    frame_start: int = 0
    frame_end: int = 0
    done: dict[int, float] = field(default_factory=dict)
    """Running: the frames reported saved, and when (for their attempt rows)."""
    ordered: tuple[str, str, str] | None = None
    """Running: the job's (output, format, blend file) when the chunk was sent, which its
    frame reports are checked against (server/reports.py); None: the job's own."""
    refused: str = ""
    """Running: why the first of its frame reports that was refused was (server/reports.py).
    A run with one does not end well even if Blender did: the frame is blamed, not requeued."""
    upload_key: str | None = None
    """Running, of an uploaded job: the secret its order gave the node, which each frame PUT
    must carry (memory only: a chunk loaded after a restart has none until its node reclaims
    it). Cleared, and kept among the retired keys, when the chunk stops running there."""

    def row(self) -> Params:
        return (
            self.id,
            self.job.id,
            self.frame_start,
            self.frame_end,
            self.status,
            self.client_id,
            self.failed_client,
            self.attempts,
            self.exit_code,
            self.error,
            self.log_tail,
            self.started_at,
            self.finished_at,
        )

    def unfinished(self) -> list[int]:
        return [n for n in self.frames if n not in self.done]


class ChunkQueue:
    """A job's queued chunks, by first frame (then id): a heap of `[first frame, id, chunk]`
    entries, so a claim's pop compares integers in C instead of calling Python per step. A
    queued chunk's frames change only through `moved` (carving) or `remove` and `push`."""

    __slots__ = ("_heap",)

    def __init__(self, chunks: Iterable[LiveChunk] = ()) -> None:
        self._heap: list[list[Any]] = [[c.frames[0], c.id, c] for c in chunks]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __iter__(self) -> Iterator[LiveChunk]:
        """Every queued chunk, in no particular order."""
        return (entry[2] for entry in list(self._heap))

    def first(self) -> LiveChunk:
        chunk: LiveChunk = self._heap[0][2]
        return chunk

    def smallest(self, count: int) -> list[LiveChunk]:
        """The first `count` chunks, in order."""
        return [entry[2] for entry in heapq.nsmallest(count, self._heap)]

    def push(self, chunk: LiveChunk) -> None:
        heapq.heappush(self._heap, [chunk.frames[0], chunk.id, chunk])

    def take(self, chunk: LiveChunk) -> None:
        """Take this chunk out (the first in a claim's usual case: O(log n))."""
        if self._heap and self._heap[0][2] is chunk:
            heapq.heappop(self._heap)
        else:
            self.remove(chunk)

    def remove(self, chunk: LiveChunk) -> None:
        self._heap = [entry for entry in self._heap if entry[2] is not chunk]
        heapq.heapify(self._heap)

    def moved(self, chunk: LiveChunk) -> None:
        """This queued chunk's first frame changed (its front was carved off)."""
        if self._heap and self._heap[0][2] is chunk:
            heapq.heapreplace(self._heap, [chunk.frames[0], chunk.id, chunk])
            return
        for entry in self._heap:
            entry[0] = entry[2].frames[0]
        heapq.heapify(self._heap)

    def clear(self) -> None:
        self._heap.clear()


@dataclass(eq=False)
class LiveJob:
    """An unfinished job (queued, active or paused) as the scheduler sees it."""

    id: int
    priority: int
    status: str
    chunk_size: int
    blend_file: str
    output: str
    format: str
    timeout: int
    max_attempts: int
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""
    queue: ChunkQueue = field(default_factory=ChunkQueue)
    """Queued chunks, by first frame."""
    running: dict[int, LiveChunk] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FrameStatus, 0))
    attempts: dict[int, int] = field(default_factory=dict)
    """Frame number → attempts used, for frames that have used any."""
    failures: dict[int, tuple[int, str]] = field(default_factory=dict)
    """Client id → (failed chunks of this job, the last reason)."""
    first_failure: tuple[int, str] | None = None
    """The lowest failed frame and its error, for the job's own `error`."""
    file_version: Version | None = None
    """The Blender series that saved the file, when known."""
    requirement: Requirement | None = None
    """The Blender the job asks for (`job.blender`), if any."""
    autoexec: bool = False
    manifest: str = ""
    """The SHA-256 of its manifest for a job whose files were uploaded; "" for shared storage."""
    frame_start: int = 0
    frame_end: int = 0
    movie: MovieSpec | None = None
    """The movie its frames become once all are done (server/movie.py), if the scene asked."""
    movie_status: str = ""
    unwritable: set[int] = field(default_factory=set)
    """Clients that refused its output as outside their output roots (memory only)."""

    @classmethod
    def from_row(cls, row: Any) -> LiveJob:
        job = cls(
            id=row.id,
            priority=row.priority,
            status=row.status,
            chunk_size=row.chunk_size,
            blend_file=row.blend_file,
            output=row.output,
            format=row.format,
            timeout=row.timeout,
            max_attempts=row.max_attempts,
            started_at=row.started_at,
            finished_at=row.finished_at,
            error=row.error or "",
            manifest=row.manifest or "",
            frame_start=row.frame_start,
            frame_end=row.frame_end,
            movie=_movie(row.movie),
            # An encoding the master did not finish starts again (`settle` after the load).
            movie_status=movie.WAITING if row.movie_status == movie.ENCODING else row.movie_status,
        )
        job._versions(row)
        return job

    def refresh(self, row: Any) -> None:
        """Fields a person may change while the job lives (job update)."""
        for name in ("priority", "blend_file", "output", "format", "timeout", "max_attempts",
                     "frame_start", "frame_end"):  # fmt: skip
            setattr(self, name, getattr(row, name))
        self.chunk_size = row.chunk_size
        self._versions(row)

    def _versions(self, row: Any) -> None:
        self.file_version = _version(row.file_version)
        self.requirement = _requirement(row.blender)
        self.autoexec = bool(row.autoexec)

    @property
    def dispatchable(self) -> bool:
        return self.status in _DISPATCHABLE

    def sort_key(self) -> tuple[int, int]:
        """Highest priority first, then the oldest job."""
        return (-self.priority, self.id)

    def enqueue(self, chunk: LiveChunk) -> None:
        self.queue.push(chunk)

    def blocked(self, client_id: int, block_after: int) -> bool:
        entry = self.failures.get(client_id)
        return entry is not None and entry[0] >= block_after

    def blocked_ids(self, block_after: int) -> set[int]:
        return {cid for cid, (n, _) in self.failures.items() if n >= block_after}

    def row(self) -> Params:
        return (self.status, self.started_at, self.finished_at, self.error, self.id)

    def new_upload_key(self) -> str | None:
        """A fresh upload key for a run of one of its chunks (None for shared storage)."""
        return secrets.token_urlsafe(16) if self.manifest else None

    def left(self) -> int:
        """Frames not final yet (queued or rendering)."""
        return self.counts[FrameStatus.QUEUED] + self.counts[FrameStatus.RENDERING]
