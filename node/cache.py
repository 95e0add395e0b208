"""The node's cache of uploaded jobs' files: blobs by SHA-256 in its work dir, size-capped,
least recently used first out.

A blob is stored read-only (`<work dir>/cache/sha256/ab/abcd…`) and job trees are hard links
to it, so Blender can never change a cached file in place. The cache's size is what its blobs
hold; blobs the current job needs are pinned and never evicted, even when they alone pass the
cap (the job could not render otherwise).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


class BlobCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.blobs = root / "sha256"
        self.tmp = root / "tmp"
        self.max_bytes = max_bytes
        self._lru: OrderedDict[str, int] = OrderedDict()  # sha → size, oldest first
        self.size = 0
        self._started = False

    def start(self) -> None:
        """Index what an earlier run left, oldest use first (a blob's mtime is its last use)."""
        if self._started:
            return
        self._started = True
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        for stale in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                stale.unlink()
        found = []
        for path in self.blobs.glob("*/*"):
            st = path.stat()
            found.append((st.st_mtime, path.name, st.st_size))
        for _, sha, size in sorted(found):
            self._lru[sha] = size
            self.size += size

    def path(self, sha: str) -> Path:
        return self.blobs / sha[:2] / sha

    def __contains__(self, sha: str) -> bool:
        return sha in self._lru

    def __len__(self) -> int:
        return len(self._lru)

    def use(self, sha: str) -> Path | None:
        """The cached blob, marked as just used; None when not cached."""
        if sha not in self._lru:
            return None
        path = self.path(sha)
        try:
            os.utime(path)
        except FileNotFoundError:  # removed behind our back
            self.size -= self._lru.pop(sha)
            return None
        self._lru.move_to_end(sha)
        return path

    def temp_path(self, sha: str) -> Path:
        """Where a download of `sha` goes before `add`."""
        return self.tmp / f"{sha}.part"

    def add(self, sha: str, downloaded: Path, pinned: Iterable[str] = ()) -> Path:
        """Move a verified download into the cache, then evict to the cap (never `pinned`)."""
        path = self.path(sha)
        path.parent.mkdir(exist_ok=True)
        os.chmod(downloaded, 0o444)
        os.replace(downloaded, path)
        size = path.stat().st_size
        if sha in self._lru:
            self.size -= self._lru.pop(sha)
        self._lru[sha] = size
        self.size += size
        self.evict(pinned={sha, *pinned})
        return path

    def evict(self, pinned: Iterable[str] = ()) -> list[str]:
        """Remove the least recently used blobs until the cache is under its cap."""
        keep = set(pinned)
        gone = []
        for sha in list(self._lru):
            if self.size <= self.max_bytes:
                break
            if sha in keep:
                continue
            self.size -= self._lru.pop(sha)
            with contextlib.suppress(FileNotFoundError):
                self.path(sha).unlink()
            gone.append(sha)
        if gone:
            log.info("cache: evicted %d file(s), %d bytes kept", len(gone), self.size)
        return gone
