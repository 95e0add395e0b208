"""The in-memory scheduler: claims, reports, faults and the journal, on a real SQLite file.

Every test checks memory and, once the writer has committed, the database rows too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import peewee as pw
import pytest
from schedkit import Kit, run

from brender.server import chunking, journal, sizing, verbs
from brender.server.errors import FarmError
from brender.server.models import Chunk, Frame, Job, tuples
from brender.server.scheduler import Scheduler


def test_submit_writes_chunks_and_frames(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_start=10, frame_end=17, chunk_size=3)
        chunks = list(Chunk.select().where(Chunk.job == job.id).order_by(Chunk.frame_start))
        assert [(c.frame_start, c.frame_end) for c in chunks] == [(10, 12), (13, 15), (16, 17)]
        assert sorted(c.id for c in chunks) == sorted(c.id for c in k.s.jobs[job.id].queue)
        assert k.statuses(job.id) == ["queued"] * 8
        assert job.output == str(tmp_path / "p" / "s" / "sh" / f"job-{job.id}" / "####")
        assert k.s.totals.frames["queued"] == 8 and k.s.totals.jobs["queued"] == 1

    run(db, tmp_path, body)


def test_claims_go_by_priority_then_age(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        low = await k.job(shot="a", priority=10)
        high = await k.job(shot="b", priority=90)
        older_same = await k.job(shot="c", priority=10)
        n = k.node("n1")
        got = [k.claim(n) for _ in range(6)]
        assert [o.job_id for o in got if o] == [
            high.id,
            high.id,
            low.id,
            low.id,
            older_same.id,
            older_same.id,
        ]
        assert got[0] is not None and got[0].frames == (1, 2, 3)
        await k.committed()
        assert k.job_row(high.id).status == "active"
        assert k.statuses(high.id) == ["rendering"] * 6

    run(db, tmp_path, body)


def test_a_paused_job_waits_until_resumed(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(paused=True)
        n = k.node("n1")
        assert k.claim(n) is None
        verbs.resume(k.s, job)
        assert k.claim(n) is not None
        verbs.pause(k.s, k.job_row(job.id))
        assert k.claim(n) is None

    run(db, tmp_path, body)


def test_reports_complete_the_job_and_duplicates_change_nothing(
    db: pw.Database, tmp_path: Path
) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_end=3)
        n, other = k.node("n1"), k.node("n2")
        order = k.claim(n)
        assert order is not None
        assert not k.saved(other, order, 1), "a frame of a chunk another node holds is refused"
        assert not k.saved(n, order, 9), "a frame outside the chunk is refused"
        assert all(k.saved(n, order, f) for f in order.frames)
        assert not k.saved(n, order, 1, "/elsewhere.png"), "a duplicate is ignored"
        assert k.ended(n, order.chunk_id) == job.id
        assert k.ended(n, order.chunk_id, ok=False, error="late") is None, "stale: ignored"
        await k.committed()
        row = k.job_row(job.id)
        assert row.status == "completed" and row.finished_at
        assert Frame.get(Frame.job == job.id, Frame.number == 1).output_file == "/out/0001.png"
        assert Chunk.get_by_id(order.chunk_id).status == "done"
        assert job.id not in k.s.jobs, "a finished job leaves memory"
        assert k.s.totals.frames["done"] == 3 and k.s.totals.jobs["completed"] == 1

    run(db, tmp_path, body)


def test_the_failing_frame_is_retried_then_fails(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_end=2, chunk_size=2, max_attempts=2)
        n1, n2 = k.node("n1"), k.node("n2")
        first = k.claim(n1)
        assert first is not None
        k.saved(n1, first, 1)
        k.ended(n1, first.chunk_id, ok=False, error="Error: boom", code=1)
        await k.committed()
        assert k.statuses(job.id) == ["done", "queued"]
        second = k.claim(n2)
        assert second is not None and second.frames == (2,)
        k.ended(n2, second.chunk_id, ok=False, code=-11)
        await k.committed()
        assert k.statuses(job.id) == ["done", "failed"]
        row = k.job_row(job.id)
        assert row.status == "failed" and row.error.startswith("frame 2:")
        assert Frame.get(Frame.job == job.id, Frame.number == 2).attempts == 2

    run(db, tmp_path, body)


def test_a_lost_node_gives_its_frames_back_without_using_attempts(
    db: pw.Database, tmp_path: Path
) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_end=3)
        n1, n2 = k.node("n1"), k.node("n2")
        order = k.claim(n1)
        assert order is not None
        k.saved(n1, order, 1)
        assert k.s.give_back(n1, "connection lost") == [order.chunk_id]
        again = k.claim(n2)
        assert again is not None and again.frames == (2, 3) and again.chunk_id == order.chunk_id
        assert k.ended(n1, order.chunk_id, ok=False, error="late") is None
        assert not k.saved(n1, order, 2), "the old node no longer holds it"
        await k.committed()
        assert k.statuses(job.id) == ["done", "rendering", "rendering"]
        assert Chunk.get_by_id(order.chunk_id).client_id == n2
        attempts = [
            f.attempts for f in Frame.select().where(Frame.job == job.id).order_by(Frame.number)
        ]
        assert attempts == [1, 1, 1]

    run(db, tmp_path, body)


def test_a_good_chunk_with_frames_not_taken_gives_them_back_unblamed(
    db: pw.Database, tmp_path: Path
) -> None:
    """A node whose Blender saved every frame, but the farm refused one (an uploaded frame
    sent while the chunk was away): that frame goes back to the queue without an attempt,
    and the node is not counted as failing."""

    async def body(k: Kit) -> None:
        job = await k.job(frame_end=3)
        n = k.node("n1")
        order = k.claim(n)
        assert order is not None
        k.saved(n, order, 1)
        k.saved(n, order, 3)
        assert k.ended(n, order.chunk_id) == job.id
        assert not k.s.jobs[job.id].failures
        again = k.claim(n)
        assert again is not None and again.frames == (2,) and again.chunk_id == order.chunk_id
        await k.committed()
        assert k.statuses(job.id) == ["done", "rendering", "done"]
        attempts = [
            f.attempts for f in Frame.select().where(Frame.job == job.id).order_by(Frame.number)
        ]
        assert attempts == [1, 1, 1]

    run(db, tmp_path, body)


def test_a_good_chunk_whose_report_was_refused_fails_that_frame(
    db: pw.Database, tmp_path: Path
) -> None:
    """A report naming the wrong file is the node's fault, not the farm's: the frame uses its
    attempt and is blamed, where an untaken frame (above) would be requeued for ever."""

    async def body(k: Kit) -> None:
        job = await k.job(frame_end=2, max_attempts=1)
        n = k.node("n1")
        order = k.claim(n)
        assert order is not None
        k.saved(n, order, 1)
        chunk = k.s.running[order.chunk_id]
        k.s.report_refused(chunk, "frame 2 names /elsewhere.png, not /out/0002.png")
        assert k.ended(n, order.chunk_id) == job.id
        assert k.claim(n) is None
        await k.committed()
        assert k.statuses(job.id) == ["done", "failed"]
        assert "a frame report was refused: frame 2 names /elsewhere.png" in k.job_row(job.id).error

    run(db, tmp_path, body)


def test_three_failed_chunks_blocklist_a_node(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_end=12, chunk_size=1, max_attempts=10)
        bad, good = k.node("bad"), k.node("good")
        for _ in range(3):
            order = k.claim(bad)
            assert order is not None and order.job_id == job.id
            k.ended(bad, order.chunk_id, ok=False, error="Error: boom", code=1)
        assert k.claim(bad) is None, "a blocklisted node gets no more of that job"
        assert k.claim(good) is not None
        await k.committed()
        page = verbs_progress(k, job.id)
        (entry,) = page["blocklist"]
        assert entry["client_id"] == bad and entry["blocked"] and entry["reason"] == "Error: boom"
        verbs.refreshed(k.s, k.job_row(job.id), blocklist_cleared=True)
        assert k.claim(bad) is not None

    run(db, tmp_path, body)


def verbs_progress(k: Kit, job_id: int) -> dict[str, object]:
    from brender.server.services import jobs, query

    page = jobs.with_progress(query.read(Job, {"id": job_id}), k.s.jobs.get)
    return page.rows[0]


def test_a_job_no_enabled_node_can_render_fails_at_once(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_end=12, chunk_size=1, max_attempts=10)
        only = k.node("only")
        for _ in range(3):
            order = k.claim(only)
            assert order is not None
            k.ended(only, order.chunk_id, ok=False, error="Error: Build without OpenImageDenoiser")
        await k.committed()
        row = k.job_row(job.id)
        assert row.status == "failed" and "OpenImageDenoiser" in row.error
        assert set(k.statuses(job.id)) == {"failed"}
        queued = Chunk.select().where(Chunk.job == job.id, Chunk.status == "queued").count()
        assert queued == 0, "no chunk is left queued for a failed job"

    run(db, tmp_path, body)


def test_a_failed_chunk_goes_to_another_node_first(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_end=2, chunk_size=2)
        n1, n2 = k.node("n1"), k.node("n2")
        first = k.claim(n1)
        assert first is not None
        k.ended(n1, first.chunk_id, ok=False, error="Segmentation fault", code=-11)
        assert k.claim(n1) is None, "n1 waits while n2 can retry the chunk"
        retry = k.claim(n2)
        assert retry is not None and retry.chunk_id == first.chunk_id
        k.ended(n2, retry.chunk_id, ok=False, error="Segmentation fault", code=-11)
        k.nodes.working.discard(n2)  # n2 goes offline: n1 is the only node left, it may retry
        again = k.claim(n1)
        assert again is not None and again.frames == (1, 2)
        await k.committed()
        attempts = {
            n: a
            for n, a in tuples(
                Frame.select(Frame.number, Frame.attempts).where(Frame.job == job.id)
            )
        }
        assert attempts == {1: 3, 2: 1}

    run(db, tmp_path, body)


def test_an_automatic_job_is_carved_as_nodes_claim_it(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_start=1, frame_end=100, chunk_size=0)
        n1, n2 = k.node("n1"), k.node("n2")
        first = k.claim(n1, lambda job, left: 10)
        second = k.claim(n2, lambda job, left: left // 2)
        assert first is not None and first.frames == tuple(range(1, 11))
        assert second is not None and second.frames == tuple(range(11, 56))
        await k.committed()
        rest = Chunk.get(Chunk.job == job.id, Chunk.status == "queued")
        assert (rest.frame_start, rest.frame_end) == (56, 100)
        assert Frame.select().where(Frame.chunk == rest.id).count() == 45
        assert Frame.select().where(Frame.chunk == first.chunk_id).count() == 10
        whole = k.claim(n1)  # without a sizer the rest goes in one
        assert whole is not None and whole.frames == tuple(range(56, 101))

    run(db, tmp_path, body)


def test_the_end_game_hook_keeps_a_node_off_the_last_frames(
    db: pw.Database, tmp_path: Path
) -> None:
    async def body(k: Kit) -> None:
        await k.job(frame_end=2, chunk_size=1)
        slow, fast = k.node("slow"), k.node("fast")
        k.s.endgame = lambda job, cid, may_take: cid != slow
        assert k.claim(slow) is None
        assert k.claim(fast) is not None

    run(db, tmp_path, body)


@dataclass
class _Held:
    chunk_id: int | None = None
    job_id: int | None = None


def test_the_end_game_leaves_no_frame_to_a_node_that_would_not_take_it(
    db: pw.Database, tmp_path: Path
) -> None:
    """Seen in CI: a chunk failed on the fast node, the slow node left the last frame to the
    fast one (the end game), and the fast one would not take a chunk it had just failed while
    another node could: the frame waited for ever. The real rule must not deadlock."""

    async def body(k: Kit) -> None:
        job = await k.job(frame_end=4, chunk_size=2)
        slow, fast = k.node("slow"), k.node("fast")
        speeds = chunking.SpeedBook()
        speeds.record(job.id, slow, 10.0)
        speeds.record(job.id, fast, 1.0)
        held = {slow: _Held(), fast: _Held()}
        k.s.endgame = lambda j, cid, may_take: sizing.endgame(
            speeds, j, cid, held, lambda: k.nodes.working, k.s.running, may_take
        )
        first = k.claim(fast)
        assert first is not None and first.frames == (1, 2)
        assert k.saved(fast, first, 1)
        k.ended(fast, first.chunk_id, ok=False, error="Blender was killed by SIGSEGV")
        second = k.claim(fast)  # the other chunk; frame 2 is queued, failed on `fast`
        assert second is not None and second.frames == (3, 4)
        held[fast] = _Held(second.chunk_id, job.id)
        for f in second.frames:
            assert k.saved(fast, second, f)
        k.ended(fast, second.chunk_id)
        held[fast] = _Held()
        assert k.s.jobs[job.id].counts["queued"] == 1
        # One frame left, two idle nodes: `fast` may not take it (it failed it and `slow`
        # can), so `slow` must, though `fast` is ten times faster.
        assert k.claim(fast) is None
        retry = k.claim(slow)
        assert retry is not None and retry.frames == (2,)

    run(db, tmp_path, body)


def test_illegal_verbs_are_refused(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        job = await k.job()
        verbs.cancel(k.s, job)
        await k.committed()
        with pytest.raises(FarmError) as info:
            verbs.pause(k.s, k.job_row(job.id))
        assert info.value.code == "conflict"
        assert set(k.statuses(job.id)) == {"canceled"}

    run(db, tmp_path, body)


def test_memory_is_rebuilt_from_the_database(db: pw.Database, tmp_path: Path) -> None:
    """A restart: a new scheduler on the same database holds the same work."""

    async def body(k: Kit) -> None:
        job = await k.job(frame_end=9, chunk_size=3)
        n1, n2 = k.node("n1"), k.node("n2")
        a = k.claim(n1)
        b = k.claim(n2)
        assert a is not None and b is not None
        k.saved(n1, a, 1)
        k.ended(n2, b.chunk_id, ok=False, error="boom")
        await k.committed()
        again = Scheduler(k.store, k.nodes, lambda kind, data: None)
        journal.load(again)
        live = again.jobs[job.id]
        assert set(again.running) == {a.chunk_id} and again.running[a.chunk_id].client_id == n1
        assert live.counts["done"] == 1 and live.counts["rendering"] == 2
        assert live.counts["queued"] == 6 and live.failures[n2][0] == 1
        assert sorted(tuple(c.frames) for c in live.queue) == [(4, 5, 6), (7, 8, 9)]
        assert again.totals.frames == k.s.totals.frames
        assert again.next_chunk_id == k.s.next_chunk_id
        # The node that held a chunk carries on with it; the other gets the next one.
        assert again.reclaim(n1, a.chunk_id)
        nxt = again.claim(n1)
        assert nxt is not None and nxt.frames in ((4, 5, 6), (7, 8, 9))

    run(db, tmp_path, body)


def test_totals_match_the_database_after_a_mixed_workload(db: pw.Database, tmp_path: Path) -> None:
    async def body(k: Kit) -> None:
        done = await k.job(shot="done", frame_end=4, chunk_size=2)
        canceled = await k.job(shot="cancel", frame_end=5, chunk_size=5)
        failing = await k.job(shot="fail", frame_end=3, chunk_size=3, max_attempts=1)
        n1, n2, n3 = k.node("n1"), k.node("n2"), k.node("n3")
        while (order := k.claim(n1)) is not None and order.job_id == done.id:
            for f in order.frames:
                k.saved(n1, order, f)
            k.ended(n1, order.chunk_id)
        assert order is not None
        k.s.give_back(n1, "lost")
        verbs.cancel(k.s, k.job_row(canceled.id))
        order = k.claim(n2)
        assert order is not None and order.job_id == failing.id
        k.ended(n2, order.chunk_id, ok=False, error="boom")
        verbs.requeue(k.s, k.job_row(canceled.id), [(1, _chunk_of(canceled.id), "canceled")])
        k.claim(n3)
        await k.committed()
        frames = dict(
            tuples(Frame.select(Frame.status, pw.fn.COUNT(Frame.id)).group_by(Frame.status))
        )
        jobs_ = dict(tuples(Job.select(Job.status, pw.fn.COUNT(Job.id)).group_by(Job.status)))
        assert {s: n for s, n in k.s.totals.frames.items() if n} == frames
        assert {s: n for s, n in k.s.totals.jobs.items() if n} == jobs_

    run(db, tmp_path, body)


def _chunk_of(job_id: int) -> int:
    return int(Frame.get(Frame.job == job_id, Frame.number == 1).chunk_id)
