"""Checking the `values` of a request against what an item accepts, with errors that name the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brender.paths import path_problem
from brender.server.errors import InvalidValue

MAX_TEXT = 4096
MAX_FRAME = 10_000_000
MAX_FRAMES_PER_JOB = 1_000_000

IMAGE_FORMATS = (
    "PNG",
    "JPEG",
    "BMP",
    "IRIS",
    "JPEG2000",
    "TARGA",
    "TARGA_RAW",
    "CINEON",
    "DPX",
    "OPEN_EXR",
    "OPEN_EXR_MULTILAYER",
    "HDR",
    "TIFF",
    "WEBP",
    "AVIF",
    "FFMPEG",  # the movie formats: frames as PNG, then a movie (services/jobs.with_movie)
    "AVI_JPEG",
    "AVI_RAW",
)


@dataclass(frozen=True)
class Field:
    """One accepted value: its Python type and its allowed range or choices."""

    kind: type
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] | None = None
    nonempty: bool = False
    path: bool = False  # a path Blender is given: brender.paths' rule (empty is "not given")


def name_field() -> Field:
    return Field(str, nonempty=True)


def path_field(nonempty: bool = False) -> Field:
    return Field(str, nonempty=nonempty, path=True)


FRAME = Field(int, 0, MAX_FRAME)  # Blender reads a negative -s/-e as relative to the end
JOB_FIELDS: dict[str, Field] = {
    "name": Field(str),
    "blend_file": path_field(nonempty=True),
    "frame_start": FRAME,
    "frame_end": FRAME,
    "chunk_size": Field(int, 0, 100_000),  # 0: the farm sizes each chunk (server/chunking.py)
    "priority": Field(int, 0, 100),
    "output": path_field(),
    "format": Field(str, choices=IMAGE_FORMATS),
    "max_attempts": Field(int, 1, 100),
    "timeout": Field(int, 1, 7 * 24 * 3600),
    "file_version": Field(str),  # the Blender that saved the file, when the server cannot read it
    "blender": Field(str),  # the Blender the job asks for: "4.5", ">=4.2", "4.2-4.5"
    "autoexec": Field(bool),  # run the file's Python (drivers, startup scripts)
}


def check(values: dict[str, Any], spec: dict[str, Field], what: str) -> dict[str, Any]:
    """Validate `values` against `spec`; unknown keys and wrong types are named in the error."""
    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise InvalidValue(
            f"unknown field{'s' if len(unknown) > 1 else ''} for {what}: {', '.join(unknown)} "
            f"(accepted: {', '.join(sorted(spec))})"
        )
    out = {}
    for key, value in values.items():
        out[key] = check_one(key, value, spec[key])
    return out


def check_one(key: str, value: Any, field: Field) -> Any:
    if field.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValue(f"'{key}' must be an integer, not {type_name(value)}")
        if field.minimum is not None and value < field.minimum:
            raise InvalidValue(f"'{key}' must be at least {field.minimum} (got {value})")
        if field.maximum is not None and value > field.maximum:
            raise InvalidValue(f"'{key}' must be at most {field.maximum} (got {value})")
    elif field.kind is str:
        if not isinstance(value, str):
            raise InvalidValue(f"'{key}' must be a string, not {type_name(value)}")
        if field.nonempty and not value.strip():
            raise InvalidValue(f"'{key}' must not be empty")
        if len(value) > MAX_TEXT or "\x00" in value:
            raise InvalidValue(f"'{key}' is too long or holds a NUL character")
        if field.path and value and (problem := path_problem(value)) is not None:
            raise InvalidValue(f"'{key}' {problem}: {value[:200]!r}")
        if field.choices is not None:
            value = value.upper()
            if value not in field.choices:
                raise InvalidValue(f"'{key}' must be one of {', '.join(field.choices)}")
    elif field.kind is bool and not isinstance(value, bool):
        raise InvalidValue(f"'{key}' must be true or false, not {type_name(value)}")
    elif field.kind is list and not isinstance(value, list):
        raise InvalidValue(f"'{key}' must be a list, not {type_name(value)}")
    elif field.kind is dict and not isinstance(value, dict):
        raise InvalidValue(f"'{key}' must be an object, not {type_name(value)}")
    return value


def require(values: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if values.get(k) in (None, "")]
    if missing:
        raise InvalidValue(f"{what} needs {', '.join(missing)}")


def check_frame_range(start: int, end: int) -> None:
    if end < start:
        raise InvalidValue(f"frame_end ({end}) must be >= frame_start ({start})")
    if end - start + 1 > MAX_FRAMES_PER_JOB:
        raise InvalidValue(f"a job may have at most {MAX_FRAMES_PER_JOB} frames")


def type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        type(None): "null",
        bool: "a boolean",
        str: "a string",
        float: "a number",
        int: "an integer",
    }.get(type(value), "a value")
