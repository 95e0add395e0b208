"""The lines a warm Blender and its node exchange (see docs/architecture.md, "Warm Blender").

The node writes one JSON order per chunk on the warm Blender's stdin; the control script
(`warm_blender.py`) answers on stdout with marked lines, between Blender's own output, which
the node parses as it does a cold Blender's. Standalone on purpose (stdlib only): the control
script imports it inside Blender, where `brender` is not installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeGuard

MARKER = "BRENDER-WARM "
"""The start of every line the control script writes for the node (never one of Blender's)."""


@dataclass(frozen=True)
class Order:
    """Render these frames of the loaded file (node → warm Blender)."""

    chunk_id: int
    frames: tuple[int, ...]
    output: str | None = None
    format: str | None = None

    def encode(self) -> bytes:
        body = {
            "chunk": self.chunk_id,
            "frames": list(self.frames),
            "output": self.output,
            "format": self.format,
        }
        return json.dumps(body).encode() + b"\n"


class ProtocolError(ValueError):
    """A line that is not a valid order or reply."""


def parse_order(line: str | bytes) -> Order:
    """One order line as the control script reads it; ProtocolError when it is malformed."""
    try:
        raw = json.loads(line)
    except ValueError:
        raise ProtocolError(f"an order is not JSON: {line[:200]!r}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("an order is not a JSON object")
    chunk, frames = raw.get("chunk"), raw.get("frames")
    if not _is_int(chunk):
        raise ProtocolError(f"an order's chunk is not a whole number: {chunk!r}")
    if not isinstance(frames, list) or not frames or not all(_is_int(f) for f in frames):
        raise ProtocolError(f"an order's frames are not a list of whole numbers: {frames!r}")
    output, file_format = raw.get("output"), raw.get("format")
    for name, value in (("output", output), ("format", file_format)):
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"an order's {name} is not a string: {value!r}")
    return Order(chunk, tuple(frames), output, file_format)


@dataclass(frozen=True)
class Ready:
    """The file is loaded and the script waits for orders."""

    version: str
    file: str


@dataclass(frozen=True)
class Saved:
    """A frame of the current order is rendered and saved at `path`."""

    frame: int
    path: str
    seconds: float


@dataclass(frozen=True)
class Done:
    """Every frame of the order `chunk_id` is saved; the script waits for the next order."""

    chunk_id: int


Reply = Ready | Saved | Done


def encode_reply(reply: Reply) -> str:
    """The control script's line for a reply (without the newline)."""
    body: dict[str, Any]
    if isinstance(reply, Ready):
        body = {"ready": True, "version": reply.version, "file": reply.file}
    elif isinstance(reply, Saved):
        body = {"saved": reply.frame, "path": reply.path, "seconds": reply.seconds}
    else:
        body = {"done": reply.chunk_id}
    return MARKER + json.dumps(body)


def parse_reply(line: str) -> Reply | None:
    """A marked line as a reply; None for any other line (Blender's own output). A marked
    line that is malformed raises ProtocolError: the script and the node disagree."""
    if not line.startswith(MARKER):
        return None
    try:
        raw = json.loads(line[len(MARKER) :])
    except ValueError:
        raise ProtocolError(f"a reply is not JSON: {line[:200]!r}") from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"a reply is not a JSON object: {line[:200]!r}")
    if raw.get("ready") is True:
        version, file = raw.get("version"), raw.get("file")
        if isinstance(version, str) and isinstance(file, str):
            return Ready(version, file)
    elif "saved" in raw:
        frame, path, seconds = raw.get("saved"), raw.get("path"), raw.get("seconds")
        if _is_int(frame) and isinstance(path, str) and _is_number(seconds):
            return Saved(frame, path, float(seconds))
    elif "done" in raw and _is_int(raw["done"]):
        return Done(raw["done"])
    raise ProtocolError(f"a reply the node does not understand: {line[:200]!r}")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
