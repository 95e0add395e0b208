"""Every message of docs/protocol.md as a frozen dataclass; the node and the server both use it.

A message goes on the wire as `wire.encode(message.to_wire())` and comes off it as
`from_node(wire.decode(line))` (on the server) or `from_server(…)` (on the node); parsing checks
every field's type and raises `MessageError` naming the first bad one, so a handler only ever
sees well-formed messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from brender.fields import (
    BlenderInfo,
    HeldChunk,
    Message,
    MessageError,
    Raw,
    blender_infos,
    boolean,
    integer,
    integers,
    manifest,
    obj,
    opt_integer,
    opt_number,
    opt_string,
    roots,
    string,
    strings,
    upload_key,
)
from brender.wire import FOLDED_REPORTS, PROTOCOL_VERSION

PHASES = ("loading", "synchronizing", "rendering", "compositing", "saving")
"""A frame's phases, as `progress` names them."""

# -- the messages -------------------------------------------------------------------------------


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
        held = obj(m, "chunk")
        return cls(
            node_id=string(m, "node_id"),
            name=string(m, "name", ""),
            hostname=string(m, "hostname", ""),
            mac_address=opt_string(m, "mac_address"),
            cpus=integer(m, "cpus", 0),
            memory=integer(m, "memory", 0),
            blender_version=string(m, "blender_version", ""),
            token=opt_string(m, "token"),
            chunk=None
            if held is None
            else HeldChunk(integer(held, "chunk_id"), boolean(held, "running", True)),
            protocol=integer(m, "protocol", 1),
            blenders=blender_infos(m),
            allow_autoexec=boolean(m, "allow_autoexec"),
            warm=boolean(m, "warm"),
            output_roots=roots(m),
            output_beside_blend=boolean(m, "output_beside_blend"),
        )


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
    protocol: int | None = None
    """The master's protocol version (None: 1, a master from before it was said); from 2 it
    reads the frame reports a `chunk_done` carries (`saved`)."""

    @classmethod
    def parse(cls, m: Raw) -> Welcome:
        beat = opt_number(m, "heartbeat")
        port = opt_integer(m, "http_port")
        if port is not None and not 0 < port < 65536:
            raise MessageError("'http_port' must be a port number")
        return cls(
            integer(m, "client_id"),
            beat or 0.0,
            string(m, "server_version", ""),
            port,
            upload_key(m),
            opt_integer(m, "protocol"),
        )

    def folds(self) -> bool:
        """Whether this master reads a `chunk_done`'s `saved` frame reports."""
        return (self.protocol or 1) >= FOLDED_REPORTS


@dataclass(frozen=True, slots=True)
class Error(Message):
    TYPE: ClassVar[str] = "error"
    code: str
    message: str

    @classmethod
    def parse(cls, m: Raw) -> Error:
        return cls(string(m, "code", "error"), string(m, "message", ""))


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
        blend = opt_string(m, "blend_file")
        if not blend:
            raise MessageError("'blend_file' is missing")
        timeout = m.get("timeout")
        if timeout is not None and (
            not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0
        ):
            raise MessageError("'timeout' must be a positive number of seconds")
        return cls(
            chunk_id=integer(m, "chunk_id"),
            job_id=opt_integer(m, "job_id"),
            blend_file=blend,
            output=opt_string(m, "output") or None,
            format=opt_string(m, "format") or None,
            frames=tuple(dict.fromkeys(frames)),  # each frame once, in the order given
            timeout=float(timeout) if timeout is not None else None,
            ack=opt_integer(m, "ack"),
            blender=opt_string(m, "blender"),
            autoexec=boolean(m, "autoexec"),
            manifest=manifest(m),
            upload_key=upload_key(m),
        )


@dataclass(frozen=True, slots=True)
class Cancel(Message):
    TYPE: ClassVar[str] = "cancel"
    chunk_id: int

    @classmethod
    def parse(cls, m: Raw) -> Cancel:
        return cls(integer(m, "chunk_id"))


@dataclass(frozen=True, slots=True)
class SystemRequest(Message):
    TYPE: ClassVar[str] = "system"
    command: str
    request: int

    @classmethod
    def parse(cls, m: Raw) -> SystemRequest:
        return cls(string(m, "command", ""), integer(m, "request"))


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
            string(m, "command", ""), integer(m, "request"), obj(m, "data"), opt_string(m, "error")
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
        return cls(integer(m, "seq"))


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
        phase = opt_string(m, "phase")
        if phase is not None and phase not in PHASES:
            raise MessageError(f"'phase' must be one of {', '.join(PHASES)}")
        return cls(
            integer(m, "chunk_id"),
            integer(m, "frame"),
            phase,
            opt_integer(m, "samples"),
            opt_integer(m, "total"),
            opt_number(m, "remaining"),
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
        return cls._read(integer(m, "chunk_id"), m, opt_integer(m, "seq"))

    def folded(self) -> Raw:
        """As one of a `chunk_done`'s `saved`: the frame's own fields (the chunk and the
        number are the `chunk_done`'s)."""
        return {"frame": self.frame, "output_file": self.output_file,
                "render_time": self.render_time}  # fmt: skip

    @classmethod
    def parse_folded(cls, chunk_id: int, m: Any) -> FrameDone:
        if not isinstance(m, dict):
            raise MessageError("each of 'saved' must be an object")
        return cls._read(chunk_id, m, None)

    @classmethod
    def _read(cls, chunk_id: int, m: Raw, seq: int | None) -> FrameDone:
        """The frame's own fields, on a `frame` line or folded into a `chunk_done`."""
        return cls(chunk_id, integer(m, "frame"), string(m, "output_file", ""),
                   opt_number(m, "render_time"), seq)  # fmt: skip


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
    saved: tuple[FrameDone, ...] | None = None
    """Frame reports of the chunk not sent yet, folded into its end (one line, not one per
    frame) when the master's `welcome` says it reads them; handled before the end, in order."""

    @classmethod
    def parse(cls, m: Raw) -> ChunkDone:
        chunk_id = integer(m, "chunk_id")
        raw = m.get("saved")
        if raw is not None and not isinstance(raw, list):
            raise MessageError("'saved' must be a list of frame reports or null")
        saved = None if raw is None else tuple(FrameDone.parse_folded(chunk_id, r) for r in raw)
        return cls(
            chunk_id=chunk_id,
            ok=boolean(m, "ok"),
            exit_code=opt_integer(m, "exit_code"),
            canceled=boolean(m, "canceled"),
            frames_done=integers(m, "frames_done"),
            error=opt_string(m, "error"),
            log_tail=strings(m, "log_tail"),
            seq=opt_integer(m, "seq"),
            saved=saved,
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
            opt_integer(m, "chunk_id"),
            string(m, "reason", ""),
            opt_string(m, "file_version"),
            boolean(m, "outside_roots") or None,
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
