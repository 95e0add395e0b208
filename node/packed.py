"""Uploaded jobs on a node: fetch the files, lay out the job's tree, render, send frames back.

`PackedRunner` wraps any `Runner` (cold or warm). An order without a manifest goes straight
to it; for an uploaded job it first fetches the manifest and the blobs the cache lacks
(node/cache.py), links the job's tree out of the cache under `<work dir>/jobs/job-<id>/tree`,
and renders there with output to `<work dir>/jobs/job-<id>/out`. Each saved frame is sent to
the master as soon as Blender saves it, with the order's upload key (or the one the master's
`welcome` gave when it kept the chunk here after a reconnect), and retried while the master is
away; only once the
master holds it is the frame reported, with the master's path, and the chunk ends only once
every frame is across, or the master refused it: a frame it says is not rendering (409, e.g.
a chunk taken back while the node was away) is left out, and the chunk's other frames count.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import os
import shutil
from pathlib import Path

from brender.manifest import Manifest, ManifestError
from brender.node.blender_log import Event, FrameSaved
from brender.node.cache import BlobCache
from brender.node.chunk import ChunkResult, EventCallback, RenderOrder, Runner
from brender.node.fetch import FarmFiles, FetchError

log = logging.getLogger(__name__)

FIRST_RETRY = 0.5
MAX_RETRY = 5.0
CONFLICT = 409
FORBIDDEN = 403
CONFLICT_PATIENCE = 20.0
"""Seconds a frame the master answers 409 for is tried again before it is given up."""


class Sent(enum.Enum):
    """What became of a saved frame sent back to the master."""

    TAKEN = "taken"
    REFUSED = "refused"
    """A 4xx other than 409: the chunk fails."""
    NOT_TAKEN = "not taken"
    """409 for `CONFLICT_PATIENCE` s: not counted, and not this chunk's failure."""


class PackedRunner:
    def __init__(self, inner: Runner, files: FarmFiles, cache: BlobCache, work_dir: Path) -> None:
        self.inner = inner
        self.files = files
        self.cache = cache
        self.jobs = work_dir / "jobs"
        self._canceled = asyncio.Event()

    def cancel(self) -> None:
        self._canceled.set()
        self.inner.cancel()

    async def close(self) -> None:
        await self.inner.close()

    async def run(self, order: RenderOrder, on_event: EventCallback) -> ChunkResult:
        if not order.manifest:
            return await self.inner.run(order, on_event)
        self._canceled.clear()
        try:
            local = await self._prepare(order)
        except (FetchError, ManifestError, OSError) as exc:
            log.error("chunk %d: %s", order.chunk_id, exc)
            return ChunkResult(False, None, error=f"cannot fetch the job's files: {exc}")
        if local is None:
            return ChunkResult(False, None, canceled=True)
        if order.upload_key:
            self.files.upload_keys[order.chunk_id] = order.upload_key
        try:
            return await self._render(order, local, on_event)
        finally:
            self.files.upload_keys.pop(order.chunk_id, None)

    async def _render(
        self, order: RenderOrder, local: RenderOrder, on_event: EventCallback
    ) -> ChunkResult:
        """Render the job's tree, sending each saved frame back as it is saved."""
        sending: dict[int, asyncio.Task[Sent]] = {}

        def on_inner(event: Event) -> None:
            if isinstance(event, FrameSaved):
                sending[event.frame] = asyncio.create_task(self._send_back(order, event, on_event))
            else:
                on_event(event)

        result = await self.inner.run(local, on_inner)
        if sending and not result.canceled:
            await asyncio.wait(sending.values())
        sent = {n: task.result() if task.done() else Sent.REFUSED for n, task in sending.items()}
        for task in sending.values():
            task.cancel()
        if result.canceled:
            return result
        lost = sorted(n for n, how in sent.items() if how is Sent.REFUSED)
        untaken = sorted(n for n, how in sent.items() if how is Sent.NOT_TAKEN)
        result.frames_done = [n for n in result.frames_done if sent.get(n) is Sent.TAKEN]
        if lost:
            result.ok = False
            result.error = result.error or f"frame(s) {lost} could not be sent to the master"
        elif untaken:
            # Not this node's failure: the master gives those frames to the queue again.
            note = f"the master did not take frame(s) {untaken} (not rendering there any more)"
            result.note = f"{result.note}; {note}" if result.note else note
        return result

    async def _prepare(self, order: RenderOrder) -> RenderOrder | None:
        """The order as it runs here: its file in the job's tree, output in its own folder."""
        assert order.manifest is not None
        await asyncio.to_thread(self.cache.start)
        job_dir = self.jobs / f"job-{order.job_id}"
        manifest = await self._manifest(order.manifest)
        if manifest is None:
            return None
        pinned = {order.manifest, *manifest.hashes()}
        fetched = fetched_bytes = 0
        for sha, size in manifest.hashes().items():
            if self._canceled.is_set():
                return None
            if self.cache.use(sha) is None:
                await self._fetch(sha, pinned)
                fetched += 1
                fetched_bytes += size
        log.info(
            "job %s: fetched %d file(s), %d bytes; %d of %d from the cache",
            order.job_id,
            fetched,
            fetched_bytes,
            len(manifest.hashes()) - fetched,
            len(manifest.hashes()),
        )
        tree = await asyncio.to_thread(self._materialise, job_dir, order.manifest, manifest)
        out = job_dir / "out"
        out.mkdir(parents=True, exist_ok=True)
        pattern = Path(order.output or "####").name
        return dataclasses.replace(
            order, blend_file=str(tree / manifest.main), output=str(out / pattern)
        )

    async def _manifest(self, sha: str) -> Manifest | None:
        path = self.cache.use(sha)
        if path is None:
            path = await self._fetch(sha, {sha})
        data = await asyncio.to_thread(path.read_bytes)
        return Manifest.loads(data)

    async def _fetch(self, sha: str, pinned: set[str]) -> Path:
        temp = self.cache.temp_path(sha)
        await asyncio.to_thread(self.files.get_blob, sha, temp)
        return self.cache.add(sha, temp, pinned)

    def _materialise(self, job_dir: Path, sha: str, manifest: Manifest) -> Path:
        """The job's tree, as hard links into the cache (copies where links cannot be made).
        Only one job's tree is kept: the node renders one job at a time."""
        tree = job_dir / "tree"
        marker = job_dir / "manifest"
        if marker.is_file() and marker.read_text() == sha and tree.is_dir():
            return tree
        self.jobs.mkdir(parents=True, exist_ok=True)
        for old in self.jobs.iterdir():
            shutil.rmtree(old, ignore_errors=True)
        tree.mkdir(parents=True)
        for rel, entry in manifest.files.items():
            target = tree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            source = self.cache.path(entry.sha256)
            try:
                os.link(source, target)
            except OSError:  # another file system, or one without hard links
                shutil.copyfile(source, target)
        marker.write_text(sha)
        return tree

    async def _send_back(
        self, order: RenderOrder, event: FrameSaved, on_event: EventCallback
    ) -> Sent:
        """Send a saved frame to the master until it holds it (then report it with the
        master's path), it refuses it for good, or it keeps answering that the frame is not
        rendering (409) for `CONFLICT_PATIENCE` s: a node that lost its chunk while away gets
        it back when its `hello` reaches the master, and a chunk taken away for good is
        canceled, which stops this."""
        path = Path(event.path)
        delay = FIRST_RETRY
        conflicted: float | None = None
        assert order.job_id is not None
        while True:
            key = self.files.upload_keys.get(order.chunk_id, "")
            try:
                where = await asyncio.to_thread(
                    self.files.put_frame, order.job_id, event.frame, path, key
                )
                break
            except FetchError as exc:
                if exc.status == FORBIDDEN and self.files.upload_keys.get(order.chunk_id) != key:
                    # The master kept the chunk on reconnecting and gave a new key meanwhile.
                    continue
                if exc.status == CONFLICT:
                    now = asyncio.get_running_loop().time()
                    conflicted = now if conflicted is None else conflicted
                    if now - conflicted >= CONFLICT_PATIENCE:
                        log.warning(
                            "chunk %d: frame %d not taken: %s", order.chunk_id, event.frame, exc
                        )
                        return Sent.NOT_TAKEN
                    log.info("chunk %d: %s; trying again in %.1f s", order.chunk_id, exc, delay)
                elif exc.permanent:
                    log.error("chunk %d: frame %d refused: %s", order.chunk_id, event.frame, exc)
                    return Sent.REFUSED
                else:
                    log.warning("chunk %d: %s; retrying in %.1f s", order.chunk_id, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY)
        log.info("chunk %d: frame %d sent to the master (%s)", order.chunk_id, event.frame, where)
        # The local copy stays until the next job's tree replaces this one (a runner may
        # still look at it).
        on_event(dataclasses.replace(event, path=where))
        return Sent.TAKEN
