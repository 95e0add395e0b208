"""Automatic chunking: how many frames a node gets when a job leaves `chunk_size` to the farm.

Blender pays its start-up and file load once per chunk, so a lone node should get everything
at once; on a busy farm, chunks shrink as the job nears its end and follow each node's measured
speed, so that every node finishes at about the same time (factoring, a guided self-scheduling
in the manner of Hummel et al.). The numbers live in memory: they are a hint, rebuilt from the
next frame reports after a restart.
"""

from __future__ import annotations

import math
from collections import OrderedDict
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

    def frame_seconds(self, job_id: int, client_id: int) -> float | None:
        book = self.jobs.get(job_id, {})
        mine = book.get(client_id) or book.get(None)
        return mine.mean if mine is not None else None


def frames_for(left: int, nodes: int, speed: float | None, frame_seconds: float | None) -> int:
    """Frames to give one node out of `left`, with `nodes` nodes able to work on the job."""
    if left <= 0:
        return 0
    cap = MAX_FRAMES
    if frame_seconds:
        cap = max(1, int(TARGET_SECONDS / frame_seconds))
    if nodes <= 1:
        return max(1, min(left, cap))
    share = speed if speed is not None else FIRST_SHARE
    return max(1, min(left, cap, math.ceil(left * share / (nodes * FACTOR))))
