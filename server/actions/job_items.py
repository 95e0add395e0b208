"""job, chunk and frame: submit, create, read and the job verbs.

Verbs change the live jobs in memory (server/verbs.py) and are answered once that change is
committed; rows are written only by the store's writer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from brender.blendfile import Requirement, Version
from brender.server import housekeep, verbs, versions
from brender.server.api import Request, Routes
from brender.server.errors import Conflict
from brender.server.farm import Farm
from brender.server.models import Chunk, Frame, Job
from brender.server.services import attempts, changes, eta, jobs, outputs, packed, query
from brender.server.states import FrameStatus, JobStatus


def _job_dicts(farm: Farm, ids: list[int]) -> list[dict[str, Any]]:
    rows = [job.to_dict() for job in Job.select().where(Job.id.in_(ids)).order_by(Job.id)]
    return _job_page(farm, query.Page(rows, len(rows), len(rows), 0)).rows


def _job_page(farm: Farm, page: query.Page) -> query.Page:
    """Job rows with their counts (services/jobs.with_progress), the frames in flight (`live`,
    from memory) and `eta_seconds` (services/eta.py, from the nodes on the job now)."""
    page = jobs.with_progress(page, farm.scheduler.jobs.get, farm.waiting)
    now = time.time()
    active = [r["id"] for r in page.rows if r["status"] == JobStatus.ACTIVE.value]
    working = {i: farm.working_on(i) for i in active}
    measured = eta.paces([i for i in active if working[i]])
    for row in page.rows:
        job_id = row["id"]
        row["live"] = [e.to_dict(now) for e in farm.live.of_job(job_id, farm.live_valid)]
        row["outputs"] = outputs.outputs(row)
        frames = row["frames"]
        left = frames["queued"] + frames["rendering"]
        if row["status"] == JobStatus.COMPLETED.value:
            row["eta_seconds"] = 0.0
        elif job_id in measured:
            paces = {cid: p.per_frame for cid, p in measured[job_id].items()}
            row["eta_seconds"] = eta.eta_seconds(left, paces, working[job_id])
        else:
            row["eta_seconds"] = None
    return page


async def submit(farm: Farm, req: Request) -> dict[str, Any]:
    return await _new_job(farm, req, jobs.check_submit, jobs.submit_rows)


async def check(farm: Farm, req: Request) -> dict[str, Any]:
    """What `submit` would say of these values, and whether an online node can render the job,
    without writing anything (the add-on asks before it submits)."""
    data = jobs.check_submit(dict(req.values))
    data = await jobs.with_header_version(data)
    wants = versions.Wants(
        Version.parse(data["file_version"]) if data.get("file_version") else None,
        Requirement.parse(data["blender"]) if data.get("blender") else None,
        bool(data.get("autoexec")),
    )
    online = farm.online_blenders()
    return {
        "file_version": data.get("file_version"),
        "blender": data.get("blender"),
        "autoexec": wants.autoexec,
        "nodes": {
            "enabled": len(online),
            "able": sum(versions.blender_for(n, wants) is not None for n in online),
            "blenders": sorted({name for n in online for name in n.names}, key=Version.parse),
        },
        "waiting": versions.reason(wants, online),
        "warning": versions.advice(wants, online),
    }


async def create(farm: Farm, req: Request) -> dict[str, Any]:
    return await _new_job(farm, req, jobs.check_create, jobs.create_rows_for)


async def _new_job(farm: Farm, req: Request, check: Any, make: Any) -> dict[str, Any]:
    check(req.values)  # a bad value is refused before anything is written
    values = req.values
    if "upload" in values or "manifest" in values:  # files in the farm's blob store
        values = await packed.prepare_submit(farm.blobs, values)
    values = await jobs.with_header_version(values)  # not on the writer: every commit waits
    root, ids = farm.settings.output_root, farm.scheduler.new_chunk_ids
    request_id = values.get("request_id")

    def find_or_make() -> tuple[Job, jobs.Ranges | None]:
        # On the writer, so two submits of one request_id cannot both miss the first job.
        if request_id and (first := Job.get_or_none(Job.request_id == request_id)) is not None:
            return first, None
        return make(values, root, ids)

    job, ranges = await farm.store.run(find_or_make)
    if ranges is not None:
        verbs.added(farm.scheduler, job, ranges)
        farm.kick()
        farm.emit("job", {"id": job.id})
    return _job_dicts(farm, [job.id])[0]  # committed: `store.run` answers after its commit


def read(farm: Farm, req: Request) -> query.Page:
    page = query.read(Job, req.filters, req.limit, req.offset, req.order_by)
    return _job_page(farm, page)


def _verb(
    fn: Callable[[Farm, Job], None],
) -> Callable[[Farm, Request], Awaitable[list[dict[str, Any]]]]:
    async def run(farm: Farm, req: Request) -> list[dict[str, Any]]:
        targets = changes.targets(Job, req.filters)
        for job in targets:
            fn(farm, job)
            farm.emit("job", {"id": job.id})
        farm.kick()
        await farm.store.committed()  # the answer shows the rows as they now are
        return _job_dicts(farm, [job.id for job in targets])

    return run


def _pause(farm: Farm, job: Job) -> None:
    verbs.pause(farm.scheduler, job)


def _resume(farm: Farm, job: Job) -> None:
    verbs.resume(farm.scheduler, job)


def _cancel(farm: Farm, job: Job) -> None:
    farm.finisher.cancel(job.id)
    farm.cancel_chunks(verbs.cancel(farm.scheduler, job))


async def requeue(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """Failed and canceled frames (or `values.frames`) of the matching jobs, back to the queue."""
    targets = changes.targets(Job, req.filters)
    for job in targets:
        verbs.requeue(farm.scheduler, job, changes.requeue_targets(job, req.values))
        farm.emit("job", {"id": job.id})
    farm.kick()
    await farm.store.committed()
    return _job_dicts(farm, [job.id for job in targets])


async def update(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """Priority, name, max_attempts, timeout and the blocklist any time; range, chunking, file
    and output before any frame was sent out. A new priority reorders the queue at once."""
    targets = changes.targets(Job, req.filters)
    rebuilt = set(req.values) - changes.JOB_LIVE_FIELDS
    held = {}
    if rebuilt:
        for job in targets:
            live = farm.scheduler.jobs.get(job.id)
            if live is not None and live.running:
                raise Conflict(
                    f"job {job.id} is rendering: its {', '.join(sorted(rebuilt))} cannot change"
                )
        # Out of the queue while its rows are replaced; read back once they are.
        held = {job.id: verbs.deleted(farm.scheduler, [job.id]) for job in targets}
    ids = farm.scheduler.new_chunk_ids
    values = (
        await jobs.with_header_version(req.values) if "blend_file" in req.values else req.values
    )
    try:
        rows = await farm.store.run(lambda: changes.update(Job, req.filters, values, ids))
    finally:
        if held:
            verbs.reloaded(farm.scheduler, list(held))
    for job in rows:
        verbs.refreshed(farm.scheduler, job, "blocklist" in req.values)
        farm.emit("job", {"id": job.id})
    farm.kick()
    await farm.store.committed()
    return _job_dicts(farm, [job.id for job in rows])


async def delete(farm: Farm, req: Request) -> list[dict[str, Any]]:
    return await delete_under(farm, Job, req)


async def delete_under(farm: Farm, model: Any, req: Request) -> list[dict[str, Any]]:
    """Delete rows (and every job under them); jobs still rendering only with `force`.
    Uploaded jobs let go of their inputs (the store's sweep removes them once unused long
    enough); with `force` their frames on the server go too."""
    rows, job_ids = changes.to_delete(model, req.filters, req.values)
    force = bool(changes.check_values(req.values, {"force"}, "delete").get("force"))
    rendering = [i for i in job_ids if (live := farm.scheduler.jobs.get(i)) and live.running]
    if rendering and not force:
        raise Conflict(
            f"job(s) {', '.join(map(str, rendering))} are rendering under this "
            f'{model.__name__.lower()}; send values {{"force": true}} to cancel them and delete'
        )
    uploaded = packed.uploaded_jobs(job_ids)
    if uploaded and farm.blobs is not None:  # before the rows go: a crash keeps them young
        await asyncio.to_thread(housekeep.release, farm.blobs, [j.manifest for j in uploaded])
    for job_id in job_ids:
        farm.finisher.cancel(job_id)
    farm.cancel_chunks(verbs.deleted(farm.scheduler, job_ids))
    answer = await farm.store.run(lambda: changes.delete_rows(model, rows))
    for row in answer:
        farm.emit(model.__name__.lower(), {"id": row["id"], "deleted": True})
    if force:
        root = farm.settings.output_root
        for job in uploaded:
            await asyncio.to_thread(housekeep.remove_frames, root, job.id, job.output)
    return answer


def read_chunks(farm: Farm, req: Request) -> query.Page:
    return query.read(Chunk, req.filters, req.limit, req.offset, req.order_by)


def read_frames(farm: Farm, req: Request) -> query.Page:
    """Frames with `history` (every attempt); a rendering one carries `live`, its node's
    latest progress report."""
    page = query.read(Frame, req.filters, req.limit, req.offset, req.order_by)
    attempts.with_history(page.rows)
    now = time.time()
    rendering = FrameStatus.RENDERING.value
    for row in page.rows:
        entry = None
        if row.get("status") == rendering:
            where = (row.get("job_id"), row.get("chunk_id"), row.get("number"))
            entry = farm.live.of_frame(*where, farm.live_valid)  # type: ignore[arg-type]
        row["live"] = entry.to_dict(now) if entry is not None else None
    return page


async def requeue_frames(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """The frames a filter names (not those rendering right now) go back to the queue."""
    frames = changes.targets(Frame, req.filters)
    by_job: dict[int, list[tuple[int, int, str]]] = {}
    for f in frames:
        if f.status != FrameStatus.RENDERING.value:
            by_job.setdefault(f.job_id, []).append((f.number, f.chunk_id, f.status))
    for job in Job.select().where(Job.id.in_(list(by_job))):
        verbs.requeue(farm.scheduler, job, by_job[job.id])
        farm.emit("job", {"id": job.id})
    farm.kick()
    await farm.store.committed()
    ids = [f.id for f in frames]
    return [f.to_dict() for f in Frame.select().where(Frame.id.in_(ids)).order_by(Frame.id)]


ROUTES: Routes = {
    ("job", "submit"): submit,
    ("job", "check"): check,
    ("job", "create"): create,
    ("job", "read"): read,
    ("job", "update"): update,
    ("job", "delete"): delete,
    ("job", "pause"): _verb(_pause),
    ("job", "resume"): _verb(_resume),
    ("job", "cancel"): _verb(_cancel),
    ("job", "requeue"): requeue,
    ("chunk", "read"): read_chunks,
    ("frame", "read"): read_frames,
    ("frame", "requeue"): requeue_frames,
}
