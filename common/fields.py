"""The fields of the protocol's messages (brender.messages): each reader checks one field of a
parsed line and raises `MessageError` naming it, the parts some messages hold (`HeldChunk`,
`BlenderInfo`), and the messages' common shape (`Message`: how their fields go on the wire).
Integers must be within ±2**53, as in the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from brender.paths import path_problem
from brender.wire import MAX_INT

Raw = dict[str, Any]
T = TypeVar("T")


class MessageError(ValueError):
    """A message whose type is unknown or whose fields are missing or of the wrong type."""


# -- field readers ------------------------------------------------------------------------------


def integer(m: Raw, key: str, default: int | None = None) -> int:
    value = m.get(key, default)
    if type(value) is not int or not -MAX_INT <= value <= MAX_INT:
        raise MessageError(f"'{key}' must be an integer (|n| <= 2**53)")
    return value


def opt_integer(m: Raw, key: str) -> int | None:
    return _or_null(integer, m, key)


def string(m: Raw, key: str, default: str | None = None) -> str:
    value = m.get(key, default)
    if not isinstance(value, str):
        raise MessageError(f"'{key}' must be a string")
    return value


def opt_string(m: Raw, key: str) -> str | None:
    return _or_null(string, m, key)


def _or_null(read: Callable[[Raw, str], T], m: Raw, key: str) -> T | None:
    """`read`'s field, or None when it is missing or null (the error says null is allowed)."""
    if m.get(key) is None:
        return None
    try:
        return read(m, key)
    except MessageError as exc:
        raise MessageError(f"{exc} or null") from None


def opt_number(m: Raw, key: str) -> float | None:
    value = m.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise MessageError(f"'{key}' must be a number or null")
    return float(value)


def boolean(m: Raw, key: str, default: bool = False) -> bool:
    value = m.get(key, default)
    if not isinstance(value, bool):
        raise MessageError(f"'{key}' must be true or false")
    return value


def integers(m: Raw, key: str) -> tuple[int, ...]:
    value = m.get(key, [])
    if not isinstance(value, list) or not all(
        type(n) is int and -MAX_INT <= n <= MAX_INT for n in value
    ):
        raise MessageError(f"'{key}' must be a list of integers")
    return tuple(value)


def strings(m: Raw, key: str) -> tuple[str, ...]:
    value = m.get(key) or []
    if not isinstance(value, list):
        raise MessageError(f"'{key}' must be a list of strings")
    return tuple(str(line) for line in value)


def obj(m: Raw, key: str) -> Raw | None:
    value = m.get(key)
    if value is not None and not isinstance(value, dict):
        raise MessageError(f"'{key}' must be an object or null")
    return value


def roots(m: Raw) -> tuple[str, ...] | None:
    value = m.get("output_roots")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > 64
        or not all(isinstance(r, str) and path_problem(r) is None for r in value)
    ):
        raise MessageError("'output_roots' must be a list of absolute paths (at most 64)")
    return tuple(value)


def upload_key(m: Raw) -> str | None:
    value = opt_string(m, "upload_key")
    if value is not None and (not 0 < len(value) <= 128 or value.strip(KEY_CHARS)):
        raise MessageError("'upload_key' must be 1 to 128 URL-safe characters (A-Z a-z 0-9 - _)")
    return value


KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def manifest(m: Raw) -> str | None:
    value = opt_string(m, "manifest")
    if value is not None and (len(value) != 64 or value.strip("0123456789abcdef")):
        raise MessageError("'manifest' must be a SHA-256 (64 lowercase hex digits)")
    return value


@dataclass(frozen=True, slots=True)
class HeldChunk:
    """The `chunk` of a `hello`: a chunk the node still renders, or has unsent reports of."""

    chunk_id: int
    running: bool

    def to_wire(self) -> Raw:
        return {"chunk_id": self.chunk_id, "running": self.running}


@dataclass(frozen=True, slots=True)
class BlenderInfo:
    """One Blender a node can run (`hello.blenders`): its version, how it runs (`binary`, or
    `bpy`: Blender as a Python module) and the Cycles device types it reports."""

    version: str
    kind: str = "binary"
    devices: tuple[str, ...] = ("CPU",)

    def to_wire(self) -> Raw:
        return {"version": self.version, "kind": self.kind, "devices": list(self.devices)}

    @classmethod
    def parse(cls, m: Any) -> BlenderInfo:
        if not isinstance(m, dict):
            raise MessageError("each of 'blenders' must be an object")
        kind = string(m, "kind", "binary")
        if kind not in ("binary", "bpy"):
            raise MessageError("a Blender's 'kind' must be 'binary' or 'bpy'")
        version = string(m, "version")
        if not version.strip() or len(version) > 64:
            raise MessageError("a Blender's 'version' must be a short non-empty string")
        return cls(version, kind, strings(m, "devices") or ("CPU",))


# -- the messages' common shape -----------------------------------------------------------------

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_OPTIONAL = frozenset(
    (
        "seq",
        "ack",
        "blender",
        "file_version",
        "manifest",
        "http_port",
        "phase",
        "samples",
        "total",
        "remaining",
        "output_roots",
        "outside_roots",
        "upload_key",
        "protocol",
        "saved",
    )
)
"""Fields left out of the line when None."""
_NESTED: dict[str, Callable[[Any], Any]] = {
    "chunk": lambda chunk: chunk.to_wire(),
    "blenders": lambda blenders: [b.to_wire() for b in blenders],
    "saved": lambda reports: [r.folded() for r in reports],
}
"""Fields holding messages' parts (`HeldChunk`, `BlenderInfo`s, folded `FrameDone`s), written
as their objects."""


class Message:
    """The common shape: a `TYPE`, and `to_wire` giving the JSON object (the `_OPTIONAL` fields
    left out when None, so old peers see exactly the lines they know)."""

    TYPE: ClassVar[str]
    __slots__ = ()

    def to_wire(self) -> Raw:
        out: Raw = {"type": self.TYPE}
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in fields(self))  # type: ignore[arg-type]
        for name in names:
            value = getattr(self, name)
            if value is None:
                if name in _OPTIONAL:
                    continue
            elif name in _NESTED:
                value = _NESTED[name](value)
            out[name] = value
        return out


def blender_infos(m: Raw) -> tuple[BlenderInfo, ...]:
    """A hello's `blenders` (an older node's one `blender_version` when it sends none)."""
    value = m.get("blenders")
    if value is None:
        # A node from before several Blenders: its one Blender, as `blender_version` says.
        version = m.get("blender_version")
        return (BlenderInfo(version),) if isinstance(version, str) and version else ()
    if not isinstance(value, list) or len(value) > 32:
        raise MessageError("'blenders' must be a list (at most 32)")
    return tuple(BlenderInfo.parse(b) for b in value)
