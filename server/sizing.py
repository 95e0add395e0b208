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
    frames left to it. (Asked only in the end game: it costs a look at every node.)"""
    left = job.counts["queued"]
    if left >= len(nodes):
        return True  # at least a frame for every other node: no end game yet
    # Only in the end game from here: each look below costs a pass over the nodes.
    able = working()
    if left > len(able) - (client_id in able):
        return True
    others_ids = [cid for cid in able if cid != client_id and may_take(cid)]
    if left > len(others_ids):
        return True
    clock = time.time()
    others = []
    for cid in others_ids:
        node = nodes[cid]
        seconds = speeds.own_seconds(job.id, cid)
        if node.chunk_id is None:
            others.append((clock, seconds))
        elif node.job_id == job.id and seconds is not None:  # when it is free is known
            chunk = running.get(node.chunk_id)
            left_there = len(chunk.unfinished()) if chunk is not None else 0
            others.append((clock + left_there * (seconds or 0.0), seconds))
    return chunking.should_take_frame(left, speeds.own_seconds(job.id, client_id), others, clock)
