"""`server status`'s totals, counted on their own thread: right, and never older than the
request (services/totals.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from farmdb import make_job, make_node

from brender.server.models import Job
from brender.server.services import changes, clients, jobs, totals, work
from brender.server.states import ClientStatus


@pytest.fixture
def counter(db: pw.Database) -> Iterator[totals.Counter]:
    c = totals.Counter()
    yield c
    c.close()


def group_by(db: pw.Database, table: str) -> dict[str, int]:
    """The counts straight from the file, on a connection of the test's own."""
    with sqlite3.connect(db.database) as con:
        return dict(con.execute(f"SELECT status, COUNT(*) FROM {table} GROUP BY status"))


def ask(counter: totals.Counter) -> totals.Totals:
    return asyncio.run(counter.totals())


def render(node: int, fail: bool = False) -> None:
    """One chunk on `node`: every frame saved, or its first frame failing."""
    order = work.claim_next(node)
    assert order is not None
    if not fail:
        for frame in order["frames"]:
            work.frame_done(node, order["chunk_id"], frame, f"/out/{frame}.png", 0.1)
    work.chunk_finished(node, order["chunk_id"], not fail, int(fail), "boom" if fail else "", [])


def test_totals_match_a_group_by_after_a_mixed_workload(
    db: pw.Database, tmp_path: Path, counter: totals.Counter
) -> None:
    n1, n2 = make_node("n1"), make_node("n2")
    done = make_job(tmp_path, shot="done", frame_end=6, chunk_size=3, priority=90)
    failing = make_job(tmp_path, shot="failing", frame_end=4, chunk_size=2, max_attempts=1)
    make_job(tmp_path, shot="paused", frame_end=9, paused=True)
    doomed = make_job(tmp_path, shot="doomed", frame_end=5)
    canceled = make_job(tmp_path, shot="canceled", frame_end=7, priority=0)
    render(n1)
    render(n2)  # `done` is completed
    render(n1, fail=True)  # a frame of `failing` fails for good
    started = work.claim_next(n2)  # `failing`'s second chunk, left rendering
    assert started is not None and started["job_id"] == failing.id
    jobs.cancel(Job.get_by_id(canceled.id))
    changes.requeue_job(Job.get_by_id(canceled.id), {"frames": [1, 2]})
    changes.delete(Job, {"id": doomed.id}, {})
    clients.set_status([n2], ClientStatus.DISABLED)
    assert Job.get_by_id(done.id).status == "completed"

    counted = ask(counter)
    assert counted.frames == group_by(db, "frame")
    assert counted.jobs == group_by(db, "job")
    assert set(counted.frames) == {"queued", "rendering", "done", "failed", "canceled"}
    assert (counted.clients, counted.enabled) == (2, 1)


def test_an_answer_includes_every_change_made_before_the_request(
    db: pw.Database, tmp_path: Path, counter: totals.Counter
) -> None:
    big = make_job(tmp_path, shot="big", frame_end=300_000)  # counting takes a while
    small = make_job(tmp_path, shot="small", frame_end=10)

    async def scenario() -> tuple[totals.Totals, list[totals.Totals]]:
        first = asyncio.ensure_future(counter.totals())
        upcoming: Any = counter._next  # the count `first` waits for
        while upcoming is None or not (upcoming.running() or upcoming.done()):
            await asyncio.sleep(0.001)
            upcoming = counter._next
        # A change while that count runs: a later request must not be given its answer.
        jobs.cancel(Job.get_by_id(small.id))
        later = await asyncio.gather(*(counter.totals() for _ in range(5)))
        return await first, later

    _, later = asyncio.run(scenario())
    expected = group_by(db, "frame")
    assert expected == {"queued": 300_000, "canceled": 10}
    assert all(t.frames == expected for t in later)
    assert all(t.jobs == {"queued": 1, "canceled": 1} for t in later)
    assert Job.get_by_id(big.id).status == "queued"
