"""Jobs: submitting them (with their chunk and frame rows), reading their progress, their verbs."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import peewee as pw

from brender.blendfile import BlendFileError, Requirement, Version, read_version
from brender.server import movie
from brender.server.errors import InvalidValue
from brender.server.models import (
    Blocklist,
    Frame,
    Job,
    Project,
    Sequence,
    Shot,
    database,
    tuples,
)
from brender.server.services import validate as v
from brender.server.services.blocklist import BLOCK_AFTER
from brender.server.services.hierarchy import ensure_shot, get
from brender.server.services.query import Page
from brender.server.states import (
    ChunkStatus,
    FrameStatus,
    JobStatus,
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
    "request_id": v.Field(str, nonempty=True),
    # Files uploaded to the farm's blob store instead of a shared `blend_file` (packed.py):
    # the manifest itself, or the SHA-256 of one the farm holds.
    "upload": v.Field(dict),
    "manifest": v.Field(str),
    "movie": v.Field(dict),  # the movie the frames become (server/movie.py)
}
UPLOAD_FIELDS = {**SUBMIT_FIELDS, "output": v.Field(str), "blend_file": v.Field(str)}
"""An uploaded job's `output` is a file-name pattern (`packed.check_pattern` checks it) and
its `blend_file` the main file's path in its tree (`brender.manifest` checks those)."""
CREATE_FIELDS = {
    **v.JOB_FIELDS,
    "shot_id": v.Field(int, 1),
    "paused": v.Field(bool),
    "movie": v.Field(dict),
    "request_id": v.Field(str, nonempty=True),
}


def default_output(output_root: Path, job: Job) -> str:
    shot = job.shot
    seq = shot.sequence
    folder = output_root / seq.project.name / seq.name / shot.name / f"job-{job.id}"
    return str(folder / "####")


MOVIE_FORMATS: dict[str, dict[str, str]] = {
    "FFMPEG": {},
    "AVI_JPEG": {"container": "AVI", "codec": "MJPEG"},
    "AVI_RAW": {"container": "AVI", "codec": "RAW"},
}
"""Blender's movie formats: each becomes PNG frames and a movie (the AVI ones in their codec)."""

ChunkIds = Callable[[int], list[int]]
"""Gives ids for that many new chunks (the scheduler allocates them)."""
Ranges = list[tuple[int, int, int]]
"""A new job's chunks: (chunk id, first frame, last frame)."""


def check_submit(values: dict[str, Any]) -> dict[str, Any]:
    """A submit's values, checked (no database needed): raise before anything is written."""
    uploaded = "upload" in values or "manifest" in values
    spec = UPLOAD_FIELDS if uploaded else SUBMIT_FIELDS
    data = check_versions(v.check(values, spec, "job submit"))
    v.require(
        data, ("project", "sequence", "shot", *(() if uploaded else ("blend_file",))), "job submit"
    )
    return with_movie(data)


def with_movie(data: dict[str, Any]) -> dict[str, Any]:
    """A movie output (`format` FFMPEG, or a `movie`) renders its frames as images (`format`,
    PNG for FFMPEG) and keeps the movie's request for the finishing step (server/finish.py)."""
    if data.get("format") in MOVIE_FORMATS or "movie" in data:
        asked = data.get("movie", {})
        if isinstance(asked, dict) and data.get("format") in MOVIE_FORMATS:
            asked = {**MOVIE_FORMATS[data["format"]], **asked}
        spec = movie.check_spec(asked)
        if data.get("format") in MOVIE_FORMATS:
            data["format"] = "PNG"
        data["movie"] = json.dumps(spec.to_dict())
        data["movie_status"] = movie.WAITING
    return data


def check_versions(data: dict[str, Any]) -> dict[str, Any]:
    """`file_version` and `blender` in their normal form ("4.5", ">=4.2"), or InvalidValue."""
    if data.get("file_version"):
        try:
            data["file_version"] = str(Version.parse(data["file_version"]).series)
        except ValueError as exc:
            raise InvalidValue(f"'file_version': {exc}") from None
    if data.get("blender"):
        try:
            data["blender"] = str(Requirement.parse(data["blender"]))
        except ValueError as exc:
            raise InvalidValue(f"'blender': {exc}") from None
    return data


def header_version(path: Any) -> str | None:
    """The Blender series in the header of the .blend at `path`, when the server can see it
    (None when it cannot); InvalidValue for a file that is not a .blend. It reads the file:
    call it off the loop and off the writer (`with_header_version`)."""
    if not isinstance(path, str) or not path or not os.path.isfile(path):
        return None
    try:
        return str(read_version(path).series)
    except BlendFileError as exc:
        raise InvalidValue(f"'blend_file': {exc}") from None


async def with_header_version(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with `file_version` from the header of their `blend_file`, which wins over what
    the submitter said, read in a worker thread."""
    if "manifest" in values or "upload" in values:
        return values  # read from the blob store already (packed.prepare_submit)
    version = await asyncio.to_thread(header_version, values.get("blend_file"))
    return values if version is None else {**values, "file_version": version}


def read_file_version(data: dict[str, Any]) -> None:
    """For a job whose file the request did not name (it is the shot's): its header, if no
    version came with the values."""
    if not data.get("file_version") and (version := header_version(data.get("blend_file"))):
        data["file_version"] = version


def submit_rows(
    values: dict[str, Any], output_root: Path, chunk_ids: ChunkIds
) -> tuple[Job, Ranges]:
    """Create the project/sequence/shot as needed and the job, in one transaction; answers
    the job and its chunks."""
    data = check_submit(values)
    with database.atomic():
        shot = ensure_shot(
            data.pop("project"),
            data.pop("sequence"),
            data.pop("shot"),
            {k: data[k] for k in ("blend_file", "frame_start", "frame_end") if k in data},
        )
        return _create(shot, data, output_root, chunk_ids)


def check_create(values: dict[str, Any]) -> dict[str, Any]:
    data = check_versions(v.check(values, CREATE_FIELDS, "job"))
    v.require(data, ("shot_id",), "a job")
    return with_movie(data)


def create_rows_for(
    values: dict[str, Any], output_root: Path, chunk_ids: ChunkIds
) -> tuple[Job, Ranges]:
    data = check_create(values)
    with database.atomic():
        shot = get(Shot, data.pop("shot_id"))
        data.setdefault("blend_file", shot.blend_file)
        v.require(data, ("blend_file",), "a job (or its shot)")
        return _create(shot, data, output_root, chunk_ids)


def _create(
    shot: Shot, data: dict[str, Any], output_root: Path, chunk_ids: ChunkIds
) -> tuple[Job, Ranges]:
    start = data.setdefault("frame_start", shot.frame_start)
    end = data.setdefault("frame_end", shot.frame_end)
    v.check_frame_range(start, end)
    size = data.setdefault("chunk_size", AUTO)
    paused = data.pop("paused", False)
    data.setdefault("name", Path(data["blend_file"]).stem)
    read_file_version(data)
    uploaded = bool(data.get("manifest"))
    pattern = data.pop("output", "") or ""
    job = Job.create(
        shot=shot,
        status=(JobStatus.PAUSED if paused else JobStatus.QUEUED).value,
        output="" if uploaded else pattern,
        storage="upload" if uploaded else "shared",
        **data,
    )
    if uploaded:  # its frames come back to the farm, into the job's own folder
        job.output = str(Path(default_output(output_root, job)).with_name(pattern or "####"))
        job.save(only=[Job.output])
    elif not job.output:
        job.output = default_output(output_root, job)
        job.save(only=[Job.output])
    return job, create_rows(job.id, start, end, size, chunk_ids)


def create_rows(job_id: int, start: int, end: int, size: int, chunk_ids: ChunkIds) -> Ranges:
    """Chunk and frame rows in bulk, a few thousand rows per INSERT. With automatic chunking
    (`size` 0) there is one chunk for the whole range, carved up as nodes claim it."""
    size = size or end - start + 1
    ranges = [(s, min(s + size - 1, end)) for s in range(start, end + 1, size)]
    queued = ChunkStatus.QUEUED.value
    ids = chunk_ids(len(ranges))
    _insert(
        "chunk",
        ("id", "job_id", "frame_start", "frame_end", "status", "attempts", "error", "log_tail"),
        ((i, job_id, s, e, queued, 0, "", "") for i, (s, e) in zip(ids, ranges, strict=True)),
    )
    _insert(
        "frame",
        ("job_id", "chunk_id", "number", "status", "output_file", "attempts", "error", "log_tail"),
        (
            (job_id, chunk_id, n, FrameStatus.QUEUED.value, "", 0, "", "")
            for chunk_id, (s, e) in zip(ids, ranges, strict=True)
            for n in range(s, e + 1)
        ),
    )
    return [(i, s, e) for i, (s, e) in zip(ids, ranges, strict=True)]


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


def with_progress(
    page: Page,
    live: Callable[[int], Any] | None = None,
    waiting: Callable[[int], str | None] | None = None,
) -> Page:
    """Adds each job's frame counts, progress, blocklisted nodes, the names of its shot,
    sequence and project, and `waiting` (why no online node may take it). `live` gives the
    scheduler's view of an unfinished job: its counts and state are those of memory, a tick
    ahead of the database, and cost no query."""
    ids = [row["id"] for row in page.rows]
    held = {i: job for i in ids if live is not None and (job := live(i)) is not None}
    counts = frame_counts([i for i in ids if i not in held])
    for i, job in held.items():
        counts[i] = {str(status): n for status, n in job.counts.items() if n}
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
        job = held.get(row["id"])
        if job is not None:
            for key in ("status", "started_at", "finished_at", "error"):
                row[key] = getattr(job, key)
        c = counts[row["id"]]
        total = sum(c.values())
        row["frames"] = {"total": total, **{s.value: c.get(s.value, 0) for s in FrameStatus}}
        row["progress"] = round(c.get(FrameStatus.DONE.value, 0) / total, 4) if total else 0.0
        row["blocklist"] = blocked[row["id"]]
        row["shot"], row["sequence"], row["project"] = names.get(row["id"], ("", "", ""))
        # Why its queued frames wait for a node (a Blender that opens the file, auto-exec).
        row["waiting"] = waiting(row["id"]) if waiting is not None and job is not None else None
    return page
