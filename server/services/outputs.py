"""A job's outputs besides its frames: the movie (schema v6's `movie*` columns), as the job read
lists it, the frame files its encoding reads and the file a download sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brender.server import movie
from brender.server.errors import NotFound
from brender.server.models import Frame, Job, tuples
from brender.server.states import FrameStatus
from brender.server.store import Store


def committed_frame_files(store: Store) -> movie.FrameFiles:
    """`frame_files`, asked once the store has committed what it holds (the last frames' rows):
    what the farm's movie.Finisher reads."""

    async def files(job_id: int) -> list[Path]:
        await store.committed()
        return frame_files(job_id)

    return files


def frame_files(job_id: int) -> list[Path]:
    """The job's done frames' files, by frame number (what the movie is made of)."""
    query = (
        Frame.select(Frame.output_file)
        .where((Frame.job == job_id) & (Frame.status == FrameStatus.DONE.value))
        .order_by(Frame.number)
    )
    return [Path(name) for (name,) in tuples(query)]


def outputs(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The job read's `outputs`: its movie, when it asked for one, with its status."""
    spec = row.get("movie")
    if not spec:
        return []
    made = row.get("movie_file") or ""
    return [
        {
            "kind": "movie",
            "status": row.get("movie_status") or movie.WAITING,
            "file": made or None,
            "url": f"/outputs/{row['id']}/movie" if made else None,
            **spec,
        }
    ]


def movie_file(job_id: int) -> Path:
    """A made movie's file, or NotFound saying why there is none."""
    row = Job.select(Job.movie, Job.movie_status, Job.movie_file).where(Job.id == job_id).first()
    if row is None:
        raise NotFound(f"no job with id {job_id}")
    if not row.movie:
        raise NotFound(f"job {job_id} renders frames only, no movie")
    if row.movie_status != movie.DONE or not row.movie_file:
        raise NotFound(f"the movie of job {job_id} is {row.movie_status or movie.WAITING}")
    path = Path(row.movie_file)
    if not path.is_file():
        raise NotFound(f"the movie of job {job_id}: {path} is gone")
    return path
