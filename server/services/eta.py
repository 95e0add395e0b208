"""When a job should end: its frames left, shared among the nodes on it by their measured pace.

A node's pace on a job is the wall clock its done frames took, chunk by chunk (from the
chunk's start to its last done frame, over the frames done: Blender's start and file load
included, so it is what the node really delivers). A node on the job that has not finished a
frame of it yet counts at the average pace of those that have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import peewee as pw

from brender.server.models import Frame, tuples
from brender.server.states import FrameStatus


@dataclass
class Pace:
    """Seconds spent and frames done by one node on one job."""

    seconds: float = 0.0
    frames: int = 0

    @property
    def per_frame(self) -> float | None:
        return self.seconds / self.frames if self.frames and self.seconds > 0 else None


def eta_seconds(
    left: int, paces: Mapping[int, float | None], working: Sequence[int]
) -> float | None:
    """Seconds until `left` frames are done by the `working` nodes, each at its own seconds
    per frame (`paces`, by client id); None while nobody works on it or nothing is measured."""
    if left <= 0:
        return 0.0
    known = {cid: s for cid, s in paces.items() if s is not None and s > 0}
    if not working or not known:
        return None
    average = len(known) / sum(1 / s for s in known.values())  # an average node's seconds
    rate = sum(1 / known.get(cid, average) for cid in working)  # frames a second
    return round(left / rate, 1)


def paces(job_ids: Sequence[int]) -> dict[int, dict[int, Pace]]:
    """Each job's pace per node, from its done frames, in one grouped query."""
    out: dict[int, dict[int, Pace]] = {j: {} for j in job_ids}
    if not job_ids:
        return out
    query = (
        Frame.select(
            Frame.job,
            Frame.client,
            pw.fn.MIN(Frame.started_at),
            pw.fn.MAX(Frame.finished_at),
            pw.fn.COUNT(Frame.id),
        )
        .where(
            Frame.job.in_(list(job_ids)),
            Frame.status == FrameStatus.DONE.value,
            Frame.client.is_null(False),
            Frame.started_at.is_null(False),
            Frame.finished_at.is_null(False),
        )
        .group_by(Frame.job, Frame.client, Frame.chunk)
    )
    for job_id, client_id, start, end, n in tuples(query):
        pace = out[job_id].setdefault(client_id, Pace())
        pace.seconds += max(0.0, end - start)
        pace.frames += n
    return out
