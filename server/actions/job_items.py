"""job, chunk and frame: submit, create, read and the job verbs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from brender.server.api import Request, action
from brender.server.farm import Farm
from brender.server.models import Chunk, Frame, Job
from brender.server.services import changes, jobs, query


def _job_dict(job: Job) -> dict[str, Any]:
    page = jobs.with_progress(query.Page([job.to_dict()], 1, 1, 0))
    return page.rows[0]


@action("job", "submit")
def submit(farm: Farm, req: Request) -> dict[str, Any]:
    job = jobs.submit(req.values, farm.settings.output_root)
    farm.kick()
    farm.emit("job", {"id": job.id})
    return _job_dict(job)


@action("job", "create")
def create(farm: Farm, req: Request) -> dict[str, Any]:
    job = jobs.create(req.values, farm.settings.output_root)
    farm.kick()
    farm.emit("job", {"id": job.id})
    return _job_dict(job)


@action("job", "read")
def read(farm: Farm, req: Request) -> query.Page:
    page = query.read(Job, req.filters, req.limit, req.offset, req.order_by)
    return jobs.with_progress(page)


def _targets(req: Request) -> list[Job]:
    return changes.targets(Job, req.filters)


def _verb(fn: Callable[[Farm, Job], None]) -> Callable[[Farm, Request], list[dict[str, Any]]]:
    def run(farm: Farm, req: Request) -> list[dict[str, Any]]:
        touched = []
        for job in _targets(req):
            fn(farm, job)
            farm.emit("job", {"id": job.id})
            touched.append(_job_dict(Job.get_by_id(job.id)))
        farm.kick()
        return touched

    return run


def _pause(farm: Farm, job: Job) -> None:
    jobs.pause(job)


def _resume(farm: Farm, job: Job) -> None:
    jobs.resume(job)


def _cancel(farm: Farm, job: Job) -> None:
    _, running = jobs.cancel(job)
    farm.cancel_chunks(running)


action("job", "pause")(_verb(_pause))
action("job", "resume")(_verb(_resume))
action("job", "cancel")(_verb(_cancel))


@action("job", "requeue")
def requeue(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """Failed and canceled frames (or `values.frames`) of the matching jobs, back to the queue."""
    touched = []
    for job in _targets(req):
        changes.requeue_job(job, req.values)
        farm.emit("job", {"id": job.id})
        touched.append(_job_dict(Job.get_by_id(job.id)))
    farm.kick()
    return touched


@action("job", "update")
def update(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """Priority, name and max_attempts any time; range, chunking, file and output before any
    frame was sent out. A new priority reorders the queue at once."""
    rows = changes.update(Job, req.filters, req.values)
    for job in rows:
        farm.emit("job", {"id": job.id})
    farm.kick()
    return [_job_dict(job) for job in rows]


@action("job", "delete")
def delete(farm: Farm, req: Request) -> list[dict[str, Any]]:
    rows, running = changes.delete(Job, req.filters, req.values)
    farm.cancel_chunks(running)
    for row in rows:
        farm.emit("job", {"id": row["id"], "deleted": True})
    return rows


@action("chunk", "read")
def read_chunks(farm: Farm, req: Request) -> query.Page:
    return query.read(Chunk, req.filters, req.limit, req.offset, req.order_by)


@action("frame", "read")
def read_frames(farm: Farm, req: Request) -> query.Page:
    return query.read(Frame, req.filters, req.limit, req.offset, req.order_by)


@action("frame", "requeue")
def requeue_frames(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """The frames a filter names (not those rendering right now) go back to the queue."""
    rows = changes.requeue_frame_rows(req.filters)
    for job_id in {r["job_id"] for r in rows}:
        farm.emit("job", {"id": job_id})
    farm.kick()
    return rows
