"""Housekeeping of uploaded jobs' files: the blob store's retention sweep, and what deleting a
job lets go of.

A blob no job references is removed once it has gone unused for `--keep-files` days, counted
from its upload or the last time a job used it (a submit with it, that job's deletion: the
store keeps that time as the blob's modification time). The sweep runs at start and then
every hour (more often for a retention under four hours), its file work on a worker thread.
Deleting a job touches its blobs, so they age from then; with `force` an uploaded job's
frames go too, but only its own folder under the output root is ever removed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from brender.manifest import Manifest, ManifestError
from brender.server.blobs import BlobStore
from brender.server.services import packed

log = logging.getLogger(__name__)

DAY = 86400.0
MAX_INTERVAL = 3600.0
MIN_INTERVAL = 1.0


@dataclass
class Swept:
    blobs: int = 0
    bytes: int = 0
    partial_bytes: int = 0


def interval(keep_days: float) -> float:
    """Seconds between sweeps: hourly, or a quarter of a shorter retention (at least 1 s)."""
    return min(MAX_INTERVAL, max(MIN_INTERVAL, keep_days * DAY / 4))


class Housekeeper:
    """Sweeps the store of `store` for blobs older than `keep_days` that no job references."""

    def __init__(self, store: BlobStore, keep_days: float) -> None:
        self.store = store
        self.keep = keep_days * DAY
        self._hashes: dict[str, frozenset[str]] = {}
        """Manifest hash → the blobs it names (manifests never change)."""

    async def run(self) -> None:
        """Sweep now, then every `interval`, until cancelled; one failure does not stop it."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sweeping the file store failed; trying again later")
            await asyncio.sleep(interval(self.keep / DAY))

    async def sweep(self) -> Swept:
        manifests = packed.upload_manifests()  # one short query, on the loop
        return await asyncio.to_thread(self._sweep, manifests, time.time())

    def _sweep(self, manifests: list[str], now: float) -> Swept:
        referenced = set(manifests)
        for sha in manifests:
            referenced |= self.names(sha)
        before = now - self.keep
        swept = Swept()
        for sha, mtime in list(self.store.stored()):
            if sha in referenced or mtime >= before:
                continue
            freed = self.store.remove_unused(sha, before)
            if freed is not None:
                swept.blobs += 1
                swept.bytes += freed
        swept.partial_bytes = self.store.remove_stale_partials(before)
        for gone in set(self._hashes) - set(manifests):
            del self._hashes[gone]
        level = logging.INFO if swept.blobs or swept.partial_bytes else logging.DEBUG
        log.log(
            level,
            "file store swept: removed %d blob(s) (%d bytes) and %d bytes of partial uploads "
            "unused for %g day(s); %d blob(s) in use",
            swept.blobs,
            swept.bytes,
            swept.partial_bytes,
            self.keep / DAY,
            len(referenced),
        )
        return swept

    def names(self, manifest: str) -> frozenset[str]:
        """The blobs a stored manifest names (empty if it cannot be read: nothing is freed
        for it, and its blobs are kept only by their age)."""
        if manifest not in self._hashes:
            self._hashes[manifest] = frozenset(manifest_hashes(self.store, manifest))
        return self._hashes[manifest]


def manifest_hashes(store: BlobStore, manifest: str) -> set[str]:
    try:
        data = json.loads(store.path(manifest).read_bytes())
        return set(Manifest.parse(data).hashes())
    except (OSError, ValueError, ManifestError) as exc:
        log.warning("cannot read manifest %s: %s", manifest, exc)
        return set()


def release(store: BlobStore, manifests: Iterable[str]) -> int:
    """Deleted jobs' inputs: their blobs (and manifests) start ageing now. Answers how many."""
    hashes: set[str] = set()
    for sha in set(manifests):
        hashes |= manifest_hashes(store, sha) | {sha}
    store.touch(hashes)
    return len(hashes)


def remove_frames(output_root: Path, job_id: int, output: str) -> Path | None:
    """Remove an uploaded job's frame folder (`<output root>/…/job-<id>/`), only if it is
    that job's own folder, a real directory inside the output root. Answers what was removed."""
    folder = Path(output).parent
    root = output_root.resolve()
    if folder.name != f"job-{job_id}" or folder.is_symlink() or not folder.is_dir():
        if folder.exists() or folder.is_symlink():
            log.warning("job %d: not removing %s: not the job's own folder", job_id, folder)
        return None
    real = folder.resolve()
    if not real.is_relative_to(root) or real == root:
        log.warning("job %d: not removing %s: outside the output root %s", job_id, real, root)
        return None
    shutil.rmtree(real)
    log.info("job %d: removed its frames (%s)", job_id, real)
    return real
