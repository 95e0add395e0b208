"""Live progress of the frames in flight: the latest `progress` report of each running chunk.

Memory only (a report a quarter second is not worth a database write, and it means nothing
after a restart). An entry counts only while the node that sent it still holds the chunk and
the frame is not saved yet; the farm drops it when the chunk ends, readers skip stale ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from brender import messages


@dataclass(frozen=True, slots=True)
class FrameLive:
    """One frame in flight, as its node last told it (`at`: when, on the server's clock)."""

    job_id: int
    chunk_id: int
    client_id: int
    frame: int
    phase: str | None
    samples: int | None
    total: int | None
    remaining: float | None
    at: float

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """The API's `live` object; `remaining` counts down from Blender's estimate."""
        remaining = self.remaining
        if remaining is not None:
            spent = max(0.0, (now if now is not None else time.time()) - self.at)
            remaining = round(max(0.0, remaining - spent), 2)
        return {
            "frame": self.frame,
            "samples": self.samples,
            "total": self.total,
            "remaining": remaining,
            "phase": self.phase,
            "client_id": self.client_id,
        }


Valid = Callable[[FrameLive], bool]
"""Whether an entry is still true: its node holds the chunk and has not saved the frame."""


class ProgressBook:
    """The latest `FrameLive` of each running chunk, by job."""

    def __init__(self) -> None:
        self._jobs: dict[int, dict[int, FrameLive]] = {}
        self._chunks: dict[int, int] = {}  # chunk id -> job id

    def report(self, job_id: int, client_id: int, m: messages.Progress) -> FrameLive:
        entry = FrameLive(
            job_id,
            m.chunk_id,
            client_id,
            m.frame,
            m.phase,
            m.samples,
            m.total,
            m.remaining,
            time.time(),
        )
        self._jobs.setdefault(job_id, {})[m.chunk_id] = entry
        self._chunks[m.chunk_id] = job_id
        return entry

    def drop(self, chunk_id: int) -> None:
        job_id = self._chunks.pop(chunk_id, None)
        if job_id is None:
            return
        chunks = self._jobs.get(job_id)
        if chunks is not None:
            chunks.pop(chunk_id, None)
            if not chunks:
                del self._jobs[job_id]

    def of_job(self, job_id: int, valid: Valid) -> list[FrameLive]:
        """The job's frames in flight, by frame number; stale entries are forgotten."""
        entries = list(self._jobs.get(job_id, {}).values())
        for entry in entries:
            if not valid(entry):
                self.drop(entry.chunk_id)
        return sorted((e for e in entries if valid(e)), key=lambda e: e.frame)

    def of_frame(self, job_id: int, chunk_id: int, number: int, valid: Valid) -> FrameLive | None:
        entry = self._jobs.get(job_id, {}).get(chunk_id)
        if entry is None or entry.frame != number or not valid(entry):
            return None
        return entry

    def chunks(self) -> Iterable[int]:
        return list(self._chunks)
