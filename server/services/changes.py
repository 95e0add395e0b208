"""Updating and deleting rows, and sending frames back to the queue by hand.

Deletes cascade (the foreign keys say ON DELETE CASCADE); anything still rendering blocks a
delete unless it is forced, and a forced delete first cancels that work (the caller tells the
nodes).
"""

from __future__ import annotations

import json
from typing import Any

from brender.server.errors import Conflict, InvalidValue, NotFound
from brender.server.models import (
    BaseModel,
    Chunk,
    Client,
    Frame,
    Job,
    Project,
    Sequence,
    Shot,
    database,
)
from brender.server.services import blocklist, jobs, query, work
from brender.server.services import validate as v
from brender.server.states import JOB_FINAL, ChunkStatus, FrameStatus, JobStatus

UPDATABLE: dict[type[BaseModel], dict[str, v.Field]] = {
    Project: {"name": v.name_field(), "root": v.Field(str)},
    Sequence: {"name": v.name_field()},
    Shot: {
        "name": v.name_field(),
        "blend_file": v.Field(str),
        "frame_start": v.FRAME,
        "frame_end": v.FRAME,
    },
    Job: {**v.JOB_FIELDS, "blocklist": v.Field(list)},
}
JOB_LIVE_FIELDS = {"name", "priority", "max_attempts", "timeout", "blocklist"}
"""What may change while a job renders; the rest only before any of its frames was sent out."""

PARENT = {Sequence: ("project", Sequence.project), Shot: ("sequence", Shot.sequence)}


def check_values(values: dict[str, Any], flags: set[str], what: str) -> dict[str, Any]:
    """Validate a verb's boolean options (`force`, `now`)."""
    return v.check(values, {name: v.Field(bool) for name in flags}, what)


def targets(model: type[BaseModel], filters: dict[str, Any]) -> list[Any]:
    """The rows a filter names; an empty match is `not_found`, never a silent no-op."""
    ids = query.matching_ids(model, filters)
    if not ids:
        what = json.dumps(filters) if filters else "the empty filter"
        raise NotFound(f"no {model.__name__.lower()} matches {what}")
    return list(model.select().where(model.id.in_(ids)).order_by(model.id))


def update(model: type[BaseModel], filters: dict[str, Any], values: dict[str, Any]) -> list[Any]:
    if not values:
        raise InvalidValue("update needs 'values'")
    if "status" in values and model is Job:
        raise InvalidValue("a job's status changes through pause, resume, cancel and requeue")
    data = v.check(values, UPDATABLE[model], model.__name__.lower())
    rows = targets(model, filters)
    with database.atomic():
        for row in rows:
            if model is Job:
                _update_job(row, data)
            else:
                _check_names(model, row, data)
                if "frame_start" in data or "frame_end" in data:
                    v.check_frame_range(
                        data.get("frame_start", row.frame_start),
                        data.get("frame_end", row.frame_end),
                    )
                for key, value in data.items():
                    setattr(row, key, value)
                row.save()
    return list(model.select().where(model.id.in_([r.id for r in rows])).order_by(model.id))


def _check_names(model: type[BaseModel], row: Any, data: dict[str, Any]) -> None:
    name = data.get("name")
    if name is None or name == row.name:
        return
    clash = model.select().where(model._meta.fields["name"] == name, model.id != row.id)
    if model in PARENT:
        attr, field = PARENT[model]
        clash = clash.where(field == getattr(row, f"{attr}_id"))
    if clash.exists():
        raise Conflict(f"a {model.__name__.lower()} named '{name}' exists already there")


def _update_job(job: Job, data: dict[str, Any]) -> None:
    frozen = sorted(set(data) - JOB_LIVE_FIELDS)
    if frozen:
        started = Frame.select().where(Frame.job == job.id, Frame.attempts > 0).exists()
        if started or job.status in {s.value for s in JOB_FINAL}:
            raise Conflict(
                f"job {job.id} has started rendering: its {', '.join(frozen)} can no "
                "longer change (submit a new job instead)"
            )
    if "blocklist" in data:
        if data.pop("blocklist") != []:
            raise InvalidValue("'blocklist' can only be cleared: send []")
        blocklist.clear(job.id)
    for key, value in data.items():
        setattr(job, key, value)
    if {"frame_start", "frame_end", "chunk_size"} & set(data):
        v.check_frame_range(job.frame_start, job.frame_end)
        Frame.delete().where(Frame.job == job.id).execute()
        Chunk.delete().where(Chunk.job == job.id).execute()
        jobs.create_rows(job.id, job.frame_start, job.frame_end, job.chunk_size)
    job.save()


# -- delete ------------------------------------------------------------------------------------

JOBS_UNDER = {
    Project: lambda ids: (
        Job.select(Job.id).join(Shot).join(Sequence).where(Sequence.project.in_(ids))
    ),
    Sequence: lambda ids: Job.select(Job.id).join(Shot).where(Shot.sequence.in_(ids)),
    Shot: lambda ids: Job.select(Job.id).where(Job.shot.in_(ids)),
    Job: lambda ids: Job.select(Job.id).where(Job.id.in_(ids)),
}


def delete(
    model: type[BaseModel], filters: dict[str, Any], values: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[tuple[int, int | None]]]:
    """Delete what `filters` names; answers the deleted rows and the chunks to kill on nodes."""
    data = check_values(values, {"force"}, "delete")
    rows = targets(model, filters)
    ids = [r.id for r in rows]
    job_ids = [j.id for j in JOBS_UNDER[model](ids)]
    running = list(
        Chunk.select(Chunk.id, Chunk.client).where(
            Chunk.job.in_(job_ids), Chunk.status == ChunkStatus.RUNNING.value
        )
    )
    if running and not data.get("force"):
        raise Conflict(
            f"{len(running)} chunk(s) are rendering under this "
            f'{model.__name__.lower()}; send values {{"force": true}} to cancel '
            "them and delete"
        )
    answer = [r.to_dict() for r in rows]
    with database.atomic():
        model.delete().where(model.id.in_(ids)).execute()
    return answer, [(c.id, c.client_id) for c in running]


def delete_clients(
    filters: dict[str, Any], values: dict[str, Any], online: set[int]
) -> list[dict[str, Any]]:
    """Forget nodes. An online node is refused unless forced (its work goes back first)."""
    data = check_values(values, {"force"}, "delete")
    rows = targets(Client, filters)
    live = [r.name for r in rows if r.id in online]
    if live and not data.get("force"):
        raise Conflict(
            f"client(s) {', '.join(live)} are online; disconnect them first or "
            'send values {"force": true}'
        )
    with database.atomic():
        for row in rows:
            work.requeue_client(row.id, "client deleted")
        Client.delete().where(Client.id.in_([r.id for r in rows])).execute()
    return [r.to_dict() for r in rows]


# -- requeue -----------------------------------------------------------------------------------

REQUEUE_FIELDS = {"frames": v.Field(list), "status": v.Field(list)}


def requeue_job(job: Job, values: dict[str, Any]) -> int:
    """Send a job's failed and canceled frames (or the `frames` numbers given) back to the
    queue with a fresh attempt budget; answers how many frames went back."""
    data = v.check(values, REQUEUE_FIELDS, "job requeue")
    where = [Frame.job == job.id]
    if "frames" in data:
        numbers = data["frames"]
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise InvalidValue("'frames' must be a list of frame numbers")
        where.append(Frame.number.in_(numbers))
        where.append(Frame.status != FrameStatus.RENDERING.value)
    else:
        states = data.get("status", [FrameStatus.FAILED.value, FrameStatus.CANCELED.value])
        allowed = {FrameStatus.FAILED.value, FrameStatus.CANCELED.value, FrameStatus.DONE.value}
        if not set(states) <= allowed:
            raise InvalidValue(f"'status' may list only {', '.join(sorted(allowed))}")
        where.append(Frame.status.in_(states))
    frame_ids = [f.id for f in Frame.select(Frame.id).where(*where)]
    return requeue_frames(job, frame_ids)


def requeue_frames(job: Job, frame_ids: list[int]) -> int:
    if not frame_ids:
        return 0
    with database.atomic():
        Frame.update(
            status=FrameStatus.QUEUED.value,
            attempts=0,
            client=None,
            error="",
            output_file="",
            render_time=None,
            finished_at=None,
        ).where(Frame.id.in_(frame_ids), Frame.status != FrameStatus.RENDERING.value).execute()
        chunk_ids = {f.chunk_id for f in Frame.select(Frame.chunk).where(Frame.id.in_(frame_ids))}
        for chunk in Chunk.select().where(Chunk.id.in_(list(chunk_ids))):
            work.requeue_if_pending(chunk)
        blocklist.clear(job.id)  # a person asked for another try: every node may take it again
        job = Job.get_by_id(job.id)
        if job.status in {s.value for s in JOB_FINAL}:
            jobs.set_status(job, JobStatus.QUEUED, error="", finished_at=None)
    return len(frame_ids)


def requeue_frame_rows(filters: dict[str, Any]) -> list[dict[str, Any]]:
    """`frame requeue`: the frames a filter names, grouped by job."""
    frames = targets(Frame, filters)
    by_job: dict[int, list[int]] = {}
    for frame in frames:
        if frame.status != FrameStatus.RENDERING.value:
            by_job.setdefault(frame.job_id, []).append(frame.id)
    for job_id, ids in by_job.items():
        requeue_frames(Job.get_by_id(job_id), ids)
    return [f.to_dict() for f in Frame.select().where(Frame.id.in_([f.id for f in frames]))]
