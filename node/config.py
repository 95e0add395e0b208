"""The node's settings: flags, then environment (`BRENDER_*`), then defaults."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import psutil

from brender import wire
from brender.node.errors import NodeError
from brender.sizes import parse_size
from brender.tls import ClientTLS, TLSSettingsError, find_client_tls
from brender.tokens import TokenFileError, find_token

if TYPE_CHECKING:
    from brender.node.engines import Engine  # engines imports find_blender from here

DEFAULT_MASTER = f"127.0.0.1:{wire.DEFAULT_TCP_PORT}"
BPY = "bpy"
DEFAULT_WARM_IDLE = 60.0
"""Seconds a warm Blender waits for the next chunk before the node stops it."""
DEFAULT_WARM_MEMORY_SHARE = 0.75
"""Without --warm-memory, a warm Blender using more than this share of the machine's memory
is stopped after its chunk."""


@dataclass
class NodeConfig:
    """Everything `run_node` needs."""

    blender: str
    work_dir: Path
    name: str
    host: str = "127.0.0.1"
    port: int = wire.DEFAULT_TCP_PORT
    token: str | None = None
    threads: int | None = None
    max_backoff: float = 5.0
    silence_timeout: float | None = None
    blender_version: str | None = None
    """Known already (the CLI checked it); None makes `run_node` ask Blender."""
    more_blenders: tuple[str, ...] = ()
    """Further Blenders (`--blender` again): executables, or `bpy` for Blender from PyPI."""
    allow_autoexec: bool = False
    """Run a file's Python scripts when its job asks for it (`--allow-autoexec`)."""
    engines: list[Engine] | None = None
    """Every Blender with its version and devices (the CLI probed them); None: `run_node` does."""
    warm: bool = False
    """Keep one Blender per file between chunks (`--warm`, the CLI's default)."""
    warm_idle: float | None = DEFAULT_WARM_IDLE
    """Seconds a warm Blender may wait for a chunk (None: for ever)."""
    warm_memory: int | None = None
    """Bytes of resident memory above which a warm Blender is stopped (None: no limit)."""
    cache_size: int = 20 * 1024**3
    """The most the cache of uploaded jobs' files may hold (`--cache-size`), bytes."""
    tls: ClientTLS | None = None
    """How the master's certificate is checked (`--master tls://…`); None: plain TCP."""
    output_roots: tuple[Path, ...] = ()
    """Folders besides the work dir it may write frames under (`--output-root`)."""
    output_beside_blend: bool = False
    """It may write under the folder of a job's .blend too (`--output-beside-blend`)."""

    @property
    def roots(self) -> list[str]:
        """Every folder it may write frames under, the work dir first (brender.roots)."""
        return list(dict.fromkeys(str(p) for p in (self.work_dir, *self.output_roots)))

    @property
    def blender_specs(self) -> list[str]:
        return [self.blender, *self.more_blenders]

    @property
    def master(self) -> str:
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return f"tls://{address}" if self.tls is not None else address


def wants_tls(text: str) -> bool:
    """The master's address asks for TLS: `tls://host:port`."""
    return text.strip().lower().startswith("tls://")


def parse_master(text: str) -> tuple[str, int]:
    """`host:port`, `host`, `[::1]:6000` or `[::1]` as (host, port), each also as
    `tls://…` (see `wants_tls`)."""
    text = text.strip()
    if wants_tls(text):
        text = text[len("tls://") :]
    elif "://" in text:
        raise NodeError(f"bad master address {text!r}: write host:port, or tls://host:port")
    port_text = ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise NodeError(f"bad master address {text!r}: expected [IPv6]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text  # a bare name, IPv4 or unbracketed IPv6 address
    if not host:
        raise NodeError(f"bad master address {text!r}: no host")
    if not port_text:
        return host, wire.DEFAULT_TCP_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise NodeError(f"bad master address {text!r}: port must be 1-65535")
    return host, int(port_text)


def default_work_dir() -> Path:
    return Path(platformdirs.user_data_dir("brender")) / "node"


def find_blender(value: str | None) -> str:
    """The Blender executable to run: as given, or `blender` looked up on PATH; `bpy` stays
    `bpy` (Blender as a Python module, run in a child Python)."""
    if value == BPY:
        return value
    if value and (os.sep in value or (os.altsep and os.altsep in value)):
        return value
    name = value or "blender"
    found = shutil.which(name)
    if found is None:
        raise NodeError(
            f"cannot run Blender at {name!r}: not found on PATH (use --blender or BRENDER_BLENDER)"
        )
    return found


def _number(value: str, what: str, kind: type[int] | type[float]) -> float:
    try:
        number = kind(value)
    except ValueError:
        raise NodeError(f"{what} must be a number, not {value!r}") from None
    if number < 0:
        raise NodeError(f"{what} must not be negative")
    return number


def resolve(
    *,
    environ: Mapping[str, str],
    master: str | None = None,
    blender: str | Sequence[str] | None = None,
    name: str | None = None,
    work_dir: str | None = None,
    token: str | None = None,
    token_file: str | None = None,
    threads: str | None = None,
    max_backoff: str | None = None,
    silence_timeout: str | None = None,
    allow_autoexec: bool | None = None,
    warm: bool | None = None,
    warm_idle: str | None = None,
    warm_memory: str | None = None,
    cache_size: str | None = None,
    tls_ca: str | None = None,
    tls_fingerprint: str | None = None,
    output_roots: Sequence[str] | None = None,
    output_beside_blend: bool | None = None,
) -> NodeConfig:
    """Flags (the arguments) win over the environment, which wins over the defaults.

    `blender` may name several Blenders (the flag given more than once); BRENDER_BLENDER holds
    one, or several separated by the path separator (`bpy:/opt/blender-4.2/blender`)."""
    if isinstance(blender, str):
        blender = [blender]
    specs = list(blender or [])
    if not specs and environ.get("BRENDER_BLENDER"):
        specs = [p for p in environ["BRENDER_BLENDER"].split(os.pathsep) if p]
    found = [find_blender(spec) for spec in specs] or [find_blender(None)]
    autoexec = allow_autoexec
    if autoexec is None:
        autoexec = environ.get("BRENDER_ALLOW_AUTOEXEC", "").lower() in ("1", "true", "yes")
    master_text = master or environ.get("BRENDER_MASTER") or DEFAULT_MASTER
    host, port = parse_master(master_text)
    try:
        tls = find_client_tls(wants_tls(master_text), tls_ca, tls_fingerprint, environ)
    except TLSSettingsError as exc:
        raise NodeError(str(exc)) from None
    threads_text = threads or environ.get("BRENDER_THREADS")
    backoff = _number(max_backoff, "--max-backoff", float) if max_backoff else 5.0
    if backoff < 0.5:
        raise NodeError("--max-backoff must be at least 0.5 seconds")
    cache_text = cache_size or environ.get("BRENDER_CACHE_SIZE") or "20G"
    try:
        cache_bytes = parse_size(cache_text)
    except ValueError as exc:
        raise NodeError(f"--cache-size: {exc}") from None
    silence = _number(silence_timeout, "--silence-timeout", float) if silence_timeout else 0
    if warm is None:
        warm = environ.get("BRENDER_WARM", "1").lower() not in ("0", "false", "no", "off")
    idle_text = warm_idle or environ.get("BRENDER_WARM_IDLE")
    idle = _number(idle_text, "--warm-idle", float) if idle_text else DEFAULT_WARM_IDLE
    memory_text = warm_memory or environ.get("BRENDER_WARM_MEMORY")
    if memory_text:
        memory = int(_number(memory_text, "--warm-memory", float) * 2**20)
    else:
        memory = int(psutil.virtual_memory().total * DEFAULT_WARM_MEMORY_SHARE)
    roots = list(output_roots or [])
    if not roots and environ.get("BRENDER_OUTPUT_ROOTS"):
        roots = [p for p in environ["BRENDER_OUTPUT_ROOTS"].split(os.pathsep) if p]
    if output_beside_blend is None:
        beside = environ.get("BRENDER_OUTPUT_BESIDE_BLEND", "")
        output_beside_blend = beside.lower() in ("1", "true", "yes")
    return NodeConfig(
        output_roots=tuple(Path(r).expanduser().absolute() for r in roots),
        output_beside_blend=output_beside_blend,
        blender=found[0],
        more_blenders=tuple(dict.fromkeys(found[1:])),
        allow_autoexec=autoexec,
        work_dir=Path(work_dir or environ.get("BRENDER_WORK_DIR") or default_work_dir())
        .expanduser()
        .absolute(),
        name=name or environ.get("BRENDER_NODE_NAME") or socket.gethostname(),
        host=host,
        port=port,
        token=_token(token, token_file, environ),
        threads=int(_number(threads_text, "threads", int)) if threads_text else None,
        max_backoff=backoff,
        silence_timeout=silence or None,
        warm=warm,
        warm_idle=idle or None,
        warm_memory=memory or None,
        cache_size=cache_bytes,
        tls=tls,
    )


def _token(token: str | None, token_file: str | None, environ: Mapping[str, str]) -> str | None:
    try:
        return find_token(token, token_file, environ)
    except TokenFileError as exc:
        raise NodeError(str(exc)) from None
