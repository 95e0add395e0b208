"""The node's side of docs/protocol.md: every message it sends, and the `render` it reads."""

from __future__ import annotations

from typing import Any

from brender import wire
from brender.node.blender_log import FrameSaved
from brender.node.chunk import ChunkResult, RenderOrder
from brender.node.errors import NodeError

Message = dict[str, Any]


def hello(
    *,
    node_id: str,
    name: str,
    hostname: str,
    mac_address: str | None,
    cpus: int,
    memory: int,
    blender_version: str,
    token: str | None,
    chunk: Message | None,
) -> Message:
    return {
        "type": "hello",
        "protocol": wire.PROTOCOL_VERSION,
        "node_id": node_id,
        "name": name,
        "hostname": hostname,
        "mac_address": mac_address,
        "cpus": cpus,
        "memory": memory,
        "blender_version": blender_version,
        "token": token,
        "chunk": chunk,
    }


def chunk_state(chunk_id: int, running: bool) -> Message:
    """The `chunk` field of `hello`."""
    return {"chunk_id": chunk_id, "running": running}


def progress(chunk_id: int, frame: int) -> Message:
    return {"type": "progress", "chunk_id": chunk_id, "frame": frame}


def frame(chunk_id: int, saved: FrameSaved) -> Message:
    return {
        "type": "frame",
        "chunk_id": chunk_id,
        "frame": saved.frame,
        "output_file": saved.path,
        "render_time": saved.render_time,
    }


def chunk_done(chunk_id: int, result: ChunkResult) -> Message:
    return {
        "type": "chunk_done",
        "chunk_id": chunk_id,
        "ok": result.ok,
        "exit_code": result.exit_code,
        "canceled": result.canceled,
        "frames_done": list(result.frames_done),
        "error": result.error,
        "log_tail": [] if result.ok else list(result.log_tail),
    }


def rejected(chunk_id: Any, reason: str) -> Message:
    return {"type": "rejected", "chunk_id": chunk_id, "reason": reason}


def system(command: Any, request: Any, data: Message | None, error: str | None = None) -> Message:
    message: Message = {"type": "system", "command": command, "request": request}
    if error is None:
        message["data"] = data
    else:
        message["error"] = error
    return message


def ping(t: float) -> Message:
    return {"type": "ping", "t": t}


def pong(t: Any) -> Message:
    return {"type": "pong", "t": t}


def _int(message: Message, key: str) -> int:
    value = message.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise NodeError(f"'{key}' must be an integer")
    return value


def _optional_text(message: Message, key: str) -> str | None:
    value = message.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise NodeError(f"'{key}' must be a string")
    return value


def parse_render(message: Message) -> RenderOrder:
    """A `render` order as a `RenderOrder`; NodeError naming the first bad field."""
    chunk_id = _int(message, "chunk_id")
    blend_file = _optional_text(message, "blend_file")
    if blend_file is None:
        raise NodeError("'blend_file' is missing")
    frames = message.get("frames")
    if not isinstance(frames, list) or not frames:
        raise NodeError("'frames' must be a non-empty list of frame numbers")
    unique: list[int] = []
    seen: set[int] = set()
    for number in frames:
        if not isinstance(number, int) or isinstance(number, bool):
            raise NodeError("'frames' must be a non-empty list of frame numbers")
        # blender -b reads "-s -5" as "5 before the end": negative frames cannot be asked for.
        if number < 0:
            raise NodeError(f"frame {number} is negative; blender -b cannot render it")
        if number not in seen:
            seen.add(number)
            unique.append(number)
    timeout = message.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise NodeError("'timeout' must be a positive number of seconds")
    job_id = message.get("job_id")
    return RenderOrder(
        chunk_id=chunk_id,
        blend_file=blend_file,
        frames=tuple(unique),
        output=_optional_text(message, "output"),
        format=_optional_text(message, "format"),
        job_id=job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None,
        timeout=float(timeout) if timeout is not None else None,
    )
