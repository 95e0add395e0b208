"""*Download Frames*: a job's done frames into a folder, only those missing or changed there,
as `brender download` does. No `bpy` here: the worker runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .client import FarmClient
from .errors import FarmError
from .transfer import Files, sha256_of
from .upload import Notify, Progress, human

PAGE = 10_000


@dataclass(frozen=True)
class Fetched:
    job_id: int
    folder: str
    fetched: int
    kept: int
    size: int  # bytes downloaded


def done_frames(client: FarmClient, job_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = client.call(
            {"item": "frame", "action": "read", "filters": {"job_id": job_id, "status": "done"},
             "order_by": "number", "limit": PAGE, "offset": len(rows)},
            f"the frames of job {job_id}",
        )  # fmt: skip
        if not isinstance(page, list) or not page:
            return rows
        rows += page
        if len(page) < PAGE:
            return rows


def frame_name(output_file: str) -> str:
    """The file name of a frame the farm stores (its own path, maybe another OS's)."""
    path = PureWindowsPath(output_file) if "\\" in output_file else PurePosixPath(output_file)
    name = path.name
    if not name or name in (".", "..") or name.startswith("."):
        raise FarmError(f"The farm named a frame file the add-on will not write: {output_file!r}")
    return name


def fetch_frames(client: FarmClient, job_id: int, folder: str, notify: Notify) -> Fetched:
    """Each done frame of `job_id` into `folder`, unless a file with the same bytes is there."""
    files = Files(client)
    frames = done_frames(client, job_id)
    if not frames:
        raise FarmError(f"Farm job {job_id} has no finished frames yet")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    fetched = kept = size = 0
    for i, frame in enumerate(frames):
        notify(Progress(f"Job {job_id}: frame {i + 1} of {len(frames)}", i / len(frames)))
        dest = target / frame_name(str(frame.get("output_file") or ""))
        remote = files.frame_sha(job_id, int(frame["number"]))
        if remote is not None and dest.is_file() and sha256_of(dest) == remote:
            kept += 1
            continue
        counted = [0]

        def sent(n: int, counted: list[int] = counted) -> None:
            counted[0] += n

        got = files.get_frame(job_id, int(frame["number"]), dest, sent)
        if remote is not None and got != remote:
            raise FarmError(f"Frame {frame['number']} of job {job_id} arrived damaged: try again")
        fetched += 1
        size += counted[0]
    notify(Progress(f"Job {job_id}: {fetched} frame(s), {human(size)}", 1.0))
    return Fetched(job_id, str(target), fetched, kept, size)
