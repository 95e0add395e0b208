"""A discrete-event model of one job on a farm: how a chunking policy turns into a makespan.

The makespan scenario runs it beside the real runs, with the dispatch delay those runs
measured: it checks the model against the server (fixed sizes, the server's own automatic
chunking) and estimates policies the server does not have.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """What a policy knows when a node asks for work."""

    left: int  # frames of the job not given out yet
    speed: float  # this node's speed (1.0: the reference)
    farm_speed: float  # the sum of every node's speed
    nodes: int
    known: bool  # the node has finished a chunk of this job, so its speed is measured
    frame_seconds: float  # this node's mean seconds per frame on the job


Policy = Callable[[Claim], int]


def fixed(size: int) -> Policy:
    """Chunks of `size` frames, cut at submit time."""
    return lambda claim: size


def shrinking(factor: float = 2.0) -> Policy:
    """Guided self-scheduling weighted by speed, speeds known from the start: a node gets its
    share of what is left, divided by `factor`."""
    return lambda c: math.ceil(c.left * c.speed / (c.farm_speed * factor))


def server_auto() -> Policy | None:
    """The server's automatic chunking (server/chunking.py `frames_for`), when it has one."""
    try:
        from brender.server.chunking import frames_for
    except ImportError:
        return None

    def policy(c: Claim) -> int:
        relative = c.speed * c.nodes / c.farm_speed
        if not c.known:
            return int(frames_for(c.left, c.nodes, None, None))
        return int(frames_for(c.left, c.nodes, relative, c.frame_seconds))

    return policy


@dataclass(frozen=True)
class Farm:
    speeds: list[float]
    startup: float  # seconds per chunk at speed 1 (Blender's start and file load)
    dispatch: float  # seconds from a node's chunk end to its next order


def makespan(
    costs: list[float], farm: Farm, policy: Policy, endgame: bool = False
) -> tuple[float, int]:
    """Seconds from the first order to the last chunk's end, and the number of chunks.

    `endgame`: once fewer frames are left than there are nodes, a node gets one only if it
    would finish it among the earliest of all nodes (counting when busy ones come free);
    otherwise it stays idle, and a faster node takes the frame later but ends it sooner."""
    total_speed = sum(farm.speeds)
    mean_cost = sum(costs) / len(costs)
    free = [(0.0, i) for i in range(len(farm.speeds))]  # (time the node is free, node)
    heapq.heapify(free)
    known: set[int] = set()
    nxt = end = 0.0
    given = chunks = 0
    while given < len(costs):
        at, node = heapq.heappop(free)
        speed = farm.speeds[node]
        left = len(costs) - given
        if endgame and left < len(farm.speeds) and free:
            cost = costs[given]
            mine = at + farm.dispatch + cost / speed
            sooner = sum(1 for t, j in free if t + farm.dispatch + cost / farm.speeds[j] < mine)
            if sooner >= left:
                continue  # this node is done with the job: faster ones will end it sooner
        claim = Claim(
            len(costs) - given,
            speed,
            total_speed,
            len(farm.speeds),
            node in known,
            mean_cost / speed,
        )
        size = max(1, min(claim.left, policy(claim)))
        work = farm.startup + sum(costs[given : given + size])
        given += size
        chunks += 1
        nxt = at + (farm.dispatch if node in known else 0.0) + work / speed
        known.add(node)
        end = max(end, nxt)
        heapq.heappush(free, (nxt, node))
    return end, chunks


def lower_bound(costs: list[float], speeds: list[float]) -> float:
    """No schedule beats the total work over the total speed, nor the longest frame on the
    fastest node."""
    return max(sum(costs) / sum(speeds), max(costs) / max(speeds))
