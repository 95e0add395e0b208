"""Jobs: submitting them (with their chunk and frame rows), reading their progress, their verbs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import peewee as pw

from brender.server.errors import InvalidValue
from brender.server.models import (
    Blocklist,
    Chunk,
    Frame,
    Job,
    Project,
    Sequence,
    Shot,
    database,
    now,
    tuples,
)
from brender.server.services import validate as v
from brender.server.services.blocklist import BLOCK_AFTER
from brender.server.services.hierarchy import ensure_shot, get
from brender.server.services.query import Page
from brender.server.states import (
    JOB_FINAL,
    ChunkStatus,
    FrameStatus,
    JobStatus,
    check_job_move,
)

AUTO = 0
"""`chunk_size` 0: the farm sizes each chunk as nodes claim it (server/chunking.py)."""
BATCH = 2000  # rows per INSERT: 7 columns stay well under SQLite's 32766 variables
SUBMIT_FIELDS = {
    **v.JOB_FIELDS,
    "project": v.name_field(),
    "sequence": v.name_field(),
    "shot": v.name_field(),
    "paused": v.Field(bool),
}
CREATE_FIELDS = {**v.JOB_FIELDS, "shot_id": v.Field(int, 1), "paused": v.Field(bool)}


def default_output(output_root: Path, job: Job) -> str:
    shot = job.shot
    seq = shot.sequence
    folder = output_root / seq.project.name / seq.name / shot.name / f"job-{job.id}"
    return str(folder / "####")


def submit(values: dict[str, Any], output_root: Path) -> Job:
    """Create the project/sequence/shot as needed and the job, in one transaction."""
    data = v.check(values, SUBMIT_FIELDS, "job submit")
    v.require(data, ("project", "sequence", "shot", "blend_file"), "job submit")
    with database.atomic():
        shot = ensure_shot(
            data.pop("project"),
            data.pop("sequence"),
            data.pop("shot"),
            {k: data[k] for k in ("blend_file", "frame_start", "frame_end") if k in data},
        )
        return _create(shot, data, output_root)


def create(values: dict[str, Any], output_root: Path) -> Job:
    data = v.check(values, CREATE_FIELDS, "job")
    v.require(data, ("shot_id",), "a job")
    with database.atomic():
        shot = get(Shot, data.pop("shot_id"))
        data.setdefault("blend_file", shot.blend_file)
        v.require(data, ("blend_file",), "a job (or its shot)")
        return _create(shot, data, output_root)


def _create(shot: Shot, data: dict[str, Any], output_root: Path) -> Job:
    start = data.setdefault("frame_start", shot.frame_start)
    end = data.setdefault("frame_end", shot.frame_end)
    v.check_frame_range(start, end)
    size = data.setdefault("chunk_size", AUTO)
    paused = data.pop("paused", False)
    data.setdefault("name", Path(data["blend_file"]).stem)
    job = Job.create(
        shot=shot,
        status=(JobStatus.PAUSED if paused else JobStatus.QUEUED).value,
        output=data.pop("output", "") or "",
        **data,
    )
    if not job.output:
        job.output = default_output(output_root, job)
        job.save(only=[Job.output])
    create_rows(job.id, start, end, size)
    return job


def create_rows(job_id: int, start: int, end: int, size: int) -> None:
    """Chunk and frame rows in bulk, a few thousand rows per INSERT. With automatic chunking
    (`size` 0) there is one chunk for the whole range, carved up as nodes claim it."""
    size = size or end - start + 1
    ranges = [(s, min(s + size - 1, end)) for s in range(start, end + 1, size)]
    queued = ChunkStatus.QUEUED.value
    _insert(
        "chunk",
        ("job_id", "frame_start", "frame_end", "status", "attempts", "error", "log_tail"),
        ((job_id, s, e, queued, 0, "", "") for s, e in ranges),
    )
    chunk_ids = [
        r[0]
        for r in tuples(
            Chunk.select(Chunk.id).where(Chunk.job == job_id).order_by(Chunk.frame_start)
        )
    ]
    _insert(
        "frame",
        ("job_id", "chunk_id", "number", "status", "output_file", "attempts", "error", "log_tail"),
        (
            (job_id, chunk_id, n, FrameStatus.QUEUED.value, "", 0, "", "")
            for chunk_id, (s, e) in zip(chunk_ids, ranges, strict=True)
            for n in range(s, e + 1)
        ),
    )


def _insert(table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs written out directly: for a 100,000-frame job, building them with
    peewee's insert_many took seconds, SQLite runs them in a fraction of one."""
    row_sql = "(" + ", ".join([database.obj.param] * len(columns)) + ")"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    for batch in pw.chunked(rows, BATCH):
        values = [value for row in batch for value in row]
        database.execute_sql(head + ", ".join([row_sql] * len(batch)), values)


def frame_counts(job_ids: list[int]) -> dict[int, dict[str, int]]:
    """Frames by status for each job, in one grouped query."""
    counts: dict[int, dict[str, int]] = {j: {} for j in job_ids}
    if not job_ids:
        return counts
    query = (
        Frame.select(Frame.job, Frame.status, pw.fn.COUNT(Frame.id))
        .where(Frame.job.in_(job_ids))
        .group_by(Frame.job, Frame.status)
    )
    for job_id, status, n in tuples(query):
        counts[job_id][status] = n
    return counts


def with_progress(page: Page) -> Page:
    """Adds each job's frame counts, progress, blocklisted nodes and the names of its shot,
    sequence and project."""
    ids = [row["id"] for row in page.rows]
    counts = frame_counts(ids)
    blocked: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for entry in Blocklist.select().where(Blocklist.job.in_(ids)).order_by(Blocklist.id):
        blocked[entry.job_id].append(
            {
                "client_id": entry.client_id,
                "failures": entry.failures,
                "reason": entry.reason,
                "blocked": entry.failures >= BLOCK_AFTER,
            }
        )
    names = (
        {
            job_id: (shot, seq, proj)
            for job_id, shot, seq, proj in tuples(
                Job.select(Job.id, Shot.name, Sequence.name, Project.name)
                .join(Shot)
                .join(Sequence)
                .join(Project)
                .where(Job.id.in_(ids))
            )
        }
        if ids
        else {}
    )
    for row in page.rows:
        c = counts[row["id"]]
        total = sum(c.values())
        row["frames"] = {"total": total, **{s.value: c.get(s.value, 0) for s in FrameStatus}}
        row["progress"] = round(c.get(FrameStatus.DONE.value, 0) / total, 4) if total else 0.0
        row["blocklist"] = blocked[row["id"]]
        row["shot"], row["sequence"], row["project"] = names.get(row["id"], ("", "", ""))
    return page


def set_status(job: Job, new: JobStatus, **extra: Any) -> Job:
    """The one place a job changes state."""
    check_job_move(job.status, new)
    job.status = new.value
    if new == JobStatus.ACTIVE and job.started_at is None:
        job.started_at = now()
    if new in JOB_FINAL:
        job.finished_at = now()
    for key, value in extra.items():
        setattr(job, key, value)
    job.save()
    return job


def pause(job: Job) -> Job:
    return set_status(job, JobStatus.PAUSED)


def resume(job: Job) -> Job:
    if job.status != JobStatus.PAUSED.value:
        raise InvalidValue(f"job {job.id} is {job.status}, not paused")
    return set_status(job, JobStatus.ACTIVE if job.started_at else JobStatus.QUEUED)


def cancel(job: Job) -> tuple[Job, list[tuple[int, int | None]]]:
    """Cancel the job's unfinished work; answers the (chunk id, client id) pairs to kill."""
    with database.atomic():
        set_status(job, JobStatus.CANCELED)
        running = [
            (c.id, c.client_id)
            for c in Chunk.select(Chunk.id, Chunk.client).where(
                Chunk.job == job.id, Chunk.status == ChunkStatus.RUNNING.value
            )
        ]
        Chunk.update(status=ChunkStatus.CANCELED.value, finished_at=now()).where(
            Chunk.job == job.id,
            Chunk.status.in_([ChunkStatus.QUEUED.value, ChunkStatus.RUNNING.value]),
        ).execute()
        Frame.update(status=FrameStatus.CANCELED.value).where(
            Frame.job == job.id,
            Frame.status.in_([FrameStatus.QUEUED.value, FrameStatus.RENDERING.value]),
        ).execute()
    return job, running
