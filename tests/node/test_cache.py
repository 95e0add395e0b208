"""The node's blob cache: least recently used out first, pinned blobs kept, read-only."""

from __future__ import annotations

import os
import time
from pathlib import Path

from brender.node.cache import BlobCache


def put(cache: BlobCache, name: str, size: int, pinned: tuple[str, ...] = ()) -> None:
    temp = cache.temp_path(name)
    temp.write_bytes(b"x" * size)
    cache.add(name, temp, pinned)


def test_lru_eviction(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", max_bytes=300)
    cache.start()
    for name in ("aa1", "bb2", "cc3"):
        put(cache, name, 100)
    assert cache.size == 300 and len(cache) == 3
    assert cache.use("aa1") is not None  # aa1 is now the most recent
    put(cache, "dd4", 100)  # over the cap: the least recently used (bb2) goes
    assert "bb2" not in cache and {"aa1", "cc3", "dd4"} <= {
        s for s in ("aa1", "cc3", "dd4") if s in cache
    }
    assert not cache.path("bb2").exists() and cache.size == 300
    put(cache, "ee5", 250, pinned=("cc3",))  # keeps cc3 (pinned) and ee5 (just added)
    assert "cc3" in cache and "ee5" in cache and "aa1" not in cache and "dd4" not in cache
    assert cache.size == 350  # over the cap: pinned blobs are never evicted
    assert cache.path("ee5").stat().st_mode & 0o222 == 0


def test_restart_remembers_order(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", max_bytes=1000)
    cache.start()
    put(cache, "old", 10)
    put(cache, "new", 10)
    past = time.time() - 100
    os.utime(cache.path("new"), (past, past))  # "new" was last used long ago
    again = BlobCache(tmp_path / "cache", max_bytes=15)
    again.start()
    assert again.size == 20
    again.evict()
    assert "new" not in again and "old" in again
