"""Every state of every item, and the one place that says which moves are legal.

States are `str` enums stored as plain strings. Each item has one move table (`JOB_MOVES`,
`CHUNK_MOVES`, `FRAME_MOVES`): `check` raises `InvalidState` (an API `conflict`) for a move it
does not allow, and `sources(new)` lists the states a bulk UPDATE may move from, so SQL that
changes many rows at once can only make the moves the table allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from brender.server.errors import FarmError


class JobStatus(StrEnum):
    QUEUED = "queued"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class ChunkStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


class FrameStatus(StrEnum):
    QUEUED = "queued"
    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


class ClientStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


JOB_FINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
JOB_DISPATCHABLE = (JobStatus.QUEUED.value, JobStatus.ACTIVE.value)

_JOB_MOVES: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset(
        {JobStatus.ACTIVE, JobStatus.PAUSED, JobStatus.CANCELED, JobStatus.COMPLETED}
    ),
    JobStatus.ACTIVE: frozenset(
        {
            JobStatus.PAUSED,
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.CANCELED,
            JobStatus.QUEUED,
        }
    ),
    JobStatus.PAUSED: frozenset({JobStatus.QUEUED, JobStatus.ACTIVE, JobStatus.CANCELED}),
    # A finished job goes back to the queue only through `requeue`.
    JobStatus.COMPLETED: frozenset({JobStatus.QUEUED}),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELED: frozenset({JobStatus.QUEUED}),
}

_CHUNK_MOVES: dict[ChunkStatus, frozenset[ChunkStatus]] = {
    ChunkStatus.QUEUED: frozenset({ChunkStatus.RUNNING, ChunkStatus.CANCELED}),
    ChunkStatus.RUNNING: frozenset(
        {ChunkStatus.DONE, ChunkStatus.FAILED, ChunkStatus.CANCELED, ChunkStatus.QUEUED}
    ),
    ChunkStatus.DONE: frozenset({ChunkStatus.QUEUED}),
    ChunkStatus.FAILED: frozenset({ChunkStatus.QUEUED}),
    ChunkStatus.CANCELED: frozenset({ChunkStatus.QUEUED}),
}


_FRAME_MOVES: dict[FrameStatus, frozenset[FrameStatus]] = {
    # Sent to a node; canceled with its job; failed when no node may ever render it.
    FrameStatus.QUEUED: frozenset(
        {FrameStatus.RENDERING, FrameStatus.CANCELED, FrameStatus.FAILED}
    ),
    # Saved; given back (node lost, chunk failed before it); out of attempts; canceled.
    FrameStatus.RENDERING: frozenset(
        {FrameStatus.DONE, FrameStatus.QUEUED, FrameStatus.FAILED, FrameStatus.CANCELED}
    ),
    # Only a person's requeue brings a final frame back.
    FrameStatus.DONE: frozenset({FrameStatus.QUEUED}),
    FrameStatus.FAILED: frozenset({FrameStatus.QUEUED}),
    FrameStatus.CANCELED: frozenset({FrameStatus.QUEUED}),
}


class InvalidState(FarmError):
    code = "conflict"


S = TypeVar("S", bound=StrEnum)


class Moves(Generic[S]):
    """One item's state machine: which state may follow which."""

    def __init__(self, item: str, kind: type[S], table: Mapping[S, frozenset[S]]) -> None:
        self.item = item
        self.kind = kind
        self.table = dict(table)
        self._sources = {
            new: tuple(old.value for old, nexts in table.items() if new in nexts) for new in kind
        }
        # Every allowed (from, to) as plain strings (a StrEnum member hashes as its value):
        # asked on every move, so one set lookup instead of two enum lookups.
        self._pairs = frozenset(
            {(old.value, new.value) for old, nexts in table.items() for new in nexts}
            | {(state.value, state.value) for state in kind}
        )

    def allowed(self, current: str, new: S | str) -> bool:
        if (current, new) in self._pairs:
            return True
        self.kind(current), self.kind(new)  # ValueError for a state that is not one
        return False

    def check(self, current: str, new: S | str) -> None:
        """Refuse a move the table does not allow (staying in a state is always allowed)."""
        if not self.allowed(current, new):
            raise InvalidState(f"a {current} {self.item} cannot become {self.kind(new).value}")

    def sources(self, new: S) -> tuple[str, ...]:
        """The states a row may move to `new` from: the `status IN (…)` of a bulk UPDATE."""
        return self._sources[new]


JOB_MOVES = Moves("job", JobStatus, _JOB_MOVES)
CHUNK_MOVES = Moves("chunk", ChunkStatus, _CHUNK_MOVES)
FRAME_MOVES = Moves("frame", FrameStatus, _FRAME_MOVES)


def check_job_move(current: str, new: JobStatus) -> None:
    JOB_MOVES.check(current, new)


def check_chunk_move(current: str, new: ChunkStatus) -> None:
    CHUNK_MOVES.check(current, new)


def check_frame_move(current: str, new: FrameStatus) -> None:
    FRAME_MOVES.check(current, new)


def job_outcome(done: int, failed: int, canceled: int, total: int) -> JobStatus | None:
    """The final state a job reaches from its frame counts, or None while work remains."""
    if done + failed + canceled < total:
        return None
    if failed:
        return JobStatus.FAILED
    if canceled:
        return JobStatus.CANCELED
    return JobStatus.COMPLETED
