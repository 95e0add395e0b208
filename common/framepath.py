"""Which file a job's output pattern names for a frame, resolved as Blender resolves it.

The node and the server both ask this before they take a frame report: a frame counts only
when its file is the one `blender -b FILE -o OUTPUT -F FORMAT -x 1` writes for that frame, so
neither a `Saved:` line printed by a scene's script nor a scripted node can make the farm
take some other file for a frame (docs/protocol.md, `frame`).

Blender's rule (`BKE_image_path_from_imformat`, checked against Blender's own
`RenderSettings.frame_path` by tests/test_framepath.py): `//` is the .blend's folder; the
folders of the path are normalised (`a/./b//c/../` is `a/b/`); the last run of `#` in the file
name becomes the frame number, zero-padded to the run's length (`-` before the digits for a
negative frame), and a name without `#` gets four; then, with `-x 1`, the format's extension:
kept when the name ends with it (any case), else put in place of a known image extension,
else appended.
"""

from __future__ import annotations

import functools
import posixpath
import re

FORMAT_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg"),
    "BMP": (".bmp",),
    "IRIS": (".rgb",),
    "JPEG2000": (".jp2", ".j2c"),  # which one depends on the file's codec setting
    "TARGA": (".tga",),
    "TARGA_RAW": (".tga",),
    "CINEON": (".cin",),
    "DPX": (".dpx",),
    "OPEN_EXR": (".exr",),
    "OPEN_EXR_MULTILAYER": (".exr",),
    "HDR": (".hdr",),
    "TIFF": (".tif", ".tiff"),
    "WEBP": (".webp",),
    "AVIF": (".avif",),
}
"""The extensions Blender gives a still of each format (`-F`), the one it appends first."""

IMAGE_EXTENSIONS = frozenset(
    [
        ".png",
        ".tga",
        ".bmp",
        ".jpg",
        ".jpeg",
        ".sgi",
        ".rgb",
        ".rgba",
        ".tif",
        ".tiff",
        ".tx",
        ".jp2",
        ".j2c",
        ".hdr",
        ".dds",
        ".dpx",
        ".cin",
        ".exr",
        ".psd",
        ".pdd",
        ".psb",
        ".webp",
    ]
)
"""Blender's known image extensions (`imb_ext_image`): one of these at the end of a name is
replaced by the format's, anything else is kept and the format's appended."""

NEWER_EXTENSIONS = frozenset({".avif"})
"""Known to some Blender versions only: both readings are accepted."""


_HASHES = re.compile(r"#+")


def _split(path: str) -> tuple[str, str]:
    """(folder with its trailing separator, file name), on either separator as Blender does."""
    cut = max(path.rfind("/"), path.rfind("\\")) + 1
    return path[:cut], path[cut:]


def resolve(pattern: str, frame: int, blend_file: str | None = None) -> str:
    """The path Blender renders `frame` to, before the extension: `//` against the .blend's
    folder, the folders normalised, the last `#` run (or four appended) as the frame."""
    head, width, tail = _template(pattern, blend_file)
    return f"{head}{_number(frame, width)}{tail}"


@functools.lru_cache(maxsize=1024)
def _template(pattern: str, blend_file: str | None) -> tuple[str, int, str]:
    """What `resolve` puts around the frame number, worked out once per pattern (every frame
    report of a job is checked against the same one)."""
    if pattern.startswith("//"):
        base, _ = _split(blend_file or "")
        pattern = base + pattern[2:]
    folder, name = _split(pattern)
    if folder and not folder.startswith("//"):
        folder = _normal_folder(folder)
    runs = list(_HASHES.finditer(name))
    if not runs:
        return f"{folder}{name}", 4, ""
    last = runs[-1]
    return f"{folder}{name[: last.start()]}", last.end() - last.start(), name[last.end() :]


@functools.lru_cache(maxsize=1024)
def _normal_folder(folder: str) -> str:
    norm = posixpath.normpath(folder)
    return norm if norm.endswith(("/", "\\")) else norm + "/"


def _number(frame: int, digits: int) -> str:
    """C's `%.*d`: the sign, then at least `digits` digits."""
    return ("-" if frame < 0 else "") + str(abs(frame)).zfill(digits)


def frame_files(
    pattern: str, frame: int, file_format: str | None, blend_file: str | None = None
) -> frozenset[str]:
    """Every path Blender may save `frame` to: one, except where the order does not say
    which extension Blender gives (JPEG2000's codec, a format not named)."""
    base = resolve(pattern, frame, blend_file)
    _, name = _split(base)
    dot = name.rfind(".")
    current = name[dot:].lower() if dot > 0 else ""
    stem = base[: len(base) - len(current)]
    found: set[str] = set()
    for exts in _readings(file_format):
        if base.lower().endswith(exts):
            found.add(base)
        elif current in IMAGE_EXTENSIONS:
            found.add(stem + exts[0])
        elif current in NEWER_EXTENSIONS:
            found.update((stem + exts[0], base + exts[0]))
        else:
            found.add(base + exts[0])
    return frozenset(found)


@functools.lru_cache(maxsize=64)
def _readings(file_format: str | None) -> tuple[tuple[str, ...], ...]:
    """The extension sets Blender may check a name against for this format (the first of a
    set is the one it gives)."""
    exts = FORMAT_EXTENSIONS.get(file_format or "")
    if exts is None:
        others = tuple(e for f, e in FORMAT_EXTENSIONS.items() if f != "JPEG2000")
        return (*others, (".jp2",), (".j2c",))
    if file_format == "JPEG2000":
        return tuple((e,) for e in exts)
    return (exts,)


def names_frame(
    pattern: str, frame: int, file_format: str | None, path: str, blend_file: str | None = None
) -> bool:
    """Whether `path` is the file the pattern names for `frame` (folders compared normalised,
    as Blender prints them)."""
    folder, name = _split(path)
    if folder:
        folder = _normal_folder(folder)
    return folder + name in frame_files(pattern, frame, file_format, blend_file)


def expected_file(
    pattern: str, frame: int, file_format: str | None, blend_file: str | None = None
) -> str:
    """One name for the file of `frame` (for messages)."""
    return min(frame_files(pattern, frame, file_format, blend_file))
