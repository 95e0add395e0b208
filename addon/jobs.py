"""The farm's jobs and names as the panels show them: requests, parsing, ordering. No `bpy` here.

One refresh is one HTTP round trip (`refresh_requests`): this file's jobs, the farm's latest
jobs, and the project, sequence and shot names offered in the submit panel. `Board` keeps the
last answer on Blender's main thread; `draw()` reads it and never waits for the network.
"""

from __future__ import annotations

import math
import ntpath
import posixpath
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import FarmAnswerError

RECENT_JOBS = 30
ACTIVE = ("queued", "active")
FINAL = ("completed", "failed", "canceled")


@dataclass(frozen=True)
class JobView:
    """One job, as a row of the jobs panel."""

    id: int
    name: str
    status: str
    progress: float
    done: int
    total: int
    failed: int = 0
    project: str = ""
    sequence: str = ""
    shot: str = ""
    blend_file: str = ""
    frame_start: int = 0
    frame_end: int = 0
    priority: int = 50
    error: str = ""
    file_version: str = ""  # the Blender that saved the file ("4.5"), when the farm knows it
    blender: str = ""  # the Blender the job asks for (">=4.2"), if any
    autoexec: bool = False  # the file's Python drivers and scripts run
    waiting: str = ""  # why no online node may take its frames now ("needs Blender ≥ 4.5; …")
    eta_seconds: float | None = None  # the farm's estimate of the time left; None: no data yet

    @property
    def can_pause(self) -> bool:
        return self.status in ACTIVE

    @property
    def can_resume(self) -> bool:
        return self.status == "paused"

    @property
    def can_cancel(self) -> bool:
        return self.status not in FINAL

    @property
    def blender_text(self) -> str:
        """ "Blender 4.5 file · asks for >=4.2 · runs its scripts", or "" when nothing is known."""
        parts = [f"Blender {self.file_version} file"] if self.file_version else []
        if self.blender:
            parts.append(f"asks for Blender {self.blender}")
        if self.autoexec:
            parts.append("runs its scripts")
        return " · ".join(parts)

    @property
    def frames_text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.total} frames{failed}"

    @property
    def progress_text(self) -> str:
        """The progress bar's words: frames, and for a job still to render, its estimate."""
        return f"{self.frames_text} · {self.eta_text}" if self.can_pause else self.frames_text

    @property
    def eta_text(self) -> str:
        """ "12 min 05 s left", or "—" while the farm has no estimate."""
        return f"{duration_text(self.eta_seconds)} left" if self.eta_seconds is not None else "—"


def duration_text(seconds: float) -> str:
    """Seconds as people read them: "45 s", "12 min 05 s", "3 h 07 min"."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    m = s // 60
    if m < 60:
        return f"{m} min {s % 60:02d} s"
    return f"{m // 60} h {m % 60:02d} min"


@dataclass(frozen=True)
class FarmNames:
    """The farm's projects, their sequences and their shots, for the submit panel's suggestions."""

    projects: tuple[str, ...] = ()
    sequences: dict[str, tuple[str, ...]] = field(default_factory=dict)
    shots: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def sequences_of(self, project: str) -> tuple[str, ...]:
        return self.sequences.get(project, ())

    def shots_of(self, project: str, sequence: str) -> tuple[str, ...]:
        return self.shots.get((project, sequence), ())


@dataclass(frozen=True)
class Snapshot:
    jobs: tuple[JobView, ...] = ()
    names: FarmNames = field(default_factory=FarmNames)


def refresh_requests(blend_file: str, limit: int = RECENT_JOBS) -> list[dict[str, Any]]:
    """This file's jobs, the latest jobs, and the names: one batch for one `POST /api`."""
    return [
        {"item": "job", "action": "read", "filters": {"blend_file": blend_file},
         "order_by": "-id", "limit": limit},
        {"item": "job", "action": "read", "order_by": "-id", "limit": limit},
        {"item": "project", "action": "read", "order_by": "name"},
        {"item": "sequence", "action": "read", "order_by": "name"},
        {"item": "shot", "action": "read", "order_by": "name"},
    ]  # fmt: skip


def _int(row: dict[str, Any], key: str, default: int = 0) -> int:
    value = row.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _number(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return max(0.0, float(value))


def parse_job(row: Any) -> JobView:
    """A job row of `job read` (with its `frames` counts and `progress`) as a `JobView`."""
    if not isinstance(row, dict) or not isinstance(row.get("id"), int):
        raise FarmAnswerError("The farm sent a job the add-on cannot read")
    frames = row.get("frames") if isinstance(row.get("frames"), dict) else {}
    assert isinstance(frames, dict)
    progress = row.get("progress")
    if not isinstance(progress, int | float) or not math.isfinite(progress):
        total = _int(frames, "total")
        progress = _int(frames, "done") / total if total else 0.0
    return JobView(
        id=row["id"],
        name=str(row.get("name") or row.get("shot") or f"job {row['id']}"),
        status=str(row.get("status", "")),
        progress=min(1.0, max(0.0, float(progress))),
        done=_int(frames, "done"),
        total=_int(frames, "total"),
        failed=_int(frames, "failed"),
        project=str(row.get("project") or ""),
        sequence=str(row.get("sequence") or ""),
        shot=str(row.get("shot") or ""),
        blend_file=str(row.get("blend_file") or ""),
        frame_start=_int(row, "frame_start"),
        frame_end=_int(row, "frame_end"),
        priority=_int(row, "priority", 50),
        error=str(row.get("error") or ""),
        file_version=str(row.get("file_version") or ""),
        blender=str(row.get("blender") or ""),
        eta_seconds=_number(row, "eta_seconds"),
        autoexec=row.get("autoexec") is True,
        waiting=str(row.get("waiting") or ""),
    )


def same_file(a: str, b: str) -> bool:
    if not a or not b:
        return False
    norm = ntpath.normcase if "\\" in a or "\\" in b else posixpath.normpath
    return bool(norm(a) == norm(b))


def order_jobs(jobs: list[JobView], blend_file: str) -> tuple[JobView, ...]:
    """This file's jobs first, then the others; newest first within each."""
    unique = {job.id: job for job in jobs}.values()
    return tuple(sorted(unique, key=lambda j: (not same_file(j.blend_file, blend_file), -j.id)))


def parse_names(projects: Any, sequences: Any, shots: Any) -> FarmNames:
    def rows(data: Any) -> list[dict[str, Any]]:
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    project_of = {r.get("id"): str(r.get("name", "")) for r in rows(projects)}
    seq_of = {r.get("id"): (project_of.get(r.get("project_id"), ""), str(r.get("name", "")))
              for r in rows(sequences)}  # fmt: skip
    by_project: dict[str, list[str]] = {}
    for project, name in seq_of.values():
        by_project.setdefault(project, []).append(name)
    by_sequence: dict[tuple[str, str], list[str]] = {}
    for r in rows(shots):
        key = seq_of.get(r.get("sequence_id"), ("", ""))
        by_sequence.setdefault(key, []).append(str(r.get("name", "")))
    return FarmNames(
        projects=tuple(sorted(set(project_of.values()))),
        sequences={k: tuple(sorted(set(v))) for k, v in by_project.items()},
        shots={k: tuple(sorted(set(v))) for k, v in by_sequence.items()},
    )


def parse_snapshot(answers: list[Any], blend_file: str) -> Snapshot:
    """The `data` of each `refresh_requests` answer, in order, as one `Snapshot`."""
    if len(answers) != 5 or not all(isinstance(a, list) for a in answers[:2]):
        raise FarmAnswerError("The farm sent a job list the add-on cannot read")
    jobs = [parse_job(row) for row in [*answers[0], *answers[1]]]
    return Snapshot(order_jobs(jobs, blend_file), parse_names(*answers[2:]))


@dataclass
class Board:
    """The last refresh, kept on Blender's main thread for the panels to draw."""

    snapshot: Snapshot = field(default_factory=Snapshot)
    error: str = ""
    address: str = ""
    refreshed_at: float = -math.inf
    seen_at: float = -math.inf
    pending: int = 0  # the ticket of the refresh in flight, 0 when none
    stale: bool = False  # refresh at the next chance (after a submit or a pause, …)
    held: str = ""  # why the last submit of `held_file` was not sent (no node can render it)
    held_file: str = ""

    def seen(self, now: float) -> None:
        """A panel showing jobs was drawn: keep refreshing while it stays on screen."""
        self.seen_at = now

    def wants_refresh(self, now: float, every: float) -> bool:
        if self.pending:
            return False
        visible = now - self.seen_at < max(2 * every, 5.0)
        return visible and (self.stale or now - self.refreshed_at >= every)

    def apply(self, now: float, snapshot: Snapshot | None, error: str = "") -> None:
        self.pending, self.stale, self.refreshed_at = 0, False, now
        self.error = error
        if snapshot is not None:
            self.snapshot = snapshot

    def hold(self, blend_file: str, why: str) -> None:
        """A submit of this file waits for the artist's word (Submit Anyway); "" clears it."""
        self.held, self.held_file = why, blend_file if why else ""

    def held_for(self, blend_file: str) -> str:
        return self.held if self.held and same_file(self.held_file, blend_file) else ""

    def reset(self) -> None:
        """Forget everything (the add-on is being disabled, or the farm changed)."""
        fresh = Board()
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))
