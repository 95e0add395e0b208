"""brender.blendfile: versions from real and synthetic .blend headers, requirements, the rule."""

from __future__ import annotations

import gzip
import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from brender.blendfile import (
    GZIP_MAGIC,
    ZSTD_MAGIC,
    BlendFileError,
    Compression,
    Header,
    Requirement,
    Version,
    can_open,
    pick,
    read_header,
    read_version,
    waiting_reason,
)


def v(text: str) -> Version:
    return Version.parse(text)


def pack(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def unpack_all(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.decompress(data)
    return zstandard.ZstdDecompressor().decompress(data)


# -- real files ---------------------------------------------------------------------------------


def save_files(command: list[str], folder: Path) -> dict[str, Path]:
    """Save the factory scene plain, zstd and with Blender's default; gzip the plain one."""
    files = {kind: folder / f"{kind}.blend" for kind in ("plain", "zstd", "default", "gzip")}
    script = "\n".join(
        [
            "import bpy",
            f"bpy.ops.wm.save_as_mainfile(filepath={str(files['plain'])!r}, compress=False)",
            f"bpy.ops.wm.save_as_mainfile(filepath={str(files['zstd'])!r}, compress=True)",
            f"bpy.ops.wm.save_as_mainfile(filepath={str(files['default'])!r})",
        ]
    )
    # Keep Blender's user folders (recent files, config) out of the real home.
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(folder / "user"))
    env["BLENDER_USER_CONFIG"] = str(folder / "user" / "config")
    done = subprocess.run(
        [*command, script],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
        check=False,
    )
    missing = [kind for kind in ("plain", "zstd", "default") if not files[kind].is_file()]
    assert done.returncode == 0 and not missing, done.stdout.decode(errors="replace")
    files["gzip"].write_bytes(gzip.compress(files["plain"].read_bytes()))
    return files


@pytest.fixture(scope="module")
def files34(blender: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files saved by Debian's Blender 3.4.1."""
    command = [blender, "-b", "--factory-startup", "--python-expr"]
    return save_files(command, tmp_path_factory.mktemp("blender34"))


@pytest.fixture(scope="module")
def files45(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files saved by the bpy 4.5 module, in a child process (importing bpy takes seconds)."""
    return save_files([sys.executable, "-c"], tmp_path_factory.mktemp("bpy45"))


KINDS: list[tuple[str, Compression]] = [
    ("plain", "none"),
    ("zstd", "zstd"),
    ("gzip", "gzip"),
    ("default", "none"),  # neither 3.4 nor 4.5 compresses unless asked to
]


@pytest.mark.blender
@pytest.mark.parametrize(("kind", "compression"), KINDS)
def test_blender_34_files(files34: dict[str, Path], kind: str, compression: Compression) -> None:
    assert read_header(files34[kind]) == Header(Version(3, 4), 8, True, 0, compression)
    assert str(read_version(files34[kind])) == "3.4"
    assert read_version(str(files34[kind])) == Version(3, 4)


@pytest.mark.blender
@pytest.mark.parametrize(("kind", "compression"), KINDS)
def test_bpy_45_files(files45: dict[str, Path], kind: str, compression: Compression) -> None:
    # 4.5 still writes the 12-byte header (BLENDER-v405); only 5.0 writes the 17-byte one.
    assert read_header(files45[kind]) == Header(Version(4, 5), 8, True, 0, compression)
    assert str(read_version(files45[kind])) == "4.5"


@pytest.mark.blender
def test_compress_means_zstd(files34: dict[str, Path], files45: dict[str, Path]) -> None:
    for files in (files34, files45):
        assert files["zstd"].read_bytes()[:4] == ZSTD_MAGIC
        assert files["plain"].read_bytes()[:7] == b"BLENDER"


# -- synthetic headers --------------------------------------------------------------------------

PADDING = b"REND" + bytes(200)
SYNTHETIC = [
    (b"BLENDER-v279", Header(Version(2, 79), 8, True, 0, "none")),
    (b"BLENDER_V304", Header(Version(3, 4), 4, False, 0, "none")),
    (b"BLENDER-v405", Header(Version(4, 5), 8, True, 0, "none")),
    (b"BLENDER-v410", Header(Version(4, 10), 8, True, 0, "none")),  # numeric: 4.10, not 4.1
    (b"BLENDER17-01v0500", Header(Version(5, 0), 8, True, 1, "none")),
    (b"BLENDER17-01v0512", Header(Version(5, 12), 8, True, 1, "none")),
]


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
@pytest.mark.parametrize(("magic", "expected"), SYNTHETIC, ids=lambda x: repr(x)[:20])
def test_synthetic_headers(
    tmp_path: Path, magic: bytes, expected: Header, compression: Compression
) -> None:
    path = tmp_path / "synthetic.blend"
    path.write_bytes(pack(magic + PADDING, compression))
    assert read_header(path) == Header(
        expected.version,
        expected.pointer_size,
        expected.little_endian,
        expected.format_version,
        compression,
    )


def test_header_without_padding(tmp_path: Path) -> None:
    (tmp_path / "old.blend").write_bytes(b"BLENDER-v279")
    (tmp_path / "new.blend").write_bytes(b"BLENDER17-01v0500")
    assert read_version(tmp_path / "old.blend") == Version(2, 79)
    assert read_version(tmp_path / "new.blend") == Version(5, 0)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_reads_only_the_head(tmp_path: Path, compression: Compression) -> None:
    # The second half of the stream is missing: decompressing it all would fail, reading the
    # header must not notice.
    body = random.Random(0).randbytes(4_000_000)
    whole = pack(b"BLENDER-v405" + body, compression)
    cut = whole[: len(whole) // 2]
    with pytest.raises((EOFError, zstandard.ZstdError)):
        unpack_all(cut, compression)
    path = tmp_path / "cut.blend"
    path.write_bytes(cut)
    assert read_version(path) == Version(4, 5)


# -- errors -------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
ZSTD_HEAD = zstandard.ZstdCompressor().compress(b"BLENDER-v405" + PADDING)
GZIP_HEAD = gzip.compress(b"BLENDER-v405" + PADDING)

BAD_FILES = [
    (b"", "is empty"),
    (PNG, r"is not a \.blend file \(it starts with b'\\x89PNG"),
    (b"BLEND", "truncated .blend header"),
    (b"BLENDER", "truncated .blend header"),
    (b"BLENDER-v2", "truncated .blend header"),
    (b"BLENDER17-01v05", "truncated .blend header"),
    (b"BLENDER?v279" + PADDING, "unrecognised .blend header"),
    (b"BLENDER17-01x0500" + PADDING, "unrecognised .blend header"),
    (b"BLENDER99" + PADDING, "unrecognised .blend header"),
    (ZSTD_MAGIC + b"garbage" * 10, "corrupt zstd data"),
    (ZSTD_HEAD[:10], "zstd-compressed but holds no data"),
    (zstandard.ZstdCompressor().compress(PNG), "zstd-compressed but not a .blend file"),
    (GZIP_MAGIC + b"garbage" * 10, "corrupt gzip data"),
    (GZIP_HEAD[:15], "gzip data is truncated"),
    (gzip.compress(b""), "gzip-compressed but holds no data"),
    (gzip.compress(b"BLENDER-v4"), "truncated .blend header"),
]


@pytest.mark.parametrize(("data", "message"), BAD_FILES, ids=lambda x: repr(x)[:24])
def test_bad_files(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.blend"
    path.write_bytes(data)
    with pytest.raises(BlendFileError, match=message) as caught:
        read_version(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BlendFileError, match="no such file") as caught:
        read_version(tmp_path / "gone.blend")
    assert str(tmp_path / "gone.blend") in str(caught.value)
    with pytest.raises(BlendFileError, match="is a directory"):
        read_version(tmp_path)


# -- Version ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "printed"),
    [
        ("4.5", Version(4, 5), "4.5"),
        ("4.5.3", Version(4, 5, 3), "4.5.3"),
        ("3.4.1", Version(3, 4, 1), "3.4.1"),
        ("4.5.3 LTS", Version(4, 5, 3), "4.5.3"),
        ("  4.2.10 Alpha", Version(4, 2, 10), "4.2.10"),
        ("Blender 3.4.1", Version(3, 4, 1), "3.4.1"),
        ("5", Version(5, 0), "5.0"),
        ("4.10", Version(4, 10), "4.10"),
    ],
)
def test_version_parse(text: str, expected: Version, printed: str) -> None:
    parsed = Version.parse(text)
    assert parsed == expected
    assert parsed.patch == expected.patch
    assert str(parsed) == printed


@pytest.mark.parametrize("text", ["", "  ", "abc", "4.x", "4.5.3.1", "-1.0", "v", "4,5", "4.5-rc"])
def test_version_parse_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a Blender version"):
        Version.parse(text)


def test_version_order_and_series() -> None:
    assert v("4.5.3").series == Version(4, 5)
    assert v("4.5.3").series.patch is None
    assert v("4.5") == v("4.5.0") and hash(v("4.5")) == hash(v("4.5.0"))
    assert v("4.5") <= v("4.5.0") <= v("4.5")
    assert v("2.79") < v("3.4.1") < v("4.2") < v("4.5") < v("4.5.1") < v("4.10") < v("5.0")
    assert sorted([v("5.0"), v("3.4.1"), v("4.5.3"), v("4.5")]) == [
        v("3.4.1"),
        v("4.5"),
        v("4.5.3"),
        v("5.0"),
    ]
    assert v("4.5") != "4.5"
    with pytest.raises(ValueError):
        Version(4, -1)


# -- Requirement --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normal", "words"),
    [
        ("4.5", "4.5", "Blender 4.5"),
        ("4.5.3", "4.5.3", "Blender 4.5.3"),
        ("==4.5", "4.5", "Blender 4.5"),
        (">=4.2", ">=4.2", "Blender ≥ 4.2"),
        ("<5", "<5.0", "Blender < 5.0"),
        (">= 4.2 , < 5", ">=4.2,<5.0", "Blender ≥ 4.2 and < 5.0"),
        (">=4.2,<5.0", ">=4.2,<5.0", "Blender ≥ 4.2 and < 5.0"),
        ("4.2-4.5", "4.2-4.5", "Blender 4.2 to 4.5"),
        ("4.2 - 4.5", "4.2-4.5", "Blender 4.2 to 4.5"),
        ("<=4.5", "<=4.5", "Blender ≤ 4.5"),
        (">4.5.1", ">4.5.1", "Blender > 4.5.1"),
    ],
)
def test_requirement_text(text: str, normal: str, words: str) -> None:
    requirement = Requirement.parse(text)
    assert str(requirement) == normal
    assert requirement.describe() == words
    assert Requirement.parse(normal) == requirement


ALLOWS = {
    "4.5": ["4.5", "4.5.0", "4.5.3"],
    "4.5.3": ["4.5.3"],
    ">=4.2": ["4.2.0", "4.5", "4.5.0", "4.5.3", "4.10", "5.0.0"],
    "<5": ["3.4.1", "4.2.0", "4.5", "4.5.0", "4.5.3", "4.10"],
    ">=4.2,<5.0": ["4.2.0", "4.5", "4.5.0", "4.5.3", "4.10"],
    "4.2-4.5": ["4.2.0", "4.5", "4.5.0", "4.5.3"],
    "<=4.5": ["3.4.1", "4.2.0", "4.5", "4.5.0", "4.5.3"],
    ">4.5": ["4.10", "5.0.0"],
    ">4.5.0": ["4.5.3", "4.10", "5.0.0"],
}
TRIED = ["3.4.1", "4.2.0", "4.5", "4.5.0", "4.5.3", "4.10", "5.0.0"]


@pytest.mark.parametrize(("text", "allowed"), ALLOWS.items())
def test_requirement_allows(text: str, allowed: list[str]) -> None:
    requirement = Requirement.parse(text)
    assert [t for t in TRIED if requirement.allows(v(t))] == allowed


@pytest.mark.parametrize(
    "text",
    ["", " ", "abc", ">=", "4.5-", "-4.5", ">=4.2,,<5", ">=4.2,", "4.5-4.2", "~4.5", "4.5.3.1", "4.5 LTS", "=>4.2"],
)  # fmt: skip
def test_requirement_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="Blender requirement"):
        Requirement.parse(text)


# -- the rule -----------------------------------------------------------------------------------


def test_can_open() -> None:
    assert can_open(v("4.5.3"), v("4.5"))
    assert can_open(v("4.5.0"), v("3.4"))
    assert can_open(v("3.4.1"), None)
    assert not can_open(v("4.5.3"), v("5.0"))
    assert not can_open(v("4.2.9"), v("4.5"))


def pick_of(blenders: list[str], file: str | None, requirement: str | None = None) -> int | None:
    return pick(
        [v(b) for b in blenders],
        None if file is None else v(file),
        None if requirement is None else Requirement.parse(requirement),
    )


def test_pick() -> None:
    farm = ["3.4.1", "4.5.0", "4.2.3", "4.5.3", "5.0.0", "4.2.1"]
    assert pick_of(farm, "4.5") == 3  # the file's series, newest patch
    assert pick_of(farm, "4.2") == 2
    assert pick_of(farm, "3.4") == 0
    assert pick_of(farm, "4.3") == 3  # the oldest newer series, its newest patch
    assert pick_of(farm, "2.79") == 0
    assert pick_of(farm, "5.1") is None  # only older Blenders
    assert pick_of(farm, None) == 4  # unknown file: the newest
    assert pick_of(farm, "4.5", ">=5") == 4
    assert pick_of(farm, "4.2", "4.5.0") == 1
    assert pick_of(farm, None, "<5") == 3
    assert pick_of(farm, "3.4", "4.2-4.5") == 2
    assert pick_of(farm, "4.5", "<4.5") is None
    assert pick_of([], None) is None
    assert pick_of(["4.5.3", "4.5.3"], "4.5") == 0  # a tie goes to the first


def test_pick_everywhere() -> None:
    # Every subset of a small farm against every file and requirement, checked against the rule.
    pool = [v(t) for t in ["3.4.1", "4.2.0", "4.2.3", "4.5.0", "4.5.3", "5.0.0"]]
    files = [None, v("2.79"), v("3.4"), v("4.2"), v("4.4"), v("4.5"), v("5.0"), v("5.1")]
    requirements = [None, *map(Requirement.parse, [">=4.2", "4.2-4.5", "<5", "4.5.0", "4.5"])]
    for size in range(len(pool) + 1):
        for blenders in itertools.combinations(pool, size):
            for file, requirement in itertools.product(files, requirements):
                ok = [
                    b
                    for b in blenders
                    if can_open(b, file) and (requirement is None or requirement.allows(b))
                ]
                chosen = pick(blenders, file, requirement)
                if not ok:
                    assert chosen is None
                    continue
                assert chosen is not None and blenders[chosen] in ok
                series = min(b.series for b in ok) if file is not None else max(ok).series
                assert blenders[chosen] == max(b for b in ok if b.series == series)


def test_waiting_reason() -> None:
    online = [v("3.4.1"), v("5.0.0"), v("3.4.1")]
    assert (
        waiting_reason(v("4.5"), None, [v("3.4.1")])
        == "needs Blender ≥ 4.5; online nodes have 3.4.1"
    )
    assert (
        waiting_reason(None, Requirement.parse("4.2-4.5"), online)
        == "needs Blender 4.2 to 4.5; online nodes have 3.4.1, 5.0.0"
    )
    assert waiting_reason(v("4.5"), None, []) == "needs Blender ≥ 4.5; no node is online"
    assert (
        waiting_reason(v("4.5"), Requirement.parse(">=4.5"), [v("4.2.0")])
        == "needs Blender ≥ 4.5; online nodes have 4.2.0"
    )
    assert (
        waiting_reason(v("4.5"), Requirement.parse("4.5.3"), [v("4.5.0")])
        == "needs Blender 4.5.3; online nodes have 4.5.0"
    )
    # The file asks for more than the requirement: both are said.
    assert (
        waiting_reason(v("4.3"), Requirement.parse("4.2-4.5"), [v("4.2.1")])
        == "needs Blender 4.2 to 4.5, ≥ 4.3 to open the file; online nodes have 4.2.1"
    )
    assert waiting_reason(None, None, []) == "needs any Blender; no node is online"
