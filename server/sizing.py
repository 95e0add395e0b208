"""How much of a job a node gets, asked by the farm's dispatch: the chunk's size and the
end-game rule, from what the farm knows of its nodes now (the rules are server/chunking.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from brender.server import chunking
from brender.server.live import LiveChunk, LiveJob
from brender.server.scheduler import Sizer


class NodeState(Protocol):
    """What sizing reads of a connected node (`farm.Node`)."""

    @property
    def chunk_id(self) -> int | None: ...
    @property
    def job_id(self) -> int | None: ...


def sizer(speeds: chunking.SpeedBook, client_id: int, nodes: int, warm: bool) -> Sizer:
    """Automatic chunk sizes for this node: its share of a job's frames."""

    def size(job: LiveJob, left: int) -> int:
        return chunking.frames_for(
            left,
            nodes,
            speeds.speed(job.id, client_id),
            speeds.frame_seconds(job.id, client_id),
            warm,
        )

    return size


def endgame(
    speeds: chunking.SpeedBook,
    job: LiveJob,
    client_id: int,
    nodes: Mapping[int, NodeState],
    working: Callable[[], Collection[int]],
    running: Mapping[int, LiveChunk],
    may_take: Callable[[int], bool] = lambda client_id: True,
) -> bool:
    """The end-game rule (chunking.should_take_frame): with fewer frames left than nodes on
    the job, a slow node leaves them to nodes that would finish them sooner, but only to nodes
    that `may_take` the chunk: one that just failed it, or is blocklisted, never takes the
    frames left to it.

    Asked only in the end game, and kept to one cheap pass over the working nodes: each one's
    finish time is estimated from what the farm knows, `may_take` (the costly question) is
    asked only of those that would finish sooner, and the pass stops once `left` of them are
    found; a job with no measured frame time yet (none, or only instant frames) needs no pass
    at all. A node of unknown speed counts at the average speed of the measured working nodes
    (should_take_frame averages over those that may take the chunk; the difference only
    matters while speeds are unknown, at a job's start)."""
    left = job.counts["queued"]
    if left >= len(nodes):
        return True  # at least a frame for every other node: no end game yet
    book = speeds.jobs.get(job.id)
    if not book:
        return True  # no node has a frame time on the job: nobody is known to be sooner
    able = working()
    if left > len(able) - (client_id in able):
        return True
    mine_timing = book.get(client_id)
    mine_seconds = mine_timing.mean if mine_timing is not None else None
    clock = time.time()
    job_id = job.id
    # (client, free at, seconds or None) of every other working node: one pass, no calls.
    others: list[tuple[int, float, float | None]] = []
    inverse_sum = 1 / mine_seconds if mine_seconds else 0.0
    measured = 1 if mine_seconds else 0
    for cid in able:
        if cid == client_id:
            continue
        timing = book.get(cid)
        seconds = timing.mean if timing is not None else None
        if seconds:
            inverse_sum += 1 / seconds
            measured += 1
        node = nodes[cid]
        if node.chunk_id is None:
            free_at = clock
        elif node.job_id == job_id and seconds is not None:  # when it is free is known
            chunk = running.get(node.chunk_id)
            left_there = len(chunk.frames) - len(chunk.done) if chunk is not None else 0
            free_at = clock + left_there * seconds
        else:
            continue  # busy elsewhere, or at an unknown pace: not counted on
        others.append((cid, free_at, seconds))
    if left > len(others) or not measured:
        return True
    average = measured / inverse_sum
    mine = clock + (mine_seconds or average)
    sooner = 0
    for cid, free_at, seconds in others:
        if max(free_at, clock) + (seconds or average) < mine and may_take(cid):
            sooner += 1
            if sooner >= left:
                return False  # `left` others would each finish a frame before this node
    return True
