"""Updating and deleting rows, and sending frames back to the queue by hand.

Deletes cascade (the foreign keys say ON DELETE CASCADE); anything still rendering blocks a
delete unless it is forced, and a forced delete first cancels that work (the caller tells the
nodes).
"""

from __future__ import annotations

import json
from collections.abc import Collection
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
    tuples,
)
from brender.server.services import blocklist, jobs, query
from brender.server.services import validate as v
from brender.server.states import (
    FRAME_MOVES,
    JOB_FINAL,
    FrameStatus,
)

UPDATABLE: dict[type[BaseModel], dict[str, v.Field]] = {
    Project: {"name": v.name_field(), "root": v.Field(str)},
    Sequence: {"name": v.name_field()},
    Shot: {
        "name": v.name_field(),
        "blend_file": v.path_field(),
        "frame_start": v.FRAME,
        "frame_end": v.FRAME,
    },
    Job: {**v.JOB_FIELDS, "blocklist": v.Field(list)},
}
JOB_LIVE_FIELDS = {
    "name", "priority", "max_attempts", "timeout", "blocklist", "file_version", "blender",
    "autoexec",
}  # fmt: skip
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


def update(
    model: type[BaseModel],
    filters: dict[str, Any],
    values: dict[str, Any],
    chunk_ids: jobs.ChunkIds | None = None,
) -> list[Any]:
    if not values:
        raise InvalidValue("update needs 'values'")
    if "status" in values and model is Job:
        raise InvalidValue("a job's status changes through pause, resume, cancel and requeue")
    data = v.check(values, UPDATABLE[model], model.__name__.lower())
    if model is Job and data.get("format") in jobs.MOVIE_FORMATS:
        raise InvalidValue(
            f"'format' {data['format']} makes a movie, which a job asks for when it is "
            "submitted: submit it again with that format"
        )
    rows = targets(model, filters)
    with database.atomic():
        for row in rows:
            if model is Job:
                _update_job(row, dict(data), chunk_ids)
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


def _update_job(job: Job, data: dict[str, Any], chunk_ids: jobs.ChunkIds | None) -> None:
    """`chunk_ids` (the scheduler's allocator) is needed when the range or chunking changes."""
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
    jobs.check_versions(data)  # the new file's header was read before (with_header_version)
    for key, value in data.items():
        setattr(job, key, value)
    if {"frame_start", "frame_end", "chunk_size"} & set(data):
        v.check_frame_range(job.frame_start, job.frame_end)
        Frame.delete().where(Frame.job == job.id).execute()
        Chunk.delete().where(Chunk.job == job.id).execute()
        if chunk_ids is None:
            raise ValueError("rebuilding a job's chunks needs the scheduler's chunk ids")
        jobs.create_rows(job.id, job.frame_start, job.frame_end, job.chunk_size, chunk_ids)
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


def to_delete(
    model: type[BaseModel], filters: dict[str, Any], values: dict[str, Any]
) -> tuple[list[Any], list[int]]:
    """The rows a delete names, and the ids of every job under them (deleted with them)."""
    check_values(values, {"force"}, "delete")
    rows = targets(model, filters)
    ids = [r.id for r in rows]
    return rows, [j.id for j in JOBS_UNDER[model](ids)]


def delete_rows(model: type[BaseModel], rows: list[Any]) -> list[dict[str, Any]]:
    """Delete them; the foreign keys cascade to what is under them."""
    answer = [r.to_dict() for r in rows]
    with database.atomic():
        model.delete().where(model.id.in_([r.id for r in rows])).execute()
    return answer


def clients_to_delete(
    filters: dict[str, Any], values: dict[str, Any], online: Collection[int]
) -> list[Client]:
    """The nodes a delete names. An online one is refused unless forced (the caller gives its
    work back before `delete_clients`)."""
    data = check_values(values, {"force"}, "delete")
    rows = targets(Client, filters)
    live = [r.name for r in rows if r.id in online]
    if live and not data.get("force"):
        raise Conflict(
            f"client(s) {', '.join(live)} are online; disconnect them first or "
            'send values {"force": true}'
        )
    return rows


def delete_clients(rows: list[Client]) -> list[dict[str, Any]]:
    with database.atomic():
        Client.delete().where(Client.id.in_([r.id for r in rows])).execute()
    return [r.to_dict() for r in rows]


# -- requeue -----------------------------------------------------------------------------------

REQUEUE_FIELDS = {"frames": v.Field(list), "status": v.Field(list)}


def requeue_targets(job: Job, values: dict[str, Any]) -> list[tuple[int, int, str]]:
    """The frames (number, chunk id, status) a job requeue names: its failed and canceled
    frames, those of `values.status`, or the `values.frames` numbers given."""
    data = v.check(values, REQUEUE_FIELDS, "job requeue")
    where = [Frame.job == job.id]
    if "frames" in data:
        numbers = data["frames"]
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise InvalidValue("'frames' must be a list of frame numbers")
        where.append(Frame.number.in_(numbers))
    else:
        states = data.get("status", [FrameStatus.FAILED.value, FrameStatus.CANCELED.value])
        allowed = {FrameStatus.FAILED.value, FrameStatus.CANCELED.value, FrameStatus.DONE.value}
        if not set(states) <= allowed:
            raise InvalidValue(f"'status' may list only {', '.join(sorted(allowed))}")
        where.append(Frame.status.in_(states))
    where.append(Frame.status.in_(FRAME_MOVES.sources(FrameStatus.QUEUED)))
    where.append(Frame.status != FrameStatus.RENDERING.value)  # a node has it
    query = Frame.select(Frame.number, Frame.chunk, Frame.status).where(*where)
    return [(n, c, s) for n, c, s in tuples(query.order_by(Frame.number))]
