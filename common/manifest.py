"""A packed job's manifest: every file of its tree by path, with its SHA-256 and size.

The submitter builds it from a packed tree (`brender.pack`), the server checks it against its
blob store and keeps it (itself a blob, named by the hash of its canonical JSON), and a node
fetches the blobs it names and lays them out again. Paths are data, never options: relative,
`/`-separated, no `..`, no control characters, no part starting with `-`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

SHA256 = re.compile(r"^[0-9a-f]{64}$")
BLOCK = 1024 * 1024
MAX_FILES = 100_000
MAX_PATH = 1024


class ManifestError(ValueError):
    """A manifest (or a path in one) that cannot be trusted; the message names the problem."""


@dataclass(frozen=True, slots=True)
class Entry:
    sha256: str
    size: int

    def to_wire(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """`main` is the path of the .blend to render; `files` maps each path to its content."""

    main: str
    files: Mapping[str, Entry]

    def to_wire(self) -> dict[str, Any]:
        return {
            "main": self.main,
            "files": {path: self.files[path].to_wire() for path in sorted(self.files)},
        }

    def canonical(self) -> bytes:
        """The JSON the manifest is stored as: sorted keys, no spaces (its hash names it)."""
        return json.dumps(self.to_wire(), sort_keys=True, separators=(",", ":")).encode()

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.files.values())

    def hashes(self) -> dict[str, int]:
        """Each distinct blob once, with its size."""
        return {e.sha256: e.size for e in self.files.values()}

    @classmethod
    def parse(cls, raw: Any) -> Manifest:
        if not isinstance(raw, dict):
            raise ManifestError("the manifest must be an object with 'main' and 'files'")
        unknown = sorted(set(raw) - {"main", "files"})
        if unknown:
            raise ManifestError(f"unknown manifest key(s): {', '.join(unknown)}")
        files = raw.get("files")
        if not isinstance(files, dict) or not files:
            raise ManifestError("'files' must be a non-empty object: path -> {sha256, size}")
        if len(files) > MAX_FILES:
            raise ManifestError(f"a manifest holds at most {MAX_FILES} files")
        entries = {check_path(path): _entry(path, value) for path, value in files.items()}
        main = raw.get("main")
        if not isinstance(main, str):
            raise ManifestError("'main' must be the path of the .blend to render")
        main = check_path(main)
        if main not in entries:
            raise ManifestError(f"'main' ({main}) is not one of the manifest's files")
        if not main.lower().endswith(".blend"):
            raise ManifestError(f"'main' ({main}) is not a .blend file")
        return cls(main, entries)

    @classmethod
    def loads(cls, data: bytes) -> Manifest:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise ManifestError(f"the manifest is not JSON: {exc}") from None
        return cls.parse(raw)


def _entry(path: str, value: Any) -> Entry:
    if not isinstance(value, dict):
        raise ManifestError(f"{path}: expected {{'sha256': …, 'size': …}}")
    sha, size = value.get("sha256"), value.get("size")
    if not isinstance(sha, str) or not SHA256.match(sha):
        raise ManifestError(f"{path}: 'sha256' must be 64 lowercase hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{path}: 'size' must be a whole number of bytes")
    return Entry(sha, size)


def check_path(path: Any) -> str:
    """A tree path as the manifest keeps it, or ManifestError: nothing may leave the tree."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH:
        raise ManifestError(f"bad path {path!r}: a non-empty string of at most {MAX_PATH}")
    if any(ord(c) < 32 or ord(c) == 127 for c in path) or "\\" in path:
        raise ManifestError(f"bad path {path!r}: control characters or backslashes")
    pure = PurePosixPath(path)
    if pure.is_absolute() or str(pure) != path:
        raise ManifestError(f"bad path {path!r}: must be relative and normalised")
    for part in pure.parts:
        if part in ("..", ".") or part.startswith("-"):
            raise ManifestError(f"bad path {path!r}: no '..', '.' or parts starting with '-'")
    return path


def hash_file(path: str | os.PathLike[str]) -> Entry:
    """The SHA-256 and size of a file, read a block at a time."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
            size += len(block)
    return Entry(digest.hexdigest(), size)


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Every regular file under `root`, as (tree path, file), sorted."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield path.relative_to(root).as_posix(), path


def build(root: Path, main: Path, skip: frozenset[str] = frozenset()) -> Manifest:
    """The manifest of the tree at `root` (files named in `skip` left out); `main` is in it."""
    files = {rel: hash_file(path) for rel, path in walk(root) if rel not in skip}
    return Manifest.parse(
        {
            "main": main.relative_to(root).as_posix(),
            "files": {rel: e.to_wire() for rel, e in files.items()},
        }
    )
