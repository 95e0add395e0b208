"""The dispatch queue, in memory: which chunk goes to which node, and what each report changes.

The scheduler holds every unfinished job (`LiveJob`) with its queued and running chunks; a claim
answers from memory, and each change is journaled through the `Store` in the same tick. The
database is read only at start (`journal.load`) and after a person changes jobs through the API
(`reload`). Every status change goes through `_job_to`, `_chunk_to` or `_frames_to`, which ask
the move tables in server/states.py first.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from typing import Protocol

from brender import messages
from brender.blendfile import Version
from brender.server.live import AUTO, CHUNK_ROW, LiveChunk, LiveJob, now
from brender.server.moves import Emit
from brender.server.returns import Returns
from brender.server.services.blocklist import BLOCK_AFTER
from brender.server.states import (
    ChunkStatus,
    FrameStatus,
    JobStatus,
)
from brender.server.store import Statement, Store

log = logging.getLogger(__name__)


_QUEUED = JobStatus.QUEUED.value

JOB_FILE_VERSION = Statement("job file version", "UPDATE job SET file_version = {p} WHERE id = {p}")

MAX_ORDER_FRAMES = 10_000
"""The most frames one automatic chunk gets (about 60 KB of frame numbers in its order)."""

Sizer = Callable[[LiveJob, int], int]
"""For a job with automatic chunking: how many of `left` queued frames this node should get."""


class NodeBook(Protocol):
    """What the scheduler needs to know of the nodes (the Farm owns them)."""

    def enabled_ids(self) -> Collection[int]:
        """Every enabled client, online or not."""
        ...

    def working_ids(self) -> Collection[int]:
        """Clients online and enabled."""
        ...

    def blender_for(self, client_id: int, job: LiveJob) -> str | None:
        """The version of this node's Blender that renders the job ("" when the node named
        none), or None when it has none that may."""
        ...


class Scheduler(Returns):
    """The dispatch queue: claims, reports, nodes leaving and returning."""

    def __init__(self, store: Store, nodes: NodeBook, emit: Emit) -> None:
        super().__init__(store, emit)
        self.nodes = nodes
        self.jobs: dict[int, LiveJob] = {}
        self.order: list[LiveJob] = []  # live jobs, highest priority then oldest first
        self.endgame: Callable[[LiveJob, int, Callable[[int], bool]], bool] | None = None
        """Set by the farm: False when this node should leave a job's last frames to faster ones.
        Its third argument says whether another node may take the chunk at all (`may_take`):
        a node must not leave frames to one that would not take them."""

    def enabled_clients(self) -> Collection[int]:
        return self.nodes.enabled_ids()

    # -- jobs coming and going -----------------------------------------------------------------

    def add(self, job: LiveJob) -> None:
        self.jobs[job.id] = job
        self._sort()
        for chunk in job.running.values():
            self._track(chunk)

    def drop(self, job_id: int) -> LiveJob | None:
        job = self.jobs.pop(job_id, None)
        if job is not None:
            for chunk in job.running.values():
                self._untrack(chunk)
            self.order = [j for j in self.order if j.id != job_id]
        return job

    def _sort(self) -> None:
        self.order = sorted(self.jobs.values(), key=LiveJob.sort_key)

    def reprioritised(self) -> None:
        self._sort()

    # -- claims --------------------------------------------------------------------------------

    def has_work(self) -> bool:
        return any(job.queue and job.dispatchable for job in self.order)

    def may_take(self, client_id: int, job: LiveJob, chunk: LiveChunk) -> bool:
        """Whether this node may render this chunk: the one place such rules go (Blender
        versions, tags and GPUs later). A node blocklisted for the job never may; a chunk that
        just failed on this node waits for another working, unblocked node, if there is one."""
        if job.blocked(client_id, BLOCK_AFTER) or self.nodes.blender_for(client_id, job) is None:
            return False
        if chunk.failed_client != client_id:
            return True
        blocked = job.blocked_ids(BLOCK_AFTER)
        return not any(c != client_id and c not in blocked for c in self.nodes.working_ids())

    def claim(self, client_id: int, sizer: Sizer | None = None) -> messages.Render | None:
        """The best queued chunk this node may take, sent to it (in memory and journaled)."""
        for job in self.order:
            if not job.queue or not job.dispatchable or job.blocked(client_id, BLOCK_AFTER):
                continue
            blender = self.nodes.blender_for(client_id, job)
            if blender is None:
                continue  # no Blender of this node may open the file (may_take says so too)
            chunk = self._pick(client_id, job)
            if chunk is None:
                continue
            may_take = functools.partial(self.may_take, job=job, chunk=chunk)
            if self.endgame is not None and not self.endgame(job, client_id, may_take):
                continue
            return self._send(client_id, job, chunk, sizer, blender)
        return None

    def _pick(self, client_id: int, job: LiveJob) -> LiveChunk | None:
        first = job.queue.first()
        if self.may_take(client_id, job, first):
            return first
        for chunk in job.queue.smallest(8)[1:]:
            if self.may_take(client_id, job, chunk):
                return chunk
        return None

    def _send(
        self, client_id: int, job: LiveJob, chunk: LiveChunk, sizer: Sizer | None, blender: str
    ) -> messages.Render:
        frames = chunk.frames
        if job.chunk_size == AUTO and len(frames) > 1:
            # An order lists its frames: keep it far under the 1 MiB line a node reads.
            wanted = min(sizer(job, len(frames)) if sizer else len(frames), MAX_ORDER_FRAMES)
            if wanted < len(frames):
                chunk = self._carve(job, chunk, wanted)
                frames = chunk.frames
        stamp = now()
        sent = self.start_run(
            chunk,
            client_id,
            spent=1,
            started_at=stamp,
            attempts=chunk.attempts + 1,
            exit_code=None,
            ordered=(job.output, job.format, job.blend_file),
        )
        if job.status == _QUEUED:
            self.job_to(job, JobStatus.ACTIVE)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "job %d chunk %d (frames %s) -> client %d", job.id, chunk.id, _span(sent), client_id
            )
        return messages.Render(
            chunk_id=chunk.id,
            job_id=job.id,
            blend_file=job.blend_file,
            # An uploaded job's node renders into a folder of its own and sends each frame
            # back: it gets the file-name pattern only.
            output=job.output.rsplit("/", 1)[-1] if job.manifest else job.output,
            format=job.format,
            frames=sent,
            timeout=float(job.timeout),
            blender=blender or None,
            autoexec=job.autoexec,
            manifest=job.manifest or None,
            upload_key=chunk.upload_key,
        )

    def _carve(self, job: LiveJob, chunk: LiveChunk, count: int) -> LiveChunk:
        """Split `count` frames off the front of a queued chunk into a chunk of their own."""
        (chunk_id,) = self.new_chunk_ids(1)
        head_frames, chunk.frames = chunk.frames[:count], chunk.frames[count:]
        head = LiveChunk(
            id=chunk_id,
            job=job,
            frames=head_frames,
            frame_start=head_frames[0],
            frame_end=head_frames[-1],
        )
        chunk.frame_start = chunk.frames[0]
        job.queue.moved(chunk)  # the rest's first frame moved on
        self.store.put(CHUNK_ROW, chunk.id, chunk.row())
        self.store.put(CHUNK_ROW, head.id, head.row())
        job.queue.push(head)  # found and taken by _send at once
        return head

    def learn_version(self, chunk_id: int, text: str) -> None:
        """A node read the file of this running chunk's job: keep the version that saved it."""
        chunk = self.running.get(chunk_id)
        try:
            version = Version.parse(text).series
        except ValueError:
            log.warning("ignored file version %r reported for chunk %d", text, chunk_id)
            return
        if chunk is None or chunk.job.file_version == version:
            return
        job = chunk.job
        job.file_version = version
        self.store.execute(JOB_FILE_VERSION, (str(version), job.id))
        log.info("job %d: its file was saved by Blender %s (a node read it)", job.id, version)

    # -- reports -------------------------------------------------------------------------------

    def held_by(self, client_id: int, chunk_id: int) -> LiveChunk | None:
        chunk = self.running.get(chunk_id)
        return chunk if chunk is not None and chunk.client_id == client_id else None

    def frame_saved(self, client_id: int, report: messages.FrameDone) -> bool:
        """Record a saved frame of the chunk this node holds; False for anything else
        (a duplicate, a frame of another chunk, a chunk it no longer holds). Whether its file
        is the frame's is the caller's to check (server/reports.py)."""
        chunk = self.held_by(client_id, report.chunk_id)
        number = report.frame
        if chunk is None or number in chunk.done or number not in chunk.frames:
            return False
        stamp = chunk.done[number] = now()
        self.frames_to(
            chunk.job,
            (number,),
            FrameStatus.RENDERING,
            FrameStatus.DONE,
            client_id,
            finished_at=stamp,
            output_file=report.output_file,
            render_time=report.render_time,
            error="",
        )
        return True

    def report_refused(self, chunk: LiveChunk, reason: str) -> None:
        """A report of this running chunk named the wrong file: the run fails that frame."""
        chunk.refused = chunk.refused or reason

    def chunk_ended(self, client_id: int, report: messages.ChunkDone) -> int | None:
        """Close the node's chunk: done, or failed with its unfinished frames retried or failed.
        Answers the chunk's job id, or None for a chunk this node does not hold (stale)."""
        chunk = self.held_by(client_id, report.chunk_id)
        if chunk is None:
            log.info(
                "ignored end of chunk %d from client %d: not running there",
                report.chunk_id,
                client_id,
            )
            return None
        job = chunk.job
        left = chunk.unfinished()
        if report.ok and left and not chunk.refused:
            # Blender saved every frame but the farm did not take some (an uploaded frame
            # sent while the chunk was away from the node): not a failure, nothing to blame.
            # A run whose report was refused is the node's fault: it fails below.
            shown = ", ".join(map(str, sorted(left)))
            self.give_back(client_id, f"frames {shown} rendered but not taken", chunk.id)
            return job.id
        self._untrack(chunk)
        del job.running[chunk.id]
        if report.ok and not left:
            self.attempts_ended(chunk, client_id, report.exit_code)
            self.chunk_to(
                chunk,
                ChunkStatus.DONE,
                exit_code=report.exit_code,
                error="",
                log_tail="\n".join(report.log_tail[-50:]),  # a node's note, if any
            )
        else:
            reason = report.error or (
                f"a frame report was refused: {chunk.refused}"
                if chunk.refused
                else f"Blender exited with code {report.exit_code}"
            )
            tail = "\n".join(report.log_tail[-50:])
            self.attempts_ended(
                chunk, client_id, report.exit_code, left[0] if left else None,
                error=reason, log_tail=tail,
            )  # fmt: skip
            self.chunk_to(
                chunk,
                ChunkStatus.FAILED,
                exit_code=report.exit_code,
                error=reason,
                log_tail=tail,
                failed_client=client_id,
            )
            log.warning(
                "job %d chunk %d failed on client %d: %s", job.id, chunk.id, client_id, reason
            )
            self._blame(job, chunk, left, reason, tail)
            self._record_failure(job, client_id, reason)
            self._fail_if_nobody_can_render(job)
        self.settle(job)
        return job.id


def _span(frames: tuple[int, ...]) -> str:
    return f"{frames[0]}-{frames[-1]}" if frames else "none"
