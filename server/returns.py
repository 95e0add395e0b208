"""Nodes going away and coming back: a node's running chunks go back to the queue (its saved
frames stay done), a returning node reclaims the chunk its `hello` names, and after a restart
the chunks of nodes that never returned are found. Part of the scheduler (server/scheduler.py).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from brender.server.finish import Finishing
from brender.server.live import LiveJob
from brender.server.states import ChunkStatus, FrameStatus

log = logging.getLogger(__name__)


class Returns(Finishing):
    """How the queue follows nodes that leave and return (the scheduler is one of these)."""

    order: list[LiveJob]
    """Every live job, highest priority then oldest first (the scheduler's)."""

    def give_back(self, client_id: int, reason: str, chunk_id: int | None = None) -> list[int]:
        """The chunks running on this node (all, or just `chunk_id`) go back to the queue;
        their saved frames stay done, the rest go back without using an attempt."""
        ids = sorted(self.by_client.get(client_id, ()))
        if chunk_id is not None:
            ids = [i for i in ids if i == chunk_id]
        for cid in ids:
            chunk = self.running[cid]
            job = chunk.job
            left = chunk.unfinished()
            self._untrack(chunk)
            del job.running[cid]
            culprit = left[0] if left else None
            self.attempts_ended(chunk, client_id, None, culprit, "interrupted", error=reason)
            if left:
                self.frames_to(job, left, FrameStatus.RENDERING, FrameStatus.QUEUED, None, spent=-1)
                self.chunk_to(
                    chunk, ChunkStatus.QUEUED, client_id=None, error=reason, frames=left, done={}
                )
                job.enqueue(chunk)
            else:
                self.chunk_to(chunk, ChunkStatus.DONE, error="")
            log.warning(
                "job %d chunk %d requeued from client %d: %s", job.id, cid, client_id, reason
            )
            self.settle(job)
        return ids

    def reclaim(self, client_id: int, chunk_id: int) -> bool:
        """A returning node still holds this chunk: keep it there if nobody else has taken it.
        A chunk of an uploaded job kept there gets a fresh upload key when it has none (it was
        loaded after a restart, or requeued), which the node's `welcome` carries."""
        chunk = self.running.get(chunk_id)
        if chunk is not None:
            kept = chunk.client_id == client_id and chunk.job.dispatchable
            if kept and chunk.upload_key is None:
                chunk.upload_key = chunk.job.new_upload_key()
            return kept
        for job in self.order:
            if not job.dispatchable:
                continue
            for queued in job.queue:
                if queued.id == chunk_id:
                    self.start_run(queued, client_id, spent=0)
                    log.info(
                        "job %d chunk %d reclaimed by returning client %d",
                        job.id,
                        chunk_id,
                        client_id,
                    )
                    return True
        return False

    def orphans(self, online: Collection[int]) -> list[int]:
        """Clients holding running chunks that are not connected (after a restart)."""
        return sorted(cid for cid in self.by_client if cid not in online)
