"""The Blenders a node can run: a `blender` binary, or the `bpy` module in this Python.

`probe` asks one of them, in a child process with a deadline, for its version and the Cycles
device types it sees; `Engine.command` is the argv prefix that renders with it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Literal

from brender.node.config import find_blender
from brender.node.errors import NodeError

log = logging.getLogger(__name__)

BPY = "bpy"
"""The `probe` spec (and `Engine.path`) of Blender as a Python module."""

MARKER = "BRENDER-PROBE "
DEVICE_TYPES = ("CPU", "CUDA", "OPTIX", "HIP", "ONEAPI", "METAL")
INSTALL_BPY = "pip install 'brender[bpy]'"

# Run inside Blender (or a plain Python that imports bpy): one marked JSON line on stdout.
# Any failure to list devices still answers, with the CPU alone.
PROBE_SCRIPT = f"""
import json, sys
def answer(data):
    sys.stdout.write({MARKER!r} + json.dumps(data) + "\\n")
    sys.stdout.flush()
try:
    import bpy
except ImportError as exc:
    answer({{"error": "no-bpy", "detail": str(exc)}})
    raise SystemExit(0)
def devices():
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
        compiled = {{item[0] for item in prefs.get_device_types(bpy.context)}}
        prefs.refresh_devices()
        found = {{d.type for d in prefs.devices if d.type in compiled}}
    except Exception:
        found = set()
    return ["CPU"] + [t for t in {DEVICE_TYPES[1:]!r} if t in found]
answer({{"version": ".".join(str(part) for part in bpy.app.version[:3]), "devices": devices()}})
"""


@dataclass(frozen=True)
class Engine:
    """What a node knows of one Blender it can run."""

    kind: Literal["binary", "bpy"]
    path: str
    """The executable, or "bpy"."""
    version: str
    """E.g. "3.4.1", "4.5.15"."""
    devices: tuple[str, ...]
    """The Cycles device types with at least one device, "CPU" always first."""

    def command(self) -> list[str]:
        """The argv prefix of a render; `blender -b`'s arguments follow (the file first)."""
        if self.kind == "bpy":
            return [sys.executable, "-P", "-m", "brender.node.bpy_render"]
        return [self.path]


def probe(spec: str, timeout: float = 30.0) -> Engine:
    """Ask the Blender `spec` names ("bpy", a path, or a name on PATH) what it is."""
    if spec == BPY:
        cmd = [sys.executable, "-P", "-c", PROBE_SCRIPT]
        where = f"cannot use the bpy module of {sys.executable}"
        kind: Literal["binary", "bpy"] = "bpy"
        path = BPY
    else:
        path = find_blender(spec)
        cmd = [path, "-b", "--factory-startup", "--python-expr", PROBE_SCRIPT]
        where = f"cannot run Blender at {path!r}"
        kind = "binary"
    code, output = _run(cmd, timeout, where)
    answer = _answer(output, code, where)
    if answer.get("error") == "no-bpy":
        raise NodeError(f"{where}: bpy is not installed ({INSTALL_BPY})")
    version, devices = answer.get("version"), answer.get("devices")
    if not isinstance(version, str) or not isinstance(devices, list):
        raise NodeError(f"{where}: its probe answer has no version or devices: {answer!r}")
    names = tuple(dict.fromkeys(["CPU", *(str(d) for d in devices)]))
    engine = Engine(kind, path, version, names)
    log.info("%s: Blender %s, devices %s", path, version, ", ".join(names))
    return engine


def _run(cmd: list[str], timeout: float, where: str) -> tuple[int, str]:
    """Run `cmd` in its own process group; the whole group goes if it outlives `timeout`."""
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise NodeError(f"{where}: {exc.strerror or exc}") from None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise NodeError(f"{where}: no answer to the probe within {timeout:g} s") from None
    except BaseException:
        _kill_group(proc)
        raise
    return proc.returncode, out.decode("utf-8", errors="replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def _answer(output: str, code: int, where: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if not lines:
        text = output.strip()
        if "No module named 'bpy'" in text:
            raise NodeError(f"{where}: bpy is not installed ({INSTALL_BPY})")
        said = f"its last line: {text.splitlines()[-1][:200]!r}" if text else "it printed nothing"
        raise NodeError(f"{where}: it did not answer the probe (exit code {code}, {said})")
    try:
        answer = json.loads(lines[-1][len(MARKER) :])
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise NodeError(f"{where}: its probe answer is not a JSON object: {lines[-1][:200]!r}")
    return answer
