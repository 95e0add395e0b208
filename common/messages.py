"""Every message of docs/protocol.md as a frozen dataclass; the node and the server both use it.

A message goes on the wire as `wire.encode(message.to_wire())` and comes off it as
`from_node(wire.decode(line))` (on the server) or `from_server(…)` (on the node); parsing checks
every field's type and raises `MessageError` naming the first bad one, so a handler only ever
sees well-formed messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from brender.paths import path_problem
from brender.wire import MAX_INT, PROTOCOL_VERSION

Raw = dict[str, Any]


class MessageError(ValueError):
    """A message whose type is unknown or whose fields are missing or of the wrong type."""


# -- field readers ------------------------------------------------------------------------------


def _int(m: Raw, key: str, default: int | None = None) -> int:
    value = m.get(key, default)
    if type(value) is not int or not -MAX_INT <= value <= MAX_INT:
        raise MessageError(f"'{key}' must be an integer (|n| <= 2**53)")
    return value


def _opt_int(m: Raw, key: str) -> int | None:
    value = m.get(key)
    if value is None:
        return None
    if type(value) is not int or not -MAX_INT <= value <= MAX_INT:
        raise MessageError(f"'{key}' must be an integer (|n| <= 2**53) or null")
    return value


def _str(m: Raw, key: str, default: str | None = None) -> str:
    value = m.get(key, default)
    if not isinstance(value, str):
        raise MessageError(f"'{key}' must be a string")
    return value


def _opt_str(m: Raw, key: str) -> str | None:
    value = m.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MessageError(f"'{key}' must be a string or null")
    return value


def _opt_number(m: Raw, key: str) -> float | None:
    value = m.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise MessageError(f"'{key}' must be a number or null")
    return float(value)


def _bool(m: Raw, key: str, default: bool = False) -> bool:
    value = m.get(key, default)
    if not isinstance(value, bool):
        raise MessageError(f"'{key}' must be true or false")
    return value


def _ints(m: Raw, key: str) -> tuple[int, ...]:
    value = m.get(key, [])
    if not isinstance(value, list) or not all(
        type(n) is int and -MAX_INT <= n <= MAX_INT for n in value
    ):
        raise MessageError(f"'{key}' must be a list of integers")
    return tuple(value)


def _strs(m: Raw, key: str) -> tuple[str, ...]:
    value = m.get(key) or []
    if not isinstance(value, list):
        raise MessageError(f"'{key}' must be a list of strings")
    return tuple(str(line) for line in value)


def _dict(m: Raw, key: str) -> Raw | None:
    value = m.get(key)
    if value is not None and not isinstance(value, dict):
        raise MessageError(f"'{key}' must be an object or null")
    return value


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
    )
)
"""Fields left out of the line when None."""
_NESTED = frozenset(("chunk", "blenders"))
"""Fields holding messages' parts (`HeldChunk`, `BlenderInfo`s), written as their objects."""

PHASES = ("loading", "synchronizing", "rendering", "compositing", "saving")
"""A frame's phases, as `progress` names them."""

# -- the messages -------------------------------------------------------------------------------


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
                value = value.to_wire() if name == "chunk" else [b.to_wire() for b in value]
            out[name] = value
        return out


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
        kind = _str(m, "kind", "binary")
        if kind not in ("binary", "bpy"):
            raise MessageError("a Blender's 'kind' must be 'binary' or 'bpy'")
        version = _str(m, "version")
        if not version.strip() or len(version) > 64:
            raise MessageError("a Blender's 'version' must be a short non-empty string")
        return cls(version, kind, _strs(m, "devices") or ("CPU",))


def _blenders(m: Raw) -> tuple[BlenderInfo, ...]:
    value = m.get("blenders")
    if value is None:
        # A node from before several Blenders: its one Blender, as `blender_version` says.
        version = m.get("blender_version")
        return (BlenderInfo(version),) if isinstance(version, str) and version else ()
    if not isinstance(value, list) or len(value) > 32:
        raise MessageError("'blenders' must be a list (at most 32)")
    return tuple(BlenderInfo.parse(b) for b in value)


@dataclass(frozen=True, slots=True)
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    node_id: str
    name: str
    hostname: str = ""
    mac_address: str | None = None
    cpus: int = 0
    memory: int = 0
    blender_version: str = ""
    """The first of `blenders` (what older masters read)."""
    token: str | None = None
    chunk: HeldChunk | None = None
    protocol: int = PROTOCOL_VERSION
    blenders: tuple[BlenderInfo, ...] = ()
    allow_autoexec: bool = False
    """Started with --allow-autoexec: it may run a file's Python (drivers, scripts)."""
    warm: bool = False
    """It keeps Blender loaded between chunks of a file (node/warm.py): a chunk costs it no
    start-up, so automatic chunking gives it short ones (server/chunking.py)."""
    output_roots: tuple[str, ...] | None = None
    """The folders it may write frames under (its work dir and `--output-root`s,
    brender.roots); None: it did not say (an older node), so it may be sent any output."""
    output_beside_blend: bool = False
    """It may also write under the folder of a job's .blend (`--output-beside-blend`)."""

    @classmethod
    def parse(cls, m: Raw) -> Hello:
        held = _dict(m, "chunk")
        return cls(
            node_id=_str(m, "node_id"),
            name=_str(m, "name", ""),
            hostname=_str(m, "hostname", ""),
            mac_address=_opt_str(m, "mac_address"),
            cpus=_int(m, "cpus", 0),
            memory=_int(m, "memory", 0),
            blender_version=_str(m, "blender_version", ""),
            token=_opt_str(m, "token"),
            chunk=None
            if held is None
            else HeldChunk(_int(held, "chunk_id"), _bool(held, "running", True)),
            protocol=_int(m, "protocol", 1),
            blenders=_blenders(m),
            allow_autoexec=_bool(m, "allow_autoexec"),
            warm=_bool(m, "warm"),
            output_roots=_roots(m),
            output_beside_blend=_bool(m, "output_beside_blend"),
        )


def _roots(m: Raw) -> tuple[str, ...] | None:
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


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    client_id: int
    heartbeat: float
    server_version: str
    http_port: int | None = None
    """The server's HTTP port: where a node fetches uploaded jobs' files and sends frames."""
    upload_key: str | None = None
    """The upload key for the chunk the hello named, when the master kept it on this node and
    it is of an uploaded job: a fresh one after a restart, which the node's frame PUTs use."""

    @classmethod
    def parse(cls, m: Raw) -> Welcome:
        beat = _opt_number(m, "heartbeat")
        port = _opt_int(m, "http_port")
        if port is not None and not 0 < port < 65536:
            raise MessageError("'http_port' must be a port number")
        return cls(
            _int(m, "client_id"), beat or 0.0, _str(m, "server_version", ""), port, _upload_key(m)
        )


@dataclass(frozen=True, slots=True)
class Error(Message):
    TYPE: ClassVar[str] = "error"
    code: str
    message: str

    @classmethod
    def parse(cls, m: Raw) -> Error:
        return cls(_str(m, "code", "error"), _str(m, "message", ""))


UPLOAD_KEY_HEADER = "X-Brender-Upload-Key"
"""The HTTP header of a frame PUT that carries its order's `upload_key`."""


@dataclass(frozen=True, slots=True)
class Render(Message):
    """An order: render these frames of this file (every path computed by the server)."""

    TYPE: ClassVar[str] = "render"
    chunk_id: int
    job_id: int | None
    blend_file: str
    output: str | None
    format: str | None
    frames: tuple[int, ...]
    timeout: float | None = None
    ack: int | None = None
    """The highest report `seq` of this node that is durable (saves a separate `ack`)."""
    blender: str | None = None
    """The version of the node's Blender to render with (one of its `hello.blenders`)."""
    autoexec: bool = False
    """Run the file's Python (`-y`); else Blender gets `--disable-autoexec`."""
    manifest: str | None = None
    """An uploaded job: the SHA-256 of its manifest (a blob). `blend_file` is then the main
    file's path in the job's tree and `output` a file-name pattern (docs/protocol.md)."""
    upload_key: str | None = None
    """An uploaded job: this dispatch's secret, sent with each frame PUT
    (`X-Brender-Upload-Key`); the master takes a frame only with the key of its chunk's run."""

    @classmethod
    def parse(cls, m: Raw) -> Render:
        frames = m.get("frames")
        if (
            not isinstance(frames, list)
            or not frames
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in frames)
        ):
            raise MessageError("'frames' must be a non-empty list of frame numbers")
        for n in frames:
            # blender -b reads "-s -5" as "5 before the end": negative frames cannot be asked for.
            if n < 0:
                raise MessageError(f"frame {n} is negative; blender -b cannot render it")
        blend = _opt_str(m, "blend_file")
        if not blend:
            raise MessageError("'blend_file' is missing")
        timeout = m.get("timeout")
        if timeout is not None and (
            not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0
        ):
            raise MessageError("'timeout' must be a positive number of seconds")
        return cls(
            chunk_id=_int(m, "chunk_id"),
            job_id=_opt_int(m, "job_id"),
            blend_file=blend,
            output=_opt_str(m, "output") or None,
            format=_opt_str(m, "format") or None,
            frames=tuple(dict.fromkeys(frames)),  # each frame once, in the order given
            timeout=float(timeout) if timeout is not None else None,
            ack=_opt_int(m, "ack"),
            blender=_opt_str(m, "blender"),
            autoexec=_bool(m, "autoexec"),
            manifest=_manifest(m),
            upload_key=_upload_key(m),
        )


def _upload_key(m: Raw) -> str | None:
    value = _opt_str(m, "upload_key")
    if value is not None and (not 0 < len(value) <= 128 or value.strip(_KEY_CHARS)):
        raise MessageError("'upload_key' must be 1 to 128 URL-safe characters (A-Z a-z 0-9 - _)")
    return value


_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _manifest(m: Raw) -> str | None:
    value = _opt_str(m, "manifest")
    if value is not None and (len(value) != 64 or value.strip("0123456789abcdef")):
        raise MessageError("'manifest' must be a SHA-256 (64 lowercase hex digits)")
    return value


@dataclass(frozen=True, slots=True)
class Cancel(Message):
    TYPE: ClassVar[str] = "cancel"
    chunk_id: int

    @classmethod
    def parse(cls, m: Raw) -> Cancel:
        return cls(_int(m, "chunk_id"))


@dataclass(frozen=True, slots=True)
class SystemRequest(Message):
    TYPE: ClassVar[str] = "system"
    command: str
    request: int

    @classmethod
    def parse(cls, m: Raw) -> SystemRequest:
        return cls(_str(m, "command", ""), _int(m, "request"))


@dataclass(frozen=True, slots=True)
class SystemReply(Message):
    TYPE: ClassVar[str] = "system"
    command: str
    request: int
    data: Raw | None = None
    error: str | None = None

    @classmethod
    def parse(cls, m: Raw) -> SystemReply:
        return cls(
            _str(m, "command", ""), _int(m, "request"), _dict(m, "data"), _opt_str(m, "error")
        )

    def to_wire(self) -> Raw:
        out: Raw = {"type": self.TYPE, "command": self.command, "request": self.request}
        if self.error is None:
            out["data"] = self.data
        else:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """Server → node: every report up to `seq` is durable; the node may forget them."""

    TYPE: ClassVar[str] = "ack"
    seq: int

    @classmethod
    def parse(cls, m: Raw) -> Ack:
        return cls(_int(m, "seq"))


@dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE: ClassVar[str] = "ping"
    t: Any = None

    @classmethod
    def parse(cls, m: Raw) -> Ping:
        return cls(m.get("t"))


@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    t: Any = None

    @classmethod
    def parse(cls, m: Raw) -> Pong:
        return cls(m.get("t"))


@dataclass(frozen=True, slots=True)
class Progress(Message):
    """How far the node is with a frame: `phase` (one of `PHASES`), `samples` done of
    `total`, Blender's own `remaining` seconds; a node of the first protocol sends only
    `chunk_id` and `frame` (the frame started)."""

    TYPE: ClassVar[str] = "progress"
    chunk_id: int
    frame: int
    phase: str | None = None
    samples: int | None = None
    total: int | None = None
    remaining: float | None = None

    @classmethod
    def parse(cls, m: Raw) -> Progress:
        phase = _opt_str(m, "phase")
        if phase is not None and phase not in PHASES:
            raise MessageError(f"'phase' must be one of {', '.join(PHASES)}")
        return cls(
            _int(m, "chunk_id"),
            _int(m, "frame"),
            phase,
            _opt_int(m, "samples"),
            _opt_int(m, "total"),
            _opt_number(m, "remaining"),
        )


@dataclass(frozen=True, slots=True)
class FrameDone(Message):
    """A frame was saved. `seq` numbers the node's reports (see `Ack`)."""

    TYPE: ClassVar[str] = "frame"
    chunk_id: int
    frame: int
    output_file: str
    render_time: float | None = None
    seq: int | None = None

    @classmethod
    def parse(cls, m: Raw) -> FrameDone:
        return cls(
            _int(m, "chunk_id"),
            _int(m, "frame"),
            _str(m, "output_file", ""),
            _opt_number(m, "render_time"),
            _opt_int(m, "seq"),
        )


@dataclass(frozen=True, slots=True)
class ChunkDone(Message):
    """Blender exited (or was stopped): how the chunk ended."""

    TYPE: ClassVar[str] = "chunk_done"
    chunk_id: int
    ok: bool
    exit_code: int | None = None
    canceled: bool = False
    frames_done: tuple[int, ...] = field(default=())
    error: str | None = None
    log_tail: tuple[str, ...] = field(default=())
    seq: int | None = None

    @classmethod
    def parse(cls, m: Raw) -> ChunkDone:
        return cls(
            chunk_id=_int(m, "chunk_id"),
            ok=_bool(m, "ok"),
            exit_code=_opt_int(m, "exit_code"),
            canceled=_bool(m, "canceled"),
            frames_done=_ints(m, "frames_done"),
            error=_opt_str(m, "error"),
            log_tail=_strs(m, "log_tail"),
            seq=_opt_int(m, "seq"),
        )


@dataclass(frozen=True, slots=True)
class Rejected(Message):
    TYPE: ClassVar[str] = "rejected"
    chunk_id: int | None
    reason: str
    file_version: str | None = None
    """Set when the node read the file and none of its Blenders can open it: the version
    that saved it, which the master then keeps on the job."""
    outside_roots: bool | None = None
    """True: the order's output is outside the node's output roots: the master sends it no more
    chunks of that job."""

    @classmethod
    def parse(cls, m: Raw) -> Rejected:
        return cls(
            _opt_int(m, "chunk_id"),
            _str(m, "reason", ""),
            _opt_str(m, "file_version"),
            _bool(m, "outside_roots") or None,
        )


# -- decoding by direction ----------------------------------------------------------------------

Parser = Callable[[Raw], Message]

FROM_NODE: dict[str, Parser] = {
    cls.TYPE: cls.parse
    for cls in (Hello, Progress, FrameDone, ChunkDone, Rejected, SystemReply, Ping, Pong)
}
FROM_SERVER: dict[str, Parser] = {
    cls.TYPE: cls.parse for cls in (Welcome, Error, Render, Cancel, SystemRequest, Ack, Ping, Pong)
}


def _parse(table: dict[str, Parser], m: Raw) -> Message:
    kind = m.get("type")
    parser = table.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise MessageError(f"unknown message type {kind!r}")
    return parser(m)


def from_node(m: Raw) -> Message:
    """A node's message (on the server); MessageError if it is not one of docs/protocol.md."""
    return _parse(FROM_NODE, m)


def from_server(m: Raw) -> Message:
    """The server's message (on the node)."""
    return _parse(FROM_SERVER, m)
