"""What a failed chunk costs: the frame that is blamed, the node's record, the blocklist.

The rules of issue 4: only the frame Blender was on uses up an attempt; a node that fails three
chunks of a job is blocklisted for it; a job that every enabled node is blocklisted for fails
at once instead of waiting forever.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from brender.server.live import BLOCK_ROW, LiveChunk, LiveJob, now
from brender.server.moves import Journal
from brender.server.services.blocklist import BLOCK_AFTER
from brender.server.states import ChunkStatus, FrameStatus

log = logging.getLogger(__name__)


class Faults(Journal):
    """The failure rules, shared by the scheduler's report handling."""

    def enabled_clients(self) -> Collection[int]:
        raise NotImplementedError  # the scheduler asks its NodeBook

    def _blame(
        self, job: LiveJob, chunk: LiveChunk, left: list[int], reason: str, tail: str
    ) -> None:
        """Blame the failure on the frame Blender was on (the first unfinished one: frames
        render in order). It goes back to the queue, or fails for good once it has used up the
        job's attempts; the frames after it were never tried and go back without using one."""
        if not left:
            return
        culprit, rest = left[0], left[1:]
        if job.attempts.get(culprit, 0) >= job.max_attempts:
            log.warning(
                "job %d frame %d failed for good after %d attempts: %s",
                job.id,
                culprit,
                job.attempts.get(culprit, 0),
                reason,
            )
            self.frames_to(
                job,
                (culprit,),
                FrameStatus.RENDERING,
                FrameStatus.FAILED,
                None,
                finished_at=now(),
                error=reason,
                log_tail=tail,
            )
            self._note_failure(job, culprit, reason)
            back = rest
        else:
            self.frames_to(
                job, (culprit,), FrameStatus.RENDERING, FrameStatus.QUEUED, None,
                error=reason, log_tail=tail,
            )  # fmt: skip
            back = left
        if rest:
            self.frames_to(job, rest, FrameStatus.RENDERING, FrameStatus.QUEUED, None, spent=-1)
        if back:
            self._requeue_chunk(chunk, back)

    def _requeue_chunk(self, chunk: LiveChunk, frames: list[int]) -> None:
        self.chunk_to(
            chunk, ChunkStatus.QUEUED, client_id=None, frames=frames, done={}, finished_at=None
        )
        chunk.job.enqueue(chunk)

    def _note_failure(self, job: LiveJob, number: int, reason: str) -> None:
        if job.first_failure is None or number < job.first_failure[0]:
            job.first_failure = (number, reason)

    def _record_failure(self, job: LiveJob, client_id: int, reason: str) -> None:
        failures = job.failures.get(client_id, (0, ""))[0] + 1
        job.failures[client_id] = (failures, reason)
        self.store.put(BLOCK_ROW, (job.id, client_id), (job.id, client_id, failures, reason, now()))
        if failures == BLOCK_AFTER:
            log.warning(
                "client %d blocklisted for job %d after %d failed chunks: %s",
                client_id,
                job.id,
                failures,
                reason,
            )

    def _fail_if_nobody_can_render(self, job: LiveJob) -> None:
        """When every enabled node is blocklisted for the job, its queued frames fail at once
        instead of waiting forever."""
        enabled = set(self.enabled_clients())
        if not enabled or not enabled <= job.blocked_ids(BLOCK_AFTER):
            return
        reason = "no enabled node can render this job (every one is blocklisted for it)"
        last = max(job.failures.values(), default=(0, ""))[1]
        if last:
            reason += f"; last error: {last}"
        for chunk in job.queue:
            self._note_failure(job, chunk.frames[0], reason)
            self.chunk_to(chunk, ChunkStatus.CANCELED, error=reason)
        self.all_queued_to(job, FrameStatus.FAILED, reason)
        log.warning("job %d: its queued frames failed: %s", job.id, reason)
