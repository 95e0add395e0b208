"""Nodes that keep failing one job stop getting its chunks (server/scheduler.py decides);
a person can clear a job's list."""

from __future__ import annotations

from brender.server.models import Blocklist

BLOCK_AFTER = 3
"""Failed chunks of one job after which a node is blocklisted for that job."""


def clear(job_id: int, client_ids: list[int] | None = None) -> int:
    query = Blocklist.delete().where(Blocklist.job == job_id)
    if client_ids is not None:
        query = query.where(Blocklist.client.in_(client_ids))
    return int(query.execute())
