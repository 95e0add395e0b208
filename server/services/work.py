"""The life of a chunk on a node: claimed, frames reported, finished or given back.

Every function here is safe to call with a late or repeated report: a frame that is already
`done` stays as it is, and a chunk that no longer belongs to the reporting node is not touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from brender.server.models import Blocklist, Chunk, Client, Frame, Job, database, now
from brender.server.services import blocklist, hot_sql, jobs
from brender.server.states import (
    JOB_DISPATCHABLE,
    ChunkStatus,
    ClientStatus,
    FrameStatus,
    JobStatus,
    check_chunk_move,
    job_outcome,
)

log = logging.getLogger(__name__)

UNFINISHED = (FrameStatus.QUEUED.value, FrameStatus.RENDERING.value)


def may_take(client_id: int, chunk: Chunk) -> bool:
    """Whether this node may render this chunk: the one place such rules go (tags and GPUs
    later). Jobs the node is blocklisted for never reach here (`claim_next` leaves them out);
    a chunk that just failed on this node waits for another online, enabled, unblocked node,
    if there is one."""
    if chunk.failed_client != client_id:
        return True
    elsewhere = Client.select().where(
        Client.id != client_id,
        Client.online == True,  # noqa: E712 (SQL, not Python)
        Client.status == ClientStatus.ENABLED.value,
        Client.id.not_in(
            Blocklist.select(Blocklist.client).where(
                Blocklist.job == chunk.job_id, Blocklist.failures >= blocklist.BLOCK_AFTER
            )
        ),
    )
    return not elsewhere.exists()


Sizer = Callable[[Job, int], int]
"""For a job with automatic chunking: how many of `left` frames this node should get."""


def claim_next(client_id: int, sizer: Sizer | None = None) -> dict[str, Any] | None:
    """Give the best queued chunk to this node and answer its `render` order (or None).

    Highest priority first, then the oldest job (a few job rows), then the job's first queued
    chunk (through the (job, status, frame_start) index). The claim is a conditional UPDATE,
    so two claims can never take the same chunk. A job with automatic chunking has its frames
    carved off the front of its big queued chunk, `sizer` frames.
    """
    queued = ChunkStatus.QUEUED.value
    best_jobs = Job.raw(
        hot_sql.sql(hot_sql.BEST_JOBS_SQL),
        *JOB_DISPATCHABLE,
        client_id,
        blocklist.BLOCK_AFTER,
        queued,
    )
    for job in list(best_jobs):
        for chunk in list(Chunk.raw(hot_sql.sql(hot_sql.NEXT_CHUNKS_SQL), job.id, queued)):
            chunk.job = job
            if may_take(client_id, chunk):
                order = _claim(client_id, chunk, sizer)
                if order is not None:
                    return order
    return None


def has_queued_work() -> bool:
    return bool(
        Chunk.select()
        .join(Job)
        .where(Chunk.status == ChunkStatus.QUEUED.value, Job.status.in_(JOB_DISPATCHABLE))
        .exists()
    )


def _carve(chunk: Chunk, frames: int) -> Chunk | None:
    """Split `frames` frames off the front of a queued chunk into a chunk of their own."""
    start = chunk.frame_start
    moved = (
        Chunk.update(frame_start=start + frames)
        .where(
            Chunk.id == chunk.id,
            Chunk.status == ChunkStatus.QUEUED.value,
            Chunk.frame_start == start,
        )
        .execute()
    )
    if not moved:
        return None
    head = Chunk.create(job=chunk.job_id, frame_start=start, frame_end=start + frames - 1)
    Frame.update(chunk=head.id).where(
        Frame.job == chunk.job_id,  # through the (job, number) index, not the whole chunk
        Frame.chunk == chunk.id,
        Frame.number.between(start, start + frames - 1),
    ).execute()
    return head


def _claim(client_id: int, chunk: Chunk, sizer: Sizer | None) -> dict[str, Any] | None:
    job: Job = chunk.job
    with database.atomic():
        left = chunk.frame_end - chunk.frame_start + 1
        if job.chunk_size == jobs.AUTO and sizer is not None and left > 1:
            frames_wanted = sizer(job, left)
            if frames_wanted < left:
                head = _carve(chunk, frames_wanted)
                if head is None:
                    return None
                chunk = head
        running, queued, rendering = (
            ChunkStatus.RUNNING.value,
            ChunkStatus.QUEUED.value,
            FrameStatus.RENDERING.value,
        )
        stamp = now()
        if not hot_sql.run(
            hot_sql.TAKE_CHUNK_SQL, running, client_id, stamp, chunk.id, queued
        ).rowcount:
            return None
        hot_sql.run(
            hot_sql.SEND_FRAMES_SQL, rendering, client_id, stamp, chunk.id, FrameStatus.QUEUED.value
        )
        frames = [
            n for (n,) in hot_sql.run(hot_sql.SENT_FRAMES_SQL, chunk.id, rendering).fetchall()
        ]
        if not frames:
            # Late reports finished it while it waited in the queue: nothing left to send.
            _set_chunk(Chunk.get_by_id(chunk.id), ChunkStatus.DONE, client=None)
            update_job_outcome(job.id)
            return None
        if job.status == JobStatus.QUEUED.value:
            jobs.set_status(job, JobStatus.ACTIVE)
    log.info("job %d chunk %d (frames %s) -> client %d", job.id, chunk.id, _span(frames), client_id)
    return {
        "type": "render",
        "chunk_id": chunk.id,
        "job_id": job.id,
        "blend_file": job.blend_file,
        "output": job.output,
        "format": job.format,
        "frames": frames,
        "timeout": job.timeout,
    }


def _span(frames: list[int]) -> str:
    return f"{frames[0]}-{frames[-1]}" if frames else "none"


def frame_done(
    client_id: int, chunk_id: int, number: int, output_file: str, render_time: float | None
) -> bool:
    """Record a saved frame; answers False for a duplicate or a frame no longer wanted."""
    updated = hot_sql.run(
        hot_sql.FRAME_DONE_SQL,
        FrameStatus.DONE.value,
        client_id,
        output_file,
        render_time,
        now(),
        chunk_id,
        number,
        *UNFINISHED,
    ).rowcount
    if not updated:
        log.info(
            "ignored report of frame %d (chunk %d) from client %d: already final or unknown",
            number,
            chunk_id,
            client_id,
        )
    return bool(updated)


def chunk_finished(
    client_id: int, chunk_id: int, ok: bool, exit_code: int | None, error: str, log_tail: list[str]
) -> int | None:
    """Close the node's chunk: done, or failed with its unfinished frames retried or failed.

    Answers the chunk's job id when the chunk belonged to this node, else None (a stale report).
    """
    with database.atomic():
        chunk = next(iter(Chunk.raw(hot_sql.sql(hot_sql.CHUNK_SQL), chunk_id)), None)
        if (
            chunk is None
            or chunk.client_id != client_id
            or chunk.status != ChunkStatus.RUNNING.value
        ):
            log.info(
                "ignored end of chunk %d from client %d: not running there", chunk_id, client_id
            )
            return None
        left = dict(hot_sql.run(hot_sql.CHUNK_LEFT_SQL, chunk_id, *UNFINISHED).fetchall())
        if ok and not left.get(FrameStatus.RENDERING.value):
            _set_chunk(chunk, ChunkStatus.DONE, exit_code=exit_code, error="", log_tail="")
        else:
            reason = error or f"Blender exited with code {exit_code}"
            tail = "\n".join(log_tail[-50:])
            _set_chunk(
                chunk,
                ChunkStatus.FAILED,
                exit_code=exit_code,
                error=reason,
                log_tail=tail,
                failed_client=client_id,
            )
            job = chunk.job
            log.warning(
                "job %d chunk %d failed on client %d: %s", job.id, chunk_id, client_id, reason
            )
            _retry_or_fail(chunk, job, reason, tail)
            left[FrameStatus.QUEUED.value] = 1  # frames went back: look again below
            blocklist.record_failure(job, client_id, reason)
            blocklist.fail_if_nobody_can_render(job)
        if left.get(FrameStatus.QUEUED.value):
            requeue_if_pending(chunk)
        update_job_outcome(chunk.job_id)
    return chunk.job_id


def _set_chunk(chunk: Chunk, new: ChunkStatus, **fields: Any) -> None:
    """The one place a chunk changes state."""
    check_chunk_move(chunk.status, new)
    chunk.status = new.value
    if new in (ChunkStatus.DONE, ChunkStatus.FAILED, ChunkStatus.CANCELED):
        chunk.finished_at = now()
    for key, value in fields.items():
        setattr(chunk, key, value)
    chunk.save()


def _retry_or_fail(chunk: Chunk, job: Job, reason: str, tail: str) -> None:
    """Blame the failure on the frame Blender was on (the first unfinished one: frames render
    in order). It goes back to the queue, or fails for good once it has used up the job's
    attempts; the frames after it were never tried and go back without using one."""
    mine = (Frame.chunk == chunk.id) & (Frame.status == FrameStatus.RENDERING.value)
    culprit = Frame.select().where(mine).order_by(Frame.number).first()
    if culprit is None:
        return
    if culprit.attempts >= job.max_attempts:
        culprit.status = FrameStatus.FAILED.value
        culprit.finished_at = now()
        log.warning(
            "job %d frame %d failed for good after %d attempts on client %s: %s",
            job.id,
            culprit.number,
            culprit.attempts,
            culprit.client_id,
            reason,
        )
    else:
        culprit.status = FrameStatus.QUEUED.value
        log.info(
            "job %d frame %d requeued (attempt %d of %d failed): %s",
            job.id,
            culprit.number,
            culprit.attempts,
            job.max_attempts,
            reason,
        )
    culprit.error, culprit.log_tail, culprit.client = reason, tail, None
    culprit.save()
    _give_back(mine)


def requeue_if_pending(chunk: Chunk) -> None:
    """A chunk that is not running but has queued frames goes back to the queue."""
    if chunk.status == ChunkStatus.RUNNING.value:
        return
    if (
        Frame.select()
        .where(Frame.chunk == chunk.id, Frame.status == FrameStatus.QUEUED.value)
        .exists()
    ):
        _set_chunk(chunk, ChunkStatus.QUEUED, client=None, finished_at=None)


def _give_back(frames: Any) -> int:
    """Frames sent out but not rendered, through no fault of theirs, back to the queue: the
    try does not count against their attempts."""
    return int(
        Frame.update(status=FrameStatus.QUEUED.value, client=None, attempts=Frame.attempts - 1)
        .where(frames, Frame.status != FrameStatus.QUEUED.value, Frame.attempts > 0)
        .execute()
    )


def requeue_client(client_id: int, reason: str, chunk_id: int | None = None) -> list[int]:
    """Give back the chunks running on this node (all, or just `chunk_id`); done frames stay."""
    requeued = []
    query = Chunk.select().where(
        Chunk.client == client_id, Chunk.status == ChunkStatus.RUNNING.value
    )
    if chunk_id is not None:
        query = query.where(Chunk.id == chunk_id)
    with database.atomic():
        for chunk in query:
            _give_back((Frame.chunk == chunk.id) & Frame.status.in_(UNFINISHED))
            _set_chunk(chunk, ChunkStatus.QUEUED, client=None, error=reason)
            update_job_outcome(chunk.job_id)
            requeued.append(chunk.id)
            log.warning(
                "job %d chunk %d requeued from client %d: %s",
                chunk.job_id,
                chunk.id,
                client_id,
                reason,
            )
    return requeued


def update_job_outcome(job_id: int) -> None:
    """Finish the job once all its frames are final and no chunk of it is running.

    Called after every chunk: the usual answer ("frames are left") costs one indexed look-up,
    however big the job.
    """
    if hot_sql.run(hot_sql.JOB_LEFT_SQL, job_id, *UNFINISHED).fetchone():
        return
    # A job ends when its nodes are done with it, not merely when its last frame is saved.
    if (
        Chunk.select()
        .where(Chunk.job == job_id, Chunk.status == ChunkStatus.RUNNING.value)
        .exists()
    ):
        return
    job = Job.get_by_id(job_id)
    if job.status not in (JobStatus.ACTIVE.value, JobStatus.QUEUED.value):
        return
    c = jobs.frame_counts([job.id])[job.id]
    outcome = job_outcome(
        c.get(FrameStatus.DONE.value, 0),
        c.get(FrameStatus.FAILED.value, 0),
        c.get(FrameStatus.CANCELED.value, 0),
        sum(c.values()),
    )
    if outcome is not None:
        error = "" if outcome == JobStatus.COMPLETED else _first_failure(job.id)
        jobs.set_status(job, outcome, error=error)
        log.info("job %d %s", job.id, outcome.value)


def _first_failure(job_id: int) -> str:
    frame = (
        Frame.select(Frame.number, Frame.error)
        .where(Frame.job == job_id, Frame.status == FrameStatus.FAILED.value)
        .order_by(Frame.number)
        .first()
    )
    return f"frame {frame.number}: {frame.error}" if frame else ""


def running_chunk_of(client_id: int) -> int | None:
    row = (
        Chunk.select(Chunk.id)
        .where(Chunk.client == client_id, Chunk.status == ChunkStatus.RUNNING.value)
        .first()
    )
    return int(row.id) if row else None


def reclaim(client_id: int, chunk_id: int) -> bool:
    """A returning node still holds this chunk: keep it there if nobody else has taken it."""
    with database.atomic():
        chunk = Chunk.get_or_none(Chunk.id == chunk_id)
        if chunk is None or chunk.job.status not in JOB_DISPATCHABLE:
            return False
        if chunk.status == ChunkStatus.RUNNING.value:
            return bool(chunk.client_id == client_id)
        taken = (
            Chunk.update(status=ChunkStatus.RUNNING.value, client=client_id)
            .where(Chunk.id == chunk_id, Chunk.status == ChunkStatus.QUEUED.value)
            .execute()
        )
        if taken:
            Frame.update(status=FrameStatus.RENDERING.value, client=client_id).where(
                Frame.chunk == chunk_id, Frame.status == FrameStatus.QUEUED.value
            ).execute()
            log.info(
                "job %d chunk %d reclaimed by returning client %d",
                chunk.job_id,
                chunk_id,
                client_id,
            )
        return bool(taken)
