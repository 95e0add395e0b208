"""A job's queue of chunks (server/live.py `ChunkQueue`): first frame first, then id, through
pushes, takes from anywhere and a carved front."""

from __future__ import annotations

from brender.server.live import ChunkQueue, LiveChunk, LiveJob


def _job() -> LiveJob:
    return LiveJob(
        id=1, priority=50, status="queued", chunk_size=1, blend_file="/x.blend", output="/o/#",
        format="PNG", timeout=60, max_attempts=3,
    )  # fmt: skip


def test_the_queue_gives_the_lowest_first_frame_then_the_lowest_id() -> None:
    job = _job()
    chunks = [LiveChunk(id=i, job=job, frames=f) for i, f in
              [(5, range(9, 12)), (2, range(1, 3)), (7, range(4, 5)), (3, range(4, 6))]]  # fmt: skip
    queue = ChunkQueue(chunks[:2])
    for chunk in chunks[2:]:
        queue.push(chunk)
    assert [c.id for c in queue.smallest(4)] == [2, 3, 7, 5]
    assert queue.first().id == 2
    queue.take(chunks[3])  # not the first: found and taken all the same
    queue.take(queue.first())
    assert [c.id for c in queue.smallest(4)] == [7, 5]
    assert len(queue) == 2 and sorted(c.id for c in queue) == [5, 7]


def test_a_carved_front_keeps_its_place_by_its_new_first_frame() -> None:
    job = _job()
    big, late = LiveChunk(id=1, job=job, frames=range(1, 101)), LiveChunk(3, job, range(50, 51))
    queue = ChunkQueue([big, late])
    big.frames = big.frames[60:]  # frames 61-100 are left after a carve
    queue.moved(big)
    assert [c.id for c in queue.smallest(2)] == [3, 1]
    late.frames = range(70, 71)  # not at the front: the whole heap is re-keyed
    queue.moved(late)
    assert [c.id for c in queue.smallest(2)] == [1, 3]
    queue.clear()
    assert not queue
