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


EndgameRule = Callable[[int, float | None, list[tuple[float, float | None]], float], bool]


def server_endgame() -> EndgameRule | None:
    """The server's end-game rule (server/chunking.py `should_take_frame`), when it has one."""
    try:
        from brender.server.chunking import should_take_frame
    except ImportError:
        return None
    return should_take_frame


def makespan(
    costs: list[float], farm: Farm, policy: Policy, endgame: EndgameRule | None = None
) -> tuple[float, int]:
    """Seconds from the first order to the last chunk's end, and the number of chunks.

    `endgame`: a node asks the rule before each chunk, with its mean frame seconds and every
    other node's (free-at, mean frame seconds), as the server's scheduler would. A node told
    no stays idle and asks again whenever another node comes free (the scheduler's next pass)."""
    total_speed = sum(farm.speeds)
    mean_cost = sum(costs) / len(costs)
    nodes = range(len(farm.speeds))
    seconds = [mean_cost / speed for speed in farm.speeds]  # what a SpeedBook would say
    free_at = [0.0 for _ in nodes]  # when each node is (expected to be) free
    free = [(0.0, i) for i in nodes]  # (time the node is free, node): busy and new nodes
    heapq.heapify(free)
    idle: list[int] = []  # nodes the rule kept idle, in the order they were told no
    known: set[int] = set()
    end = 0.0
    given = chunks = 0
    while given < len(costs):
        if not free:
            raise RuntimeError("every node is idle with frames left: the end-game rule stalled")
        at, node = heapq.heappop(free)
        for asker in (node, *idle):
            if given >= len(costs):
                break
            if endgame is not None:
                others = [(free_at[j], seconds[j]) for j in nodes if j != asker]
                if not endgame(len(costs) - given, seconds[asker], others, at):
                    if asker not in idle:
                        idle.append(asker)
                    free_at[asker] = at
                    continue
            if asker in idle:
                idle.remove(asker)
            speed = farm.speeds[asker]
            claim = Claim(
                len(costs) - given,
                speed,
                total_speed,
                len(farm.speeds),
                asker in known,
                seconds[asker],
            )
            size = max(1, min(claim.left, policy(claim)))
            work = farm.startup + sum(costs[given : given + size])
            given += size
            chunks += 1
            nxt = at + (farm.dispatch if asker in known else 0.0) + work / speed
            known.add(asker)
            free_at[asker] = nxt
            end = max(end, nxt)
            heapq.heappush(free, (nxt, asker))
    return end, chunks


def lower_bound(costs: list[float], speeds: list[float]) -> float:
    """No schedule beats the total work over the total speed, nor the longest frame on the
    fastest node."""
    return max(sum(costs) / sum(speeds), max(costs) / max(speeds))
