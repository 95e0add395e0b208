"""Nodes that keep failing one job stop getting its chunks; a job nobody can render fails."""

from __future__ import annotations

import logging
from typing import Any

from brender.server.models import Blocklist, Client, Frame, Job, now
from brender.server.states import ClientStatus, FrameStatus

log = logging.getLogger(__name__)

BLOCK_AFTER = 3
"""Failed chunks of one job after which a node is blocklisted for that job."""


def record_failure(job: Job, client_id: int, reason: str) -> bool:
    """Count a failed chunk against the node; answers True when this blocklists it."""
    row, _ = Blocklist.get_or_create(job=job.id, client=client_id)
    row.failures += 1
    row.reason = reason
    row.save()
    if row.failures == BLOCK_AFTER:
        log.warning(
            "client %d blocklisted for job %d after %d failed chunks: %s",
            client_id,
            job.id,
            row.failures,
            reason,
        )
        return True
    return False


def blocked_jobs(client_id: int) -> Any:
    """The jobs this node is blocklisted for, as a subquery."""
    return Blocklist.select(Blocklist.job).where(
        Blocklist.client == client_id, Blocklist.failures >= BLOCK_AFTER
    )


def blocked_ids(job_id: int) -> set[int]:
    rows = Blocklist.select(Blocklist.client).where(
        Blocklist.job == job_id, Blocklist.failures >= BLOCK_AFTER
    )
    return {r.client_id for r in rows}


def fail_if_nobody_can_render(job: Job) -> bool:
    """When every enabled node is blocklisted for the job, its queued frames fail at once
    instead of waiting forever; answers True when that happened."""
    enabled = {
        c.id for c in Client.select(Client.id).where(Client.status == ClientStatus.ENABLED.value)
    }
    if not enabled or not enabled <= blocked_ids(job.id):
        return False
    last = Blocklist.select().where(Blocklist.job == job.id).order_by(Blocklist.id.desc()).first()
    reason = "no enabled node can render this job (every one is blocklisted for it)"
    if last is not None and last.reason:
        reason += f"; last error: {last.reason}"
    failed = (
        Frame.update(status=FrameStatus.FAILED.value, error=reason, finished_at=now())
        .where(Frame.job == job.id, Frame.status == FrameStatus.QUEUED.value)
        .execute()
    )
    log.warning("job %d: %d frames failed: %s", job.id, failed, reason)
    return True


def clear(job_id: int, client_ids: list[int] | None = None) -> int:
    query = Blocklist.delete().where(Blocklist.job == job_id)
    if client_ids is not None:
        query = query.where(Blocklist.client.in_(client_ids))
    return int(query.execute())
