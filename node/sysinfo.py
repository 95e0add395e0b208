"""What the node tells the master about its machine: identity, CPUs, memory, Blender."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from brender.node.errors import NodeError

if TYPE_CHECKING:
    from brender.node.engines import Engine

log = logging.getLogger(__name__)

VERSION_TIMEOUT = 60.0
_VERSION = re.compile(r"^Blender (\d+\.\d+(?:\.\d+)?)", re.MULTILINE)
_NODE_ID = re.compile(r"^[0-9a-f]{32}$")
_NO_MAC = {"", "00:00:00:00:00:00"}


def hostname() -> str:
    return socket.gethostname()


def cpu_count() -> int:
    return psutil.cpu_count(logical=True) or os.cpu_count() or 1


def mac_address() -> str | None:
    """The MAC address of the first non-loopback interface that has a real one."""
    for name, addresses in psutil.net_if_addrs().items():
        if name == "lo" or name.startswith("lo:"):
            continue
        for address in addresses:
            if address.family != psutil.AF_LINK:
                continue
            mac = address.address.lower().replace("-", ":")
            if mac not in _NO_MAC and len(mac) == 17:
                return mac
    return None


def memory() -> dict[str, Any]:
    """The `memory` answer of a `system` order, in bytes."""
    vm = psutil.virtual_memory()
    return {"total": vm.total, "available": vm.available, "used": vm.used, "percent": vm.percent}


def info(blender_version: str, chunk_id: int | None) -> dict[str, Any]:
    """The `info` answer of a `system` order."""
    try:
        load = [round(value, 2) for value in psutil.getloadavg()]
    except (AttributeError, OSError):
        load = []
    return {
        "hostname": hostname(),
        "cpus": cpu_count(),
        # Since the previous call: the node primes it at start, so this never blocks.
        "cpu_percent": psutil.cpu_percent(interval=None),
        "load": load,
        "memory": memory(),
        "blender_version": blender_version,
        "busy": chunk_id is not None,
        "chunk_id": chunk_id,
    }


def node_id(work_dir: Path) -> str:
    """The node's stable id, created once in `<work-dir>/node_id`."""
    path = work_dir / "node_id"
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeError(f"cannot read the node id in {path}: {exc}") from None
    if _NODE_ID.match(existing):
        return existing
    if existing:
        log.warning("%s holds no valid node id; making a new one", path)
    new = uuid.uuid4().hex
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name("node_id.partial")
        partial.write_text(new + "\n", encoding="ascii")
        os.replace(partial, path)
    except OSError as exc:
        raise NodeError(f"cannot write the node id in {path}: {exc.strerror or exc}") from None
    log.info("new node id %s in %s", new, path)
    return new


def blender_version(blender: str, timeout: float = VERSION_TIMEOUT) -> str:
    """Run `blender --version` and return e.g. "3.4.1"; NodeError when it cannot."""
    where = f"cannot run Blender at {blender!r}"
    try:
        done = subprocess.run(
            [blender, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise NodeError(f"{where}: no answer to --version within {timeout:g} s") from None
    except OSError as exc:
        raise NodeError(f"{where}: {exc.strerror or exc}") from None
    text = done.stdout.decode("utf-8", errors="replace")
    match = _VERSION.search(text)
    if match is None:
        said = repr(text.strip().splitlines()[0][:200]) if text.strip() else "nothing"
        raise NodeError(
            f"{where}: it printed no Blender version (exit code {done.returncode}, said {said})"
        )
    return match.group(1)


def engines(specs: Sequence[str]) -> list[Engine]:
    """Every Blender the node was given, probed once: version and Cycles devices. A binary
    whose device probe fails still counts, with its `--version` and CPU only."""
    from brender.node.engines import Engine, probe

    found: list[Engine] = []
    for spec in specs:
        try:
            found.append(probe(spec))
        except NodeError as exc:
            if spec == "bpy":
                raise
            version = blender_version(spec)  # raises a NodeError of its own when unusable
            log.warning("%s; taking Blender %s at %s with the CPU only", exc, version, spec)
            found.append(Engine("binary", spec, version, ("CPU",)))
    return found
