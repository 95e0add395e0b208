"""Every state of every item, and the one place that says which moves are legal.

States are `str` enums stored as plain strings. Each `check_*` function raises `InvalidState`
(an API `conflict`) for a move that is not allowed; services call it before they write.
"""

from __future__ import annotations

from enum import StrEnum

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


class InvalidState(FarmError):
    code = "conflict"


def check_job_move(current: str, new: JobStatus) -> None:
    """Refuse a job move that the state machine does not allow."""
    old = JobStatus(current)
    if old != new and new not in _JOB_MOVES[old]:
        raise InvalidState(f"a {old.value} job cannot become {new.value}")


def check_chunk_move(current: str, new: ChunkStatus) -> None:
    """Refuse a chunk move that the state machine does not allow."""
    old = ChunkStatus(current)
    if old != new and new not in _CHUNK_MOVES[old]:
        raise InvalidState(f"a {old.value} chunk cannot become {new.value}")


def job_outcome(done: int, failed: int, canceled: int, total: int) -> JobStatus | None:
    """The final state a job reaches from its frame counts, or None while work remains."""
    if done + failed + canceled < total:
        return None
    if failed:
        return JobStatus.FAILED
    if canceled:
        return JobStatus.CANCELED
    return JobStatus.COMPLETED
