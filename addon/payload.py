"""The `job submit` request built from what Blender already knows. No `bpy` here.

The Blender side copies the scene's settings into a `SubmitSettings`; everything from there on
(default names, output path, checks, the request's `values`) is plain Python that the tests
cover without Blender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Any, NamedTuple

from .errors import SettingsError

# Blender's image formats the farm can render frame by frame (server/services/validate.py);
# a movie format renders PNG frames that the farm encodes into the movie once all are done.
IMAGE_FORMATS = (
    "PNG", "JPEG", "BMP", "IRIS", "JPEG2000", "TARGA", "TARGA_RAW", "CINEON", "DPX",
    "OPEN_EXR", "OPEN_EXR_MULTILAYER", "HDR", "TIFF", "WEBP", "AVIF",
)  # fmt: skip
MOVIE_FORMATS = ("FFMPEG", "AVI_JPEG", "AVI_RAW")
MAX_NAME = 200
_SEQUENCE = re.compile(r"^(sq|seq|sequence)[-_]?\d+[a-z]?$", re.IGNORECASE)
_SHOT = re.compile(r"^(sh|shot)[-_]?\d+[a-z]?$", re.IGNORECASE)
_SPLIT = re.compile(r"[\s_.\-]+")


class Names(NamedTuple):
    project: str
    sequence: str
    shot: str


@dataclass(frozen=True)
class SubmitSettings:
    """What one Submit sends, as read from the scene and the panel."""

    blend_file: str
    project: str
    sequence: str
    shot: str
    frame_start: int
    frame_end: int
    chunk_size: int = 0  # 0: the farm sizes each chunk (see docs/api.md, job submit)
    priority: int = 50
    output: str = ""  # Blender's pattern, may start with `//`; empty: the farm picks
    file_format: str = "PNG"
    paused: bool = False
    job_name: str = ""  # empty: the farm names the job after the file
    file_version: str = (
        ""  # the Blender that saved the file ("4.5"), for a farm that cannot read it
    )
    autoexec: bool = False  # the artist's "Auto Run Python Scripts": drivers and scripts run
    movie: dict[str, Any] | None = None
    """For a movie format: the scene's FFmpeg `container`, `codec` and `fps` (docs/api.md)."""


def _path(text: str) -> PurePath:
    return PureWindowsPath(text) if re.match(r"^[A-Za-z]:[\\/]", text) else PurePosixPath(text)


def default_names(blend_file: str, scene_name: str) -> Names:
    """Project, sequence and shot guessed from the file's path and the scene's name.

    `/films/spring/sq01_sh010_light.blend` gives spring / sq01 / sh010. Without such tokens the
    shot is the file's name, the sequence the scene's name and the project the file's folder.
    """
    path = _path(blend_file) if blend_file else PurePosixPath("untitled.blend")
    stem = path.stem or "untitled"
    tokens = [t for t in _SPLIT.split(stem) if t]
    sequence = next((t for t in tokens if _SEQUENCE.match(t)), "")
    shot = next((t for t in tokens if _SHOT.match(t)), "")
    if not sequence:
        sequence = next((p for p in reversed(path.parent.parts) if _SEQUENCE.match(p)), "")
    shot = shot or stem
    sequence = sequence or scene_name.strip() or "main"
    skip = {sequence.lower(), shot.lower(), "shots", "scenes", "blend", "blends", "/", "\\"}
    folders = [p for p in reversed(path.parent.parts) if p.lower() not in skip and ":" not in p]
    project = folders[0] if folders else "default"
    return Names(_clean(project), _clean(sequence), _clean(shot))


def _clean(name: str) -> str:
    return " ".join(name.split())[:MAX_NAME]


def resolve_output(output: str, blend_file: str) -> str:
    """Blender's output pattern made absolute: `//` means the .blend file's folder."""
    output = output.strip()
    if not output.startswith("//"):
        return output
    parent = _path(blend_file).parent
    rest = output[2:]
    joined = str(parent / rest) if rest.strip("/\\") else str(parent)
    if output.endswith(("/", "\\")) and not joined.endswith(("/", "\\")):
        joined += "\\" if isinstance(parent, PureWindowsPath) else "/"
    return joined


def check(settings: SubmitSettings) -> None:
    """Refuse settings the farm would refuse, before anything is sent."""
    if not settings.blend_file:
        raise SettingsError("Save the file first: the farm renders a saved .blend file")
    for label, value in (("project", settings.project), ("sequence", settings.sequence),
                         ("shot", settings.shot)):  # fmt: skip
        if not value.strip():
            raise SettingsError(f"Give the job a {label} name")
    if settings.frame_end < settings.frame_start:
        raise SettingsError(
            f"The frame range ends (frame {settings.frame_end}) before it starts "
            f"(frame {settings.frame_start})"
        )
    if settings.chunk_size < 0:
        raise SettingsError("The chunk size is the number of frames per task: 1 or more")
    if not 0 <= settings.priority <= 100:
        raise SettingsError("The priority goes from 0 to 100")
    if settings.file_format in MOVIE_FORMATS:
        if (settings.movie or {}).get("codec") == "NONE":
            raise SettingsError(
                "The scene's FFmpeg output has no video codec: choose one (H.264, MPEG-4, …)"
            )
        return
    if settings.file_format not in IMAGE_FORMATS:
        raise SettingsError(f"The farm cannot write {settings.file_format} images")


def submit_values(settings: SubmitSettings) -> dict[str, Any]:
    """The `values` of one `job submit` request; raises `SettingsError` first if they are bad."""
    check(settings)
    values: dict[str, Any] = {
        "project": settings.project.strip(),
        "sequence": settings.sequence.strip(),
        "shot": settings.shot.strip(),
        "blend_file": settings.blend_file,
        "frame_start": settings.frame_start,
        "frame_end": settings.frame_end,
        "priority": settings.priority,
        "format": settings.file_format,
        "paused": settings.paused,
    }
    if settings.chunk_size > 0:
        values["chunk_size"] = settings.chunk_size
    output = resolve_output(settings.output, settings.blend_file)
    if output:
        values["output"] = output
    if settings.job_name.strip():
        values["name"] = settings.job_name.strip()
    if settings.file_version:
        values["file_version"] = settings.file_version
    if settings.autoexec:
        values["autoexec"] = True
    if settings.file_format in MOVIE_FORMATS:
        values["movie"] = {k: v for k, v in (settings.movie or {}).items() if v is not None}
    return values


def submit_request(settings: SubmitSettings) -> dict[str, Any]:
    return {"item": "job", "action": "submit", "values": submit_values(settings)}


def file_pattern(output: str) -> str:
    """An uploaded job's `output`: only the file-name part of Blender's pattern, with `#`s
    (Blender adds four digits to a name without any), or "" for the farm's `####`."""
    name = re.split(r"[\\/]", output.strip())[-1].strip()
    if not name or name.startswith("-") or any(ord(c) < 32 for c in name):
        return ""
    return name if "#" in name else f"{name}####"


def upload_values(values: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """A `job submit`'s `values` for files in the farm's store: `upload` (the manifest) in
    place of `blend_file`, and the output's file-name pattern (frames come back to the farm)."""
    out = {k: v for k, v in values.items() if k not in ("blend_file", "output")}
    pattern = file_pattern(str(values.get("output", "")))
    if pattern:
        out["output"] = pattern
    out["upload"] = manifest
    return out


def output_folder(output: str, blend_file: str) -> str:
    """The folder the scene's output pattern writes into (`//` from the .blend's folder), where
    *Download Frames* puts a job's frames."""
    if output.strip().startswith("//") and not blend_file:
        raise SettingsError("Save the file first: its output folder is relative to it")
    resolved = resolve_output(output, blend_file)
    if not resolved:
        raise SettingsError("Set the scene's output path (Output Properties) to download into")
    if resolved.endswith(("/", "\\")):
        return resolved
    return str(_path(resolved).parent)
