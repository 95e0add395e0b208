"""Automatic chunking: how many frames a node gets when a job leaves `chunk_size` to the farm.

Blender pays its start-up and file load once per chunk, so a lone node should get everything
at once; on a busy farm, chunks shrink as the job nears its end and follow each node's measured
speed, so that every node finishes at about the same time (factoring, a guided self-scheduling
in the manner of Hummel et al.). At the very end, `should_take_frame` keeps a slow node off the
last frames when faster ones would finish them sooner. The numbers live in memory: they are a
hint, rebuilt from the next frame reports after a restart.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

FACTOR = 2.0
"""A node gets 1/FACTOR of its share of what is left, so later chunks can even out the end."""

FIRST_SHARE = 0.25
"""A node whose speed on a job is unknown gets this fraction of an average share: a small
first chunk measures it before it gets a big one."""

TARGET_SECONDS = 300.0
"""A chunk should take about this long at most (pause and cancel act between chunks)."""

MAX_FRAMES = 250
"""Frames in one chunk when nothing is known yet about how long a frame takes."""

WARM_TARGET_SECONDS = 30.0
"""A warm node's chunk (Blender stays loaded: a chunk costs no start-up) takes about this long
at most once its frame time is known: pause and a lost node cost less, at the price of a
message a chunk. (A first chunk of one frame, to measure, made `makespan` worse: 0.90 against
0.96 with warm simulated nodes, bench/RESULTS.md.)"""

JOBS_KEPT = 512


@dataclass
class Timing:
    seconds: float = 0.0
    frames: int = 0

    def add(self, seconds: float) -> None:
        self.seconds += seconds
        self.frames += 1

    @property
    def mean(self) -> float | None:
        return self.seconds / self.frames if self.frames and self.seconds > 0 else None


@dataclass
class SpeedBook:
    """Per job: how long frames take on each node, from the frames they report."""

    jobs: OrderedDict[int, dict[int | None, Timing]] = field(default_factory=OrderedDict)

    def record(self, job_id: int, client_id: int, seconds: float | None) -> None:
        if seconds is None or seconds <= 0:
            return
        book = self.jobs.setdefault(job_id, {})
        self.jobs.move_to_end(job_id)
        book.setdefault(None, Timing()).add(seconds)  # None: the whole farm on this job
        book.setdefault(client_id, Timing()).add(seconds)
        while len(self.jobs) > JOBS_KEPT:
            self.jobs.popitem(last=False)

    def speed(self, job_id: int, client_id: int) -> float | None:
        """This node's speed relative to the farm's average on this job (2.0: twice as fast)."""
        book = self.jobs.get(job_id, {})
        farm, mine = book.get(None), book.get(client_id)
        if farm is None or mine is None or farm.mean is None or mine.mean is None:
            return None
        return max(0.1, min(10.0, farm.mean / mine.mean))

    def own_seconds(self, job_id: int, client_id: int) -> float | None:
        """This node's own mean seconds per frame on the job (None until it has reported)."""
        mine = self.jobs.get(job_id, {}).get(client_id)
        return mine.mean if mine is not None else None

    def frame_seconds(self, job_id: int, client_id: int) -> float | None:
        book = self.jobs.get(job_id, {})
        mine = book.get(client_id) or book.get(None)
        return mine.mean if mine is not None else None


def frames_for(
    left: int, nodes: int, speed: float | None, frame_seconds: float | None, warm: bool = False
) -> int:
    """Frames to give one node out of `left`, with `nodes` nodes able to work on the job; a
    `warm` node pays no start-up per chunk, so its chunks are short (WARM_TARGET_SECONDS)."""
    if left <= 0:
        return 0
    target, cap = (WARM_TARGET_SECONDS if warm else TARGET_SECONDS), MAX_FRAMES
    if frame_seconds:
        cap = max(1, int(target / frame_seconds))
    if nodes <= 1:
        return max(1, min(left, cap))
    share = speed if speed is not None else FIRST_SHARE
    return max(1, min(left, cap, math.ceil(left * share / (nodes * FACTOR))))


def should_take_frame(
    left: int,
    frame_seconds: float | None,
    others: Sequence[tuple[float, float | None]],
    now: float,
) -> bool:
    """The end-game rule: should this node, idle at `now`, take one of the job's `left` frames?

    `frame_seconds` is this node's mean seconds per frame on the job (SpeedBook), `others` the
    (expected free-at time, mean frame seconds) of every other node able to work on it, idle
    ones free at `now` or earlier. While at least as many frames are left as there are nodes,
    yes. After that, no if `left` other nodes would each finish one more frame (from when they
    come free) before this node would: they take the last frames and end the job sooner than a
    slow node would, so it stays idle. A node with no measured time counts at the average
    speed of the measured ones; with none measured, the answer is yes.
    """
    if left <= 0:
        return False
    if left > len(others):
        return True
    known = [s for s in (frame_seconds, *(s for _, s in others)) if s is not None and s > 0]
    if not known:
        return True
    average = len(known) / sum(1 / s for s in known)  # the seconds of an average-speed node

    def seconds(s: float | None) -> float:
        return s if s is not None and s > 0 else average

    mine = now + seconds(frame_seconds)
    sooner = sum(1 for free_at, s in others if max(free_at, now) + seconds(s) < mine)
    return sooner < left
