"""Probing the Blenders a node can run: the real binary, the bpy module, and stand-ins."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest
from node_helpers import wait_gone

from brender.node.engines import Engine, probe
from brender.node.errors import NodeError
from brender.node.sysinfo import blender_version


def write_script(path: Path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


def test_probe_the_blender_on_path(blender: str) -> None:
    if shutil.which("blender") is None:
        pytest.skip("no `blender` on PATH")
    engine = probe("blender")
    assert engine.kind == "binary"
    assert engine.path == shutil.which("blender")
    assert re.fullmatch(r"\d+\.\d+\.\d+", engine.version)
    assert engine.version == blender_version(engine.path)  # "3.4.1" with Debian's
    assert engine.devices[0] == "CPU"
    assert engine.command() == [engine.path]


@pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="bpy is not installed")
def test_probe_bpy() -> None:
    engine = probe("bpy")
    assert engine.kind == "bpy"
    assert engine.path == "bpy"
    assert engine.version.startswith("4.5.")
    assert "CPU" in engine.devices
    assert engine.command() == [sys.executable, "-P", "-m", "brender.node.bpy_render"]


def test_bpy_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same Python without its site-packages, where bpy lives.
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    with pytest.raises(NodeError, match=re.escape("bpy is not installed (pip install 'brender")):
        probe("bpy")


def test_missing_executable() -> None:
    with pytest.raises(NodeError) as caught:
        probe("/nonexistent")
    assert str(caught.value) == "cannot run Blender at '/nonexistent': No such file or directory"
    with pytest.raises(NodeError, match="'no-such-blender-here': not found on PATH"):
        probe("no-such-blender-here")


def test_an_executable_that_prints_nothing(tmp_path: Path) -> None:
    fake = write_script(tmp_path / "mute", "")
    with pytest.raises(NodeError) as caught:
        probe(fake)
    assert str(caught.value) == (
        f"cannot run Blender at {fake!r}: it did not answer the probe"
        " (exit code 0, it printed nothing)"
    )


def test_an_executable_that_says_something_else(tmp_path: Path) -> None:
    fake = write_script(tmp_path / "chatty", "print('usage: chatty [options]')\nexit(2)\n")
    with pytest.raises(NodeError, match=re.escape("(exit code 2, its last line: 'usage: chatty")):
        probe(fake)
    broken = write_script(tmp_path / "broken", "print('BRENDER-PROBE {not json')\n")
    with pytest.raises(NodeError, match="its probe answer is not a JSON object"):
        probe(broken)


def test_the_answer_of_a_stand_in(tmp_path: Path) -> None:
    # Whatever it lists, CPU comes first, once.
    fake = write_script(
        tmp_path / "blender",
        "import sys\n"
        "assert sys.argv[1:4] == ['-b', '--factory-startup', '--python-expr'], sys.argv\n"
        "print('Blender 9.9.9 (hash 0123)')\n"
        'print(\'BRENDER-PROBE {"version": "9.9.9", "devices": ["OPTIX", "CPU", "CUDA"]}\')\n',
    )
    assert probe(fake) == Engine("binary", fake, "9.9.9", ("CPU", "OPTIX", "CUDA"))


def test_a_probe_that_hangs_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    fake = write_script(
        tmp_path / "hang",
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n",
    )
    with pytest.raises(NodeError) as caught:
        probe(fake, timeout=1.0)  # well before the stand-in's 60 s
    assert str(caught.value) == f"cannot run Blender at {fake!r}: no answer to the probe within 1 s"
    wait_gone([int(pid_file.read_text())])
