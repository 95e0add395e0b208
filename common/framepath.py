"""Which file a job's output pattern names for a frame, resolved as Blender resolves it.

The node and the server both ask this before they take a frame report: a frame counts only
when its file is the one `blender -b FILE -o OUTPUT -F FORMAT -x 1` writes for that frame, so
neither a `Saved:` line printed by a scene's script nor a scripted node can make the farm
take some other file for a frame (docs/protocol.md, `frame`); on shared storage one view's file
of a stereo frame saved view by view counts too (`names_view`).

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
    return _with_extension(resolve(pattern, frame, blend_file), file_format)


def _with_extension(base: str, file_format: str | None) -> frozenset[str]:
    """`base` with the format's extension, as `-x 1` gives it (kept, put in place of a known
    image extension, or appended)."""
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
    pattern: str,
    frame: int,
    file_format: str | None,
    path: str,
    blend_file: str | None = None,
    *,
    views: bool = False,
) -> bool:
    """Whether `path` is the file the pattern names for `frame` (folders compared normalised,
    as Blender prints them); with `views`, or one view's file of it (`names_view`)."""
    path = _normal_path(path)
    if path in frame_files(pattern, frame, file_format, blend_file):
        return True
    return views and names_view(pattern, frame, file_format, path, blend_file)


def names_view(
    pattern: str, frame: int, file_format: str | None, path: str, blend_file: str | None = None
) -> bool:
    """Whether `path` is one view's file of `frame` in a multi-view (stereo) render saved view
    by view ("Individual"). Blender puts the view's suffix into the frame's path after the
    frame number and before the extension is settled, before the name's last `.` or at its
    end (`image_path_from_imtype`, `BLI_path_suffix`; checked against Blender 3.4 in the tests
    and against the bpy module 4.5 by hand): `/r/####` saves `0007_L.png` and
    `0007_R.png`, `/r/x` saves `x0007_L.png`, `/r/x.png` saves `x_L.png0007.png`
    (tests/test_framepath.py checks these against Blender's own `frame_path(view=…)`)."""
    path = _normal_path(path)
    base = resolve(pattern, frame, blend_file)
    folder, name = _split(base)
    dot = name.rfind(".")
    cuts = {len(name) if dot < 0 else dot}
    if dot == 0:
        cuts.add(len(name))  # Blender 4.x: a leading `.` starts no extension (3.x: it does)
    for cut in cuts:
        for file in _with_extension(folder + name[:cut] + _VIEW + name[cut:], file_format):
            before, _, after = file.partition(_VIEW)
            end = len(path) - len(after)
            fits = end > len(before) and path.startswith(before) and path.endswith(after)
            if fits and VIEW_SUFFIX.fullmatch(path, len(before), end):
                return True
    return False


VIEW_SUFFIX = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]{0,31}")
"""A view's file suffix as the farm takes it (Blender's are `_L` and `_R` unless the artist
names views of their own); never a leading digit, so that no view of frame 1 of `/r/#` can be
`/r/11.png`, frame 11's file."""

_VIEW = "\0"
"""Where a view's suffix goes, marked by a character no path has."""


def _normal_path(path: str) -> str:
    """Its folders normalised, as Blender prints them."""
    folder, name = _split(path)
    return (_normal_folder(folder) if folder else "") + name


def expected_file(
    pattern: str, frame: int, file_format: str | None, blend_file: str | None = None
) -> str:
    """One name for the file of `frame` (for messages)."""
    return min(frame_files(pattern, frame, file_format, blend_file))
