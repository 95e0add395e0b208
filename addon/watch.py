"""Word in Blender when a job ends: the jobs submitted from this Blender, watched until they
complete or fail, and what the artist is told then. No `bpy` here.

`farm.tick` asks the farm for the watched jobs that have not ended (`poll_request`) every
refresh interval, whether or not a jobs panel is on screen; `observe` compares the answer with
what was known and gives one `Notice` per job that has just ended, which `farm` reports in the
status bar (an operator's report: no dialog) and keeps for the panel's Open buttons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from .jobs import FINAL, JobView, duration_text, parse_job

MAX_NOTICES = 10


@dataclass(frozen=True)
class Notice:
    """A job of this Blender's that has ended, as the artist is told."""

    job_id: int
    name: str
    status: str
    text: str
    level: str  # "INFO" or "ERROR", as an operator's report
    output: str = ""  # the job's output pattern (its folder on the farm's storage)
    storage: str = "shared"

    @property
    def ok(self) -> bool:
        return self.status == "completed"


def notice_for(job: JobView, row: dict[str, Any]) -> Notice:
    """What the artist reads when `job` (read as `row`) ended: which job, how, and for a
    failure why."""
    label = f"Farm job {job.id} ({job.name})"
    output, storage = str(row.get("output") or ""), str(row.get("storage") or "shared")
    if job.status == "completed":
        start, end = row.get("started_at"), row.get("finished_at")
        timed = isinstance(start, int | float) and isinstance(end, int | float)
        took = f" in {duration_text(float(end) - float(start))}" if timed else ""  # type: ignore[arg-type]
        movie = [o for o in row.get("outputs") or [] if isinstance(o, dict) and o.get("file")]
        made = f" and the movie {movie[0]['file']}" if movie else ""
        text = f"{label} completed: {job.done} frame(s){made}{took}"
        return Notice(job.id, job.name, job.status, text, "INFO", output, storage)
    why = f": {job.error}" if job.error else ""
    text = f"{label} {job.status}{why}"
    return Notice(job.id, job.name, job.status, text, "ERROR", output, storage)


def output_folder(output: str) -> str:
    """The folder of a job's output pattern (`/renders/sh010/####` → `/renders/sh010`)."""
    path = PureWindowsPath(output) if "\\" in output else PurePosixPath(output)
    return str(path.parent) if output else ""


@dataclass
class Watch:
    """The jobs submitted from this Blender: id → the status last seen."""

    jobs: dict[int, str] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    """The latest first, at most MAX_NOTICES."""
    polled_at: float = -math.inf
    pending: int = 0  # the ticket of the poll in flight, 0 when none

    def submitted(self, job: dict[str, Any]) -> None:
        if isinstance(job.get("id"), int):
            self.jobs[job["id"]] = str(job.get("status") or "queued")

    def open_ids(self) -> list[int]:
        return sorted(i for i, status in self.jobs.items() if status not in FINAL)

    def wants_poll(self, now: float, every: float) -> bool:
        return not self.pending and bool(self.open_ids()) and now - self.polled_at >= every

    def poll_request(self) -> dict[str, Any]:
        return {"item": "job", "action": "read", "filters": {"id": self.open_ids()}}

    def observe(self, rows: Any, now: float) -> list[Notice]:
        """A poll's answer (job rows): the notices of the jobs that have just ended."""
        self.pending, self.polled_at = 0, now
        found: list[Notice] = []
        for row in rows if isinstance(rows, list) else []:
            job = parse_job(row)
            before = self.jobs.get(job.id)
            if before is None:
                continue
            self.jobs[job.id] = job.status
            if job.status in FINAL and before not in FINAL:
                found.append(notice_for(job, row))
        self.notices = [*reversed(found), *self.notices][:MAX_NOTICES]
        return found

    def gone(self, now: float) -> None:
        """The poll failed (the farm is away): try again at the next interval."""
        self.pending, self.polled_at = 0, now

    def notice(self, job_id: int) -> Notice | None:
        return next((n for n in self.notices if n.job_id == job_id), None)

    def reset(self) -> None:
        self.jobs.clear()
        self.notices.clear()
        self.pending, self.polled_at = 0, -math.inf


def last_frame_request(job_id: int) -> dict[str, Any]:
    """The job's highest done frame."""
    return {"item": "frame", "action": "read", "filters": {"job_id": job_id, "status": "done"},
            "order_by": "-number", "limit": 1}  # fmt: skip


def where_to_look(notice: Notice, download_folder: str) -> str:
    """The folder with the job's frames on this machine: the job's output folder on shared
    storage; for an uploaded job (its frames are on the farm) the folder *Download Frames*
    fills."""
    return download_folder if notice.storage == "upload" else output_folder(notice.output)


def last_frame_path(notice: Notice, frame: dict[str, Any], download_folder: str) -> str:
    """Where the last frame is on this machine (see `where_to_look`)."""
    name = str(frame.get("output_file") or "")
    if notice.storage != "upload":
        return name
    path = PureWindowsPath(name) if "\\" in name else PurePosixPath(name)
    folder = (
        PureWindowsPath(download_folder)
        if "\\" in download_folder
        else PurePosixPath(download_folder)
    )
    return str(folder / path.name)
