"""The server's content-addressed blob store: `<data dir>/files/sha256/ab/abcd…`.

Every input file of an uploaded job is stored once, named by its SHA-256, whoever sent it and
for whichever job. An upload goes to `files/partial/<sha256>` first, hashed as it arrives; it
becomes a blob only when the bytes hash to the name (an interrupted upload keeps its partial
file, and the next PUT appends to it). A size cap per file and a quota for the whole store
refuse what would not fit before it is written. A blob's modification time is when a job
last used it (its upload, a submit, the job's deletion): the retention sweep
(server/housekeep.py) removes blobs no job references once that is old enough.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from brender.manifest import SHA256, hash_file
from brender.server.errors import FarmError

log = logging.getLogger(__name__)

BLOCK = 1024 * 1024


class BlobError(FarmError):
    """A refused upload: `code` is the API's error code, `status` the HTTP status."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message, code)
        self.status = status


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0
    received: int = 0
    """Body bytes taken in by PUT since the server started (resumed ones once)."""
    served: int = 0
    """Blob bytes sent by GET since the server started."""


class BlobStore:
    def __init__(self, root: Path, max_file: int, quota: int) -> None:
        self.root = root
        self.blobs = root / "sha256"
        self.partial = root / "partial"
        self.max_file = max_file
        self.quota = quota
        self.stats = Stats()
        self._open: set[str] = set()
        self._lock = threading.Lock()
        self._sweep = threading.Lock()
        """Held while a blob is touched or removed: a submit's touch and the sweep's check of
        the time cannot interleave (a blob just used is never removed under it)."""

    def start(self) -> None:
        """Make the folders and count what is stored (once, at start)."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.partial.mkdir(parents=True, exist_ok=True)
        files = size = 0
        for path in self.blobs.glob("*/*"):
            files += 1
            size += path.stat().st_size
        self.stats.files, self.stats.bytes = files, size

    def used(self) -> int:
        """Stored bytes plus the partial uploads (they hold disk too)."""
        partial = sum(p.stat().st_size for p in self.partial.iterdir() if p.is_file())
        return self.stats.bytes + partial

    def path(self, sha: str) -> Path:
        check_name(sha)
        return self.blobs / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def missing(self, hashes: Iterable[str]) -> list[str]:
        """The hashes (each once, in order) the store lacks."""
        return [sha for sha in dict.fromkeys(hashes) if not self.has(sha)]

    def claim(self, hashes: Iterable[str]) -> list[str]:
        """The hashes the store lacks, after marking the ones it holds as used now (a client
        is about to submit a job with them: the sweep must not take them first)."""
        missing = []
        with self._sweep:
            for sha in dict.fromkeys(hashes):
                try:
                    os.utime(self.path(sha))
                except FileNotFoundError:
                    missing.append(sha)
        return missing

    def touch(self, hashes: Iterable[str]) -> None:
        """Mark blobs as used now (a job that used them was deleted: they age from here)."""
        self.claim(hashes)

    def stored(self) -> Iterator[tuple[str, float]]:
        """Every stored blob's hash and modification time (a snapshot; may race a sweep)."""
        for path in self.blobs.glob("*/*"):
            with contextlib.suppress(FileNotFoundError):
                yield path.name, path.stat().st_mtime

    def remove_unused(self, sha: str, before: float) -> int | None:
        """Remove blob `sha` if it was last used before `before` (a time); answers the bytes
        freed (None if it was used since, or is gone)."""
        path = self.path(sha)
        with self._sweep:
            try:
                st = path.stat()
            except FileNotFoundError:
                return None
            if st.st_mtime >= before:
                return None
            path.unlink()
        with self._lock:
            self.stats.files -= 1
            self.stats.bytes -= st.st_size
        return st.st_size

    def remove_stale_partials(self, before: float) -> int:
        """Remove partial uploads nobody has added to since `before` and nobody is writing;
        answers the bytes freed."""
        freed = 0
        for path in list(self.partial.iterdir()):
            with self._lock:
                if path.name in self._open:
                    continue
                try:
                    st = path.stat()
                    if st.st_mtime < before:
                        path.unlink()
                        freed += st.st_size
                except FileNotFoundError:
                    continue
        return freed

    def partial_size(self, sha: str) -> int:
        check_name(sha)
        try:
            return (self.partial / sha).stat().st_size
        except FileNotFoundError:
            return 0

    def begin(self, sha: str, offset: int, length: int | None) -> Upload:
        """Open the partial file of `sha` to append at `offset` (0 starts afresh), checked
        against the caps; the bytes already held are hashed again (a resumed upload)."""
        held = self.partial_size(sha)
        if offset not in (0, held):
            raise BlobError(
                f"this farm holds {held} bytes of {sha}: resume at offset {held}", "conflict", 409
            )
        if length is not None:
            if offset + length > self.max_file:
                raise BlobError(
                    f"file of {offset + length} bytes over this farm's cap of {self.max_file} "
                    "bytes per file (--max-file-size)",
                    "too_large",
                    413,
                )
            if self.used() - (held if offset == 0 else 0) + length > self.quota:
                raise BlobError(
                    f"the farm's store is full: {self.used()} of {self.quota} bytes used "
                    "(--store-quota)",
                    "quota",
                    507,
                )
        with self._lock:
            if sha in self._open:
                raise BlobError(f"{sha} is being uploaded by someone else", "conflict", 409)
            self._open.add(sha)
        try:
            return Upload(self, sha, offset)
        except BaseException:
            self._release(sha)
            raise

    def _release(self, sha: str) -> None:
        with self._lock:
            self._open.discard(sha)

    def _stored(self, sha: str, partial: Path, size: int) -> None:
        final = self.path(sha)
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            partial.unlink()
            return
        os.chmod(partial, 0o444)  # blobs never change: nodes hard-link what they fetch
        os.replace(partial, final)
        with self._lock:
            self.stats.files += 1
            self.stats.bytes += size

    def put_bytes(self, data: bytes) -> str:
        """Store a small blob held in memory (a manifest); answers its hash."""
        sha = hashlib.sha256(data).hexdigest()
        if self.has(sha):
            return sha
        upload = self.begin(sha, 0, len(data))
        upload.write(data)
        self.stats.received -= len(data)  # made here, not received
        upload.finish()
        return sha

    def verify(self, sha: str) -> bool:
        """The stored blob still hashes to its name (for tests and checks)."""
        return hash_file(self.path(sha)).sha256 == sha


class Upload:
    """One PUT's partial file: append, hash, and on `finish` verify and store."""

    def __init__(self, store: BlobStore, sha: str, offset: int) -> None:
        self.store = store
        self.sha = sha
        self.path = store.partial / sha
        self.digest = hashlib.sha256()
        self.size = 0
        if offset:
            with open(self.path, "rb") as held:
                while block := held.read(BLOCK):
                    self.digest.update(block)
                    self.size += len(block)
        self.file: BinaryIO | None = open(self.path, "ab" if offset else "wb")  # noqa: SIM115
        self.closed = False

    def write(self, data: bytes) -> None:
        assert self.file is not None
        if self.size + len(data) > self.store.max_file:
            raise BlobError(
                f"upload over this farm's cap of {self.store.max_file} bytes per file",
                "too_large",
                413,
            )
        self.file.write(data)
        self.digest.update(data)
        self.size += len(data)
        self.store.stats.received += len(data)

    def finish(self) -> int:
        """Verify and store the blob; BlobError (400) if the bytes do not hash to its name."""
        self.close()
        got = self.digest.hexdigest()
        if got != self.sha:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            raise BlobError(
                f"the body hashes to {got}, not {self.sha}: refused (and discarded)",
                "hash_mismatch",
                400,
            )
        self.store._stored(self.sha, self.path, self.size)
        log.info("blob %s stored (%d bytes)", self.sha, self.size)
        return self.size

    def close(self) -> None:
        """Keep what arrived (a later PUT resumes from it) and let others upload it."""
        if self.closed:
            return
        self.closed = True
        if self.file is not None:
            self.file.close()
            self.file = None
        self.store._release(self.sha)


def check_name(sha: str) -> str:
    if not SHA256.match(sha):
        raise BlobError(
            f"{sha[:80]!r} is not a SHA-256 (64 lowercase hex digits)", "bad_request", 400
        )
    return sha
