"""The chunk life cycle and the bookkeeping rules, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import peewee as pw
import pytest
from farmdb import make_job, make_node

from brender.server.errors import FarmError
from brender.server.models import Chunk, Frame, Job
from brender.server.services import blocklist, clients, jobs, query, work


def statuses(job_id: int) -> list[str]:
    return [f.status for f in Frame.select().where(Frame.job == job_id).order_by(Frame.number)]


def test_submit_creates_chunks_and_frames(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, frame_start=10, frame_end=17, chunk_size=3)
    chunks = list(Chunk.select().where(Chunk.job == job.id).order_by(Chunk.frame_start))
    assert [(c.frame_start, c.frame_end) for c in chunks] == [(10, 12), (13, 15), (16, 17)]
    assert [f.number for f in Frame.select().order_by(Frame.number)] == list(range(10, 18))
    assert job.output == str(tmp_path / "p" / "s" / "sh" / f"job-{job.id}" / "####")


def test_claim_order_priority_then_age(db: pw.Database, tmp_path: Path) -> None:
    low = make_job(tmp_path, shot="a", priority=10)
    high = make_job(tmp_path, shot="b", priority=90)
    n = make_node("n1")
    order = work.claim_next(n)
    assert order is not None and order["job_id"] == high.id and order["frames"] == [1, 2, 3]
    assert work.claim_next(n)["job_id"] == high.id  # type: ignore[index]
    assert work.claim_next(n)["job_id"] == low.id  # type: ignore[index]
    assert Job.get_by_id(high.id).status == "active"


def test_paused_job_is_not_dispatched(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, paused=True)
    assert work.claim_next(make_node("n1")) is None
    jobs.resume(Job.get_by_id(job.id))
    assert work.claim_next(make_node("n1")) is not None


def test_frames_and_chunk_done_complete_the_job(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, frame_end=3)
    n = make_node("n1")
    order = work.claim_next(n)
    assert order is not None
    for f in order["frames"]:
        assert work.frame_done(n, order["chunk_id"], f, f"/out/{f:04d}.png", 0.2)
    # A duplicate report changes nothing.
    assert not work.frame_done(n, order["chunk_id"], 1, "/elsewhere.png", 9.0)
    assert work.chunk_finished(n, order["chunk_id"], True, 0, "", []) == job.id
    assert Job.get_by_id(job.id).status == "completed"
    assert Frame.get(Frame.number == 1).output_file == "/out/0001.png"
    # A late duplicate of the chunk's end is ignored too.
    assert work.chunk_finished(n, order["chunk_id"], False, 1, "boom", []) is None
    assert Job.get_by_id(job.id).status == "completed"


def test_failed_frames_retry_then_fail(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, frame_end=2, chunk_size=2, max_attempts=2)
    n1, n2 = make_node("n1"), make_node("n2")
    first = work.claim_next(n1)
    assert first is not None
    work.frame_done(n1, first["chunk_id"], 1, "/out/0001.png", 0.1)
    work.chunk_finished(n1, first["chunk_id"], False, 1, "Error: boom", ["line"])
    assert statuses(job.id) == ["done", "queued"]
    second = work.claim_next(n2)
    assert second is not None and second["frames"] == [2]
    work.chunk_finished(n2, second["chunk_id"], False, -11, "", ["segfault"])
    assert statuses(job.id) == ["done", "failed"]
    final = Job.get_by_id(job.id)
    assert final.status == "failed" and "frame 2" in final.error
    assert Frame.get(Frame.number == 2).attempts == 2


def test_lost_node_gives_back_unfinished_frames(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, frame_end=3)
    n1, n2 = make_node("n1"), make_node("n2")
    order = work.claim_next(n1)
    assert order is not None
    work.frame_done(n1, order["chunk_id"], 1, "/out/0001.png", 0.1)
    assert work.requeue_client(n1, "connection lost") == [order["chunk_id"]]
    assert statuses(job.id) == ["done", "queued", "queued"]
    again = work.claim_next(n2)
    assert again is not None and again["frames"] == [2, 3]
    # The first node's stale end-of-chunk must not touch the chunk now on n2.
    assert work.chunk_finished(n1, order["chunk_id"], False, 1, "late", []) is None
    assert Chunk.get_by_id(order["chunk_id"]).client_id == n2


def test_state_machine_refuses_illegal_moves(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path)
    jobs.cancel(job)
    with pytest.raises(FarmError) as info:
        jobs.pause(Job.get_by_id(job.id))
    assert info.value.code == "conflict"
    assert set(statuses(job.id)) == {"canceled"}


def test_reconnecting_node_is_the_same_client(db: pw.Database) -> None:
    a = clients.register({"node_id": "abc", "name": "box", "mac_address": "52:54:00:00:00:01"})
    clients.set_status([a.id], clients.ClientStatus.DISABLED)
    b = clients.register({"node_id": "abc", "name": "box", "cpus": 8})
    assert a.id == b.id and b.status == "disabled" and b.cpus == 8
    # A wiped work dir (new node id) on the same machine is matched by MAC address and name.
    c = clients.register({"node_id": "new", "name": "box", "mac_address": "52:54:00:00:00:01"})
    assert c.id == a.id and c.node_id == "new"


def test_node_blocklisted_after_three_failed_chunks(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, frame_end=12, chunk_size=1, max_attempts=10)
    bad, good = make_node("bad"), make_node("good")
    for _ in range(3):
        order = work.claim_next(bad)
        assert order is not None and order["job_id"] == job.id
        work.chunk_finished(bad, order["chunk_id"], False, 1, "Error: boom", [])
    assert work.claim_next(bad) is None, "a blocklisted node gets no more of that job"
    assert work.claim_next(good) is not None
    page = jobs.with_progress(query.read(Job, {"id": job.id}))
    (entry,) = page.rows[0]["blocklist"]
    assert entry["client_id"] == bad and entry["blocked"] and entry["reason"] == "Error: boom"
    blocklist.clear(job.id)
    assert work.claim_next(bad) is not None


def test_job_fails_when_no_enabled_node_can_take_it(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, frame_end=12, chunk_size=1, max_attempts=10)
    only = make_node("only")
    for _ in range(3):
        order = work.claim_next(only)
        assert order is not None
        work.chunk_finished(
            only, order["chunk_id"], False, 1, "Error: Build without OpenImageDenoiser", []
        )
    final = Job.get_by_id(job.id)
    assert final.status == "failed"
    assert "blocklisted" in final.error or "OpenImageDenoiser" in final.error
    assert set(statuses(job.id)) == {"failed"}


def test_a_failed_chunk_goes_to_another_node_first(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, frame_end=2, chunk_size=2)
    n1, n2 = make_node("n1"), make_node("n2")
    first = work.claim_next(n1)
    assert first is not None
    work.chunk_finished(n1, first["chunk_id"], False, -11, "Segmentation fault", [])
    assert work.claim_next(n1) is None, "n1 waits while n2 can retry the chunk"
    retry = work.claim_next(n2)
    assert retry is not None and retry["chunk_id"] == first["chunk_id"]
    work.chunk_finished(n2, retry["chunk_id"], False, -11, "Segmentation fault", [])
    # With n2 gone, n1 is the only node left: it may retry.
    clients.set_offline(n2)
    again = work.claim_next(n1)
    assert again is not None and again["frames"] == [1, 2]
    assert Frame.get(Frame.job == job.id, Frame.number == 1).attempts == 3
    assert Frame.get(Frame.job == job.id, Frame.number == 2).attempts == 1


def test_a_queued_chunk_finished_by_late_reports_is_not_sent(
    db: pw.Database, tmp_path: Path
) -> None:
    job = make_job(tmp_path, frame_end=3, chunk_size=3)
    n1, n2 = make_node("n1"), make_node("n2")
    order = work.claim_next(n1)
    assert order is not None
    work.requeue_client(n1, "connection lost")
    for f in order["frames"]:  # the lost node's reports arrive after all
        work.frame_done(n1, order["chunk_id"], f, f"/out/{f:04d}.png", 0.2)
    assert work.claim_next(n2) is None
    assert Chunk.get_by_id(order["chunk_id"]).status == "done"
    assert Job.get_by_id(job.id).status == "completed"
