"""What a person's API request does to the live jobs: submit, pause, resume, cancel, requeue,
update and delete, each in memory first and journaled in order with everything else.

The database is read here (the rows a request names, a finished job about to come back) but
written only through the scheduler's store, so a node's report and a person's change can never
overtake each other on their way to the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import peewee as pw

from brender.server import movie
from brender.server.errors import InvalidValue
from brender.server.live import LiveChunk, LiveJob
from brender.server.models import Chunk, Frame, Job, tuples
from brender.server.scheduler import Scheduler
from brender.server.states import FRAME_MOVES, JOB_MOVES, ChunkStatus, FrameStatus, JobStatus
from brender.server.store import Statement

log = logging.getLogger(__name__)

REQUEUE_FRAME = Statement(
    "requeue frame",
    "UPDATE frame SET status = {p}, attempts = 0, client_id = NULL, error = '',"
    " output_file = '', render_time = NULL, finished_at = NULL, chunk_id = {p}"
    " WHERE job_id = {p} AND number = {p}",
)
CLEAR_BLOCKLIST = Statement("clear blocklist", "DELETE FROM blocklist WHERE job_id = {p}")


def added(s: Scheduler, job: Job, ranges: list[tuple[int, int, int]]) -> LiveJob:
    """A job just written by a submit, with its chunks (id, first, last): no read needed."""
    live = LiveJob.from_row(job)
    total = 0
    for chunk_id, first, last in ranges:
        live.enqueue(
            LiveChunk(
                id=chunk_id,
                job=live,
                frames=range(first, last + 1),
                frame_start=first,
                frame_end=last,
            )
        )
        total += last - first + 1
    live.counts[FrameStatus.QUEUED] = total
    s.totals.frames[FrameStatus.QUEUED] += total
    s.totals.jobs[live.status] += 1
    s.add(live)
    return live


def pause(s: Scheduler, job: Job) -> None:
    live = _live(s, job, JobStatus.PAUSED)
    if live is not None:
        s.job_to(live, JobStatus.PAUSED)


def resume(s: Scheduler, job: Job) -> None:
    live = _live(s, job, JobStatus.ACTIVE)
    if live is None or live.status != JobStatus.PAUSED.value:
        raise InvalidValue(f"job {job.id} is {live.status if live else job.status}, not paused")
    s.job_to(live, JobStatus.ACTIVE if live.started_at else JobStatus.QUEUED)
    s.settle(live)


def cancel(s: Scheduler, job: Job) -> list[tuple[int, int | None]]:
    """Cancel the job's unfinished work; answers the (chunk, client) pairs to kill on nodes."""
    live = _live(s, job, JobStatus.CANCELED)
    if live is None:
        return []
    s.job_to(live, JobStatus.CANCELED)
    if live.movie is not None and live.movie_status != movie.DONE:
        s.movie_to(live, movie.NOT_MADE)
    running = []
    for chunk in list(live.running.values()):
        running.append((chunk.id, chunk.client_id))
        left = chunk.unfinished()
        if chunk.client_id is not None:
            s.attempts_ended(
                chunk, chunk.client_id, None, left[0] if left else None, "canceled", "canceled"
            )
        s.frames_to(live, left, FrameStatus.RENDERING, FrameStatus.CANCELED, chunk.client_id)
        s.chunk_to(chunk, ChunkStatus.CANCELED)
    for chunk in live.queue:
        s.chunk_to(chunk, ChunkStatus.CANCELED)
    s.all_queued_to(live, FrameStatus.CANCELED, "")
    s.drop(live.id)
    return running


def _live(s: Scheduler, job: Job, new: JobStatus) -> LiveJob | None:
    """The job as the scheduler holds it; a finished one (not held) is checked against the
    move table, so e.g. pausing a completed job is refused as it should be."""
    live = s.jobs.get(job.id)
    if live is None:
        JOB_MOVES.check(job.status, new)
    return live


def requeue(s: Scheduler, job: Job, frames: list[tuple[int, int, str]]) -> int:
    """Frames (number, chunk id, status), all final, back to the queue with a fresh attempt
    budget, in their own chunks; the blocklist is cleared (a person asked for another try) and
    a finished job is queued again. Frames of a chunk a node is rendering are left alone."""
    live = s.jobs.get(job.id) or _revive(s, job)
    wanted = [
        (n, c, st)
        for n, c, st in frames
        if c not in live.running
        and FRAME_MOVES.allowed(st, FrameStatus.QUEUED)
        and st != FrameStatus.QUEUED.value
    ]
    if not wanted:
        return 0
    if live.movie is not None:  # made again once the frames are done again
        s.movie_to(live, movie.WAITING)
    by_chunk: dict[int, list[int]] = {}
    for number, chunk_id, status in wanted:
        s.count_move(live, status, FrameStatus.QUEUED, 1)
        live.attempts.pop(number, None)
        by_chunk.setdefault(chunk_id, []).append(number)
    # In order with the rest: a frame claimed again in the same batch is written after this.
    s.store.execute_many(
        REQUEUE_FRAME, [(FrameStatus.QUEUED.value, c, job.id, n) for n, c, _ in wanted]
    )
    queued = {chunk.id: chunk for chunk in live.queue}
    rows = {r.id: r for r in Chunk.select().where(Chunk.id.in_(list(by_chunk)))}
    for chunk_id, numbers in by_chunk.items():
        chunk = queued.get(chunk_id)
        if chunk is not None:  # more frames for a chunk that is queued already
            live.queue.remove(chunk)
            chunk.frames = sorted({*chunk.frames, *numbers})
            live.enqueue(chunk)
            continue
        row = rows[chunk_id]
        chunk = LiveChunk(
            id=chunk_id, job=live, frames=sorted(numbers), status=row.status,
            attempts=row.attempts, frame_start=row.frame_start, frame_end=row.frame_end,
        )  # fmt: skip
        s.chunk_to(
            chunk,
            ChunkStatus.QUEUED,
            client_id=None,
            failed_client=None,
            error="",
            log_tail="",
            finished_at=None,
        )
        live.enqueue(chunk)
    live.failures.clear()
    live.first_failure = None
    s.store.execute(CLEAR_BLOCKLIST, (job.id,))
    if live.status not in (JobStatus.QUEUED.value, JobStatus.ACTIVE.value, JobStatus.PAUSED.value):
        s.job_to(live, JobStatus.QUEUED, error="")
        s.add(live)
    return len(wanted)


def _revive(s: Scheduler, job: Job) -> LiveJob:
    """A finished job, read back (it has no running chunk: nothing races the read)."""
    live = LiveJob.from_row(job)
    for status, n in _frame_counts([job.id]):
        live.counts[status] = n
    return live


def deleted(s: Scheduler, job_ids: Iterable[int]) -> list[tuple[int, int | None]]:
    """Jobs about to be deleted leave the scheduler and the totals; answers the running
    (chunk, client) pairs to kill. Reports for their chunks are stale from now on."""
    ids = list(job_ids)
    running: list[tuple[int, int | None]] = []
    gone: set[int] = set()
    for job_id in ids:
        live = s.drop(job_id)
        if live is None:
            continue
        gone.add(job_id)
        running += [(c.id, c.client_id) for c in live.running.values()]
        s.totals.jobs[live.status] -= 1
        for status, n in live.counts.items():
            s.totals.frames[status] -= n
    final = [i for i in ids if i not in gone]
    if final:
        for status, n in _job_counts(final):
            s.totals.jobs[status] -= n
        for status, n in _frame_counts(final):
            s.totals.frames[status] -= n
    return running


def _job_counts(ids: list[int]) -> list[tuple[Any, ...]]:
    query = Job.select(Job.status, pw.fn.COUNT(Job.id)).where(Job.id.in_(ids)).group_by(Job.status)
    return tuples(query)


def _frame_counts(ids: list[int]) -> list[tuple[Any, ...]]:
    query = Frame.select(Frame.status, pw.fn.COUNT(Frame.id)).where(Frame.job.in_(ids))
    return tuples(query.group_by(Frame.status))


def reloaded(s: Scheduler, job_ids: list[int]) -> None:
    """Jobs taken out with `deleted` while their rows were rewritten come back, from the
    database (no chunk of theirs was running, so nothing raced the rewrite)."""
    from brender.server import journal

    back = {job.id: job for job in journal.load_jobs(job_ids)}
    for job in back.values():
        s.totals.jobs[job.status] += 1
        for status, n in job.counts.items():
            s.totals.frames[status] += n
        s.add(job)
    final = [i for i in job_ids if i not in back]
    if final:
        for status, n in _job_counts(final):
            s.totals.jobs[status] += n
        for status, n in _frame_counts(final):
            s.totals.frames[status] += n


def refreshed(s: Scheduler, job: Job, blocklist_cleared: bool = False) -> None:
    """A person changed the job's own fields (priority, file, …): follow them."""
    live = s.jobs.get(job.id)
    if live is not None:
        live.refresh(job)
        if blocklist_cleared:
            live.failures.clear()
        s.reprioritised()
