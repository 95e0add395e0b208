"""Which Blender may render a .blend file: the file's version, job requirements, and the rule.

`read_version` reads the version from a file's header, which is all a farm needs to know before
sending the file anywhere. Only the first bytes are read, also from gzip-compressed files
(Blender ≤ 2.9x) and zstd-compressed ones (Blender ≥ 3.0), whose streams are decompressed just
far enough to see the header: a file may be hundreds of megabytes.

The one rule for which Blender opens a file (the server and the node both use it):

- A Blender opens files saved by its own series or an older one (`can_open`): 4.5.x opens a
  4.5 or a 3.4 file, never a 5.0 one. A file of unknown version is assumed openable.
- `pick` chooses among the Blenders that can open the file and that the job's requirement
  allows: the file's own series if one is there, else the oldest series newer than the file's,
  since the closest series renders the file most like the artist saw it; within that series the
  newest patch, a bug-fix release of the same Blender. For a file of unknown version it takes
  the newest candidate. Equal versions go to the first listed.
"""

from __future__ import annotations

import functools
import gzip
import operator
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

import zstandard

Compression = Literal["none", "gzip", "zstd"]

MAGIC = b"BLENDER"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
HEAD_BYTES = 32  # more than either header form (12 bytes up to Blender 4.x, 17 from 5.0)
ZSTD_READ_SIZE = 16384  # compressed bytes read at a time; the header is in the first block

# Up to 4.x: BLENDER, pointer size (`_` 4 bytes, `-` 8), endianness (`v` little, `V` big) and
# three digits of version (major * 100 + minor: 279, 304, 405).
_OLD_HEADER = re.compile(rb"BLENDER(?P<pointer>[_-])(?P<endian>[vV])(?P<version>\d{3})")
# From 5.0: BLENDER, the header's size (17), pointer size, the file-format version (01),
# endianness and four digits of version (0500). Blender accepts only `17-01v`; this is laxer so
# that a later format still yields its version.
_NEW_HEADER = re.compile(
    rb"BLENDER(?P<size>\d\d)(?P<pointer>[_-])(?P<format>\d+)(?P<endian>[vV])(?P<version>\d{4})"
)
_NEW_HEADER_SIZE = 17

_VERSION = re.compile(r"\s*(?:blender\s+)?v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?=\s|$)", re.IGNORECASE)


class BlendFileError(ValueError):
    """A file whose Blender version cannot be read: missing, not a .blend, truncated, corrupt."""


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A Blender version; a missing patch counts as 0 when comparing (4.5 == 4.5.0 < 4.5.1)."""

    major: int
    minor: int
    patch: int | None = None

    def __post_init__(self) -> None:
        parts = (self.major, self.minor, 0 if self.patch is None else self.patch)
        if any(not isinstance(p, int) or isinstance(p, bool) or p < 0 for p in parts):
            raise ValueError(f"a version is made of whole numbers ≥ 0, not {parts!r}")

    @classmethod
    def parse(cls, text: str) -> Version:
        """Read "4.5", "4.5.3" or "4.5.3 LTS" (leading numbers; a bare "5" is 5.0)."""
        match = _VERSION.match(text)
        if match is None:
            raise ValueError(f"not a Blender version: {text!r} (expected e.g. '4.5' or '4.5.3')")
        major, minor, patch = match.groups()
        return cls(int(major), int(minor or 0), None if patch is None else int(patch))

    @property
    def series(self) -> Version:
        """The release series without the patch: 4.5 for 4.5.3."""
        return Version(self.major, self.minor)

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch or 0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}"
        return base if self.patch is None else f"{base}.{self.patch}"


@dataclass(frozen=True)
class Header:
    """What a .blend file's header says."""

    version: Version
    pointer_size: int  # 4 or 8
    little_endian: bool
    format_version: int  # 0: the 12-byte header up to Blender 4.x; 1: Blender 5's 17 bytes
    compression: Compression


def read_version(path: str | Path) -> Version:
    """The version of Blender that saved the file at `path`; BlendFileError when unreadable."""
    return read_header(path).version


def read_header(path: str | Path) -> Header:
    """Decode the header of the (possibly gzip- or zstd-compressed) .blend file at `path`."""
    path = Path(path)
    head, compression = _read_head(path)
    return _decode(head, compression, path)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _read_up_to(stream: _Readable, size: int) -> bytes:
    """Read until `size` bytes or the end: decompressors may hand out less than asked."""
    data = b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _read_head(path: Path) -> tuple[bytes, Compression]:
    try:
        with path.open("rb") as file:
            magic = file.read(len(ZSTD_MAGIC))
            file.seek(0)
            if magic.startswith(GZIP_MAGIC):
                return _gunzip_head(file, path), "gzip"
            if magic == ZSTD_MAGIC:
                return _unzstd_head(file, path), "zstd"
            return file.read(HEAD_BYTES), "none"
    except FileNotFoundError:
        raise BlendFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BlendFileError(f"{path} is a directory, not a .blend file") from None
    except OSError as error:
        raise BlendFileError(f"cannot read {path}: {error.strerror or error}") from None


def _gunzip_head(file: BinaryIO, path: Path) -> bytes:
    try:
        with gzip.GzipFile(fileobj=file, mode="rb") as stream:
            return _read_up_to(stream, HEAD_BYTES)
    except EOFError:
        raise BlendFileError(f"{path}: its gzip data is truncated") from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise BlendFileError(f"{path}: corrupt gzip data ({error})") from None


def _unzstd_head(file: BinaryIO, path: Path) -> bytes:
    decompressor = zstandard.ZstdDecompressor()
    try:
        with decompressor.stream_reader(
            file, read_size=ZSTD_READ_SIZE, read_across_frames=True, closefd=False
        ) as stream:
            return _read_up_to(stream, HEAD_BYTES)
    except zstandard.ZstdError as error:
        raise BlendFileError(f"{path}: corrupt zstd data ({error})") from None


def _decode(head: bytes, compression: Compression, path: Path) -> Header:
    packed = "" if compression == "none" else f"{compression}-compressed but "
    if not head:
        if compression == "none":
            raise BlendFileError(f"{path} is empty")
        raise BlendFileError(f"{path} is {packed}holds no data (truncated or corrupt)")
    if not head.startswith(MAGIC):
        if MAGIC.startswith(head):
            raise BlendFileError(f"{path}: truncated .blend header {head!r}")
        raise BlendFileError(f"{path} is {packed}not a .blend file (it starts with {head[:16]!r})")
    if head[7:9].isdigit():
        match, needed = _NEW_HEADER.match(head), _NEW_HEADER_SIZE
    else:
        match, needed = _OLD_HEADER.match(head), 12
    if match is None:
        if len(head) < needed:
            raise BlendFileError(f"{path}: truncated .blend header {head!r}")
        raise BlendFileError(
            f"{path}: unrecognised .blend header {head[:_NEW_HEADER_SIZE]!r} "
            "(saved by a newer Blender?)"
        )
    number = int(match["version"])
    return Header(
        version=Version(number // 100, number % 100),
        pointer_size=4 if match["pointer"] == b"_" else 8,
        little_endian=match["endian"] == b"v",
        format_version=int(match.groupdict().get("format") or 0),
        compression=compression,
    )


# -- requirements -------------------------------------------------------------------------------

_COMPARE: dict[str, Callable[[Version, Version], bool]] = {
    "==": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_WORDS = {"==": "", ">=": "≥ ", ">": "> ", "<=": "≤ ", "<": "< "}
Op = Literal["==", ">=", ">", "<=", "<"]
_OPS: dict[str, Op] = {"": "==", "=": "==", "==": "==", ">=": ">=", ">": ">", "<=": "<=", "<": "<"}
_NUMBER = r"\d+(?:\.\d+){0,2}"
_BOUND = re.compile(rf"(==|=|>=|>|<=|<)?\s*({_NUMBER})")
_RANGE = re.compile(rf"({_NUMBER})\s*-\s*({_NUMBER})")
_EXAMPLES = "expected e.g. '4.5', '4.5.3', '>=4.2', '>=4.2,<5.0' or '4.2-4.5'"


@dataclass(frozen=True)
class Bound:
    """One comparison; a version without a patch stands for its whole series ("<=4.5" admits
    4.5.3, "4.5" any 4.5.x), one with a patch for that release only."""

    op: Op
    version: Version

    def allows(self, version: Version) -> bool:
        mine = version if self.version.patch is not None else version.series
        return _COMPARE[self.op](mine, self.version)

    def floor(self) -> Version | None:
        """The lowest series this bound admits, when it has one."""
        if self.op in ("==", ">="):
            return self.version.series
        if self.op == ">":
            if self.version.patch is None:
                return Version(self.version.major, self.version.minor + 1)
            return self.version.series
        return None

    def __str__(self) -> str:
        return f"{'' if self.op == '==' else self.op}{self.version}"

    def words(self) -> str:
        return f"{_WORDS[self.op]}{self.version}"


@dataclass(frozen=True)
class Range:
    """An inclusive range, "4.2-4.5": every release from the 4.2 series to the 4.5 series."""

    low: Version
    high: Version

    def allows(self, version: Version) -> bool:
        return Bound(">=", self.low).allows(version) and Bound("<=", self.high).allows(version)

    def floor(self) -> Version | None:
        return self.low.series

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    def words(self) -> str:
        return f"{self.low} to {self.high}"


@dataclass(frozen=True)
class Requirement:
    """Which Blender a job asks for: every clause must allow the version (comma means and)."""

    clauses: tuple[Bound | Range, ...]

    @classmethod
    def parse(cls, text: str) -> Requirement:
        """Read "4.5", "4.5.3", ">=4.2", "<5", ">=4.2,<5.0" or "4.2-4.5"; ValueError if bad."""
        if not text.strip():
            raise ValueError(f"empty Blender requirement; {_EXAMPLES}")
        clauses: list[Bound | Range] = []
        for part in text.split(","):
            clauses.append(_clause(part.strip(), text))
        return cls(tuple(clauses))

    def allows(self, version: Version) -> bool:
        return all(clause.allows(version) for clause in self.clauses)

    def floor(self) -> Version | None:
        """The lowest series any clause insists on, when one does."""
        floors = [f for f in (clause.floor() for clause in self.clauses) if f is not None]
        return max(floors, default=None)

    def __str__(self) -> str:
        return ",".join(str(clause) for clause in self.clauses)

    def describe(self) -> str:
        """In words, for a waiting reason: "Blender 4.5", "Blender ≥ 4.2 and < 5.0"."""
        return "Blender " + " and ".join(clause.words() for clause in self.clauses)


def _clause(part: str, text: str) -> Bound | Range:
    if not part:
        raise ValueError(f"bad Blender requirement {text!r}: an empty clause; {_EXAMPLES}")
    if match := _RANGE.fullmatch(part):
        low, high = Version.parse(match[1]), Version.parse(match[2])
        if not Bound("<=", high).allows(low):
            raise ValueError(f"bad Blender requirement {text!r}: {part!r} is an empty range")
        return Range(low, high)
    if match := _BOUND.fullmatch(part):
        return Bound(_OPS[match[1] or ""], Version.parse(match[2]))
    raise ValueError(f"bad Blender requirement {text!r}: cannot read {part!r}; {_EXAMPLES}")


# -- the rule -----------------------------------------------------------------------------------


def can_open(blender: Version, file: Version | None) -> bool:
    """Whether `blender` opens a file saved by `file` (its own series or older; unknown: yes)."""
    return file is None or blender.series >= file.series


def pick(
    blenders: Sequence[Version], file: Version | None, requirement: Requirement | None = None
) -> int | None:
    """The index in `blenders` of the one to render `file` with, or None when none may."""
    candidates = [
        i
        for i, blender in enumerate(blenders)
        if can_open(blender, file) and (requirement is None or requirement.allows(blender))
    ]
    if not candidates:
        return None
    if file is not None:
        # Every candidate's series is the file's or newer: the lowest is the closest.
        closest = min(blenders[i].series for i in candidates)
        candidates = [i for i in candidates if blenders[i].series == closest]
    return max(candidates, key=lambda i: (blenders[i], -i))


def waiting_reason(
    file: Version | None, requirement: Requirement | None, online: Sequence[Version]
) -> str:
    """Why no online Blender may render a job: "needs Blender ≥ 4.5; online nodes have 3.4.1"."""
    if requirement is None:
        needs = "any Blender" if file is None else f"Blender ≥ {file.series}"
    else:
        needs = requirement.describe()
        floor = requirement.floor()
        if file is not None and (floor is None or floor < file.series):
            needs += f", ≥ {file.series} to open the file"
    versions = sorted(set(online))
    have = "online nodes have " + ", ".join(map(str, versions)) if versions else "no node is online"
    return f"needs {needs}; {have}"
