"""The server's blob store without a server: hashing, resuming, caps, counts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from brender.server.blobs import BlobError, BlobStore


def store(tmp_path: Path, max_file: int = 1000, quota: int = 2500) -> BlobStore:
    s = BlobStore(tmp_path / "files", max_file, quota)
    s.start()
    return s


def test_resume_hashes_what_was_held(tmp_path: Path) -> None:
    s = store(tmp_path)
    data = bytes(range(256)) * 3
    sha = hashlib.sha256(data).hexdigest()
    first = s.begin(sha, 0, None)
    first.write(data[:100])
    first.close()
    assert s.partial_size(sha) == 100 and s.missing([sha]) == [sha]
    with pytest.raises(BlobError, match="resume at offset 100"):
        s.begin(sha, 50, None)
    rest = s.begin(sha, 100, len(data) - 100)
    rest.write(data[100:])
    assert rest.finish() == len(data)
    assert s.missing([sha]) == [] and s.verify(sha) and s.partial_size(sha) == 0
    assert (s.stats.files, s.stats.bytes) == (1, len(data))
    assert store(tmp_path).stats.bytes == len(data)  # counted again at start


def test_mismatch_caps_and_one_writer(tmp_path: Path) -> None:
    s = store(tmp_path)
    sha = hashlib.sha256(b"right").hexdigest()
    up = s.begin(sha, 0, 5)
    with pytest.raises(BlobError, match="someone else"):
        s.begin(sha, 0, 5)
    up.write(b"wrong")
    with pytest.raises(BlobError) as refused:
        up.finish()
    assert refused.value.code == "hash_mismatch" and s.partial_size(sha) == 0
    with pytest.raises(BlobError) as big:
        s.begin(sha, 0, 1001)
    assert big.value.status == 413
    for i in range(2):
        s.put_bytes(bytes([i]) * 1000)
    with pytest.raises(BlobError) as full:
        s.begin(hashlib.sha256(b"z" * 600).hexdigest(), 0, 600)
    assert full.value.status == 507 and full.value.code == "quota"
