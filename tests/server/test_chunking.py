"""Automatic chunking: the sizes, and jobs carved up as nodes claim them."""

from __future__ import annotations

from pathlib import Path

import peewee as pw
from farmdb import make_job, make_node

from brender.server import chunking
from brender.server.models import Chunk, Frame
from brender.server.services import work


def test_a_lone_node_gets_everything_in_one_chunk() -> None:
    assert chunking.frames_for(24, 1, None, None) == 24
    # ... but no chunk longer than about TARGET_SECONDS once frame times are known.
    assert chunking.frames_for(10_000, 1, 1.0, 2.0) == int(chunking.TARGET_SECONDS / 2.0)


def test_shares_shrink_and_follow_speed() -> None:
    unknown = chunking.frames_for(2000, 50, None, None)
    fast = chunking.frames_for(2000, 50, 2.0, 0.5)
    slow = chunking.frames_for(2000, 50, 0.5, 2.0)
    assert unknown < slow < fast
    assert chunking.frames_for(100, 50, 1.0, 1.0) < chunking.frames_for(1000, 50, 1.0, 1.0)
    assert chunking.frames_for(3, 50, 1.0, 1.0) == 1


def test_speed_book() -> None:
    book = chunking.SpeedBook()
    assert book.speed(1, 7) is None
    for _ in range(4):
        book.record(1, 7, 1.0)
        book.record(1, 8, 3.0)
    assert book.speed(1, 7) == 2.0 and book.speed(1, 8) == 2.0 / 3.0
    assert book.frame_seconds(1, 8) == 3.0


def test_auto_job_is_carved_as_nodes_claim_it(db: pw.Database, tmp_path: Path) -> None:
    job = make_job(tmp_path, frame_start=1, frame_end=100, chunk_size=0)
    assert Chunk.select().where(Chunk.job == job.id).count() == 1
    n1, n2 = make_node("n1"), make_node("n2")
    first = work.claim_next(n1, lambda job, left: 10)
    second = work.claim_next(n2, lambda job, left: left // 2)
    assert first is not None and first["frames"] == list(range(1, 11))
    assert second is not None and second["frames"] == list(range(11, 56))
    rest = Chunk.get(Chunk.job == job.id, Chunk.status == "queued")
    assert (rest.frame_start, rest.frame_end) == (56, 100)
    assert Frame.select().where(Frame.chunk == rest.id).count() == 45
    # Without a sizer (or for a single frame) the whole chunk goes.
    whole = work.claim_next(n1)
    assert whole is not None and whole["frames"] == list(range(56, 101))
