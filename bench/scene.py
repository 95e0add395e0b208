"""Real Blender for the overhead scenario: make a Cycles scene, render it plainly, time it.

`make_scene` is tests/blender_scene.py's (the factory cube in Cycles), copied so the
benchmarks do not import from the test suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BLENDER = os.environ.get("BRENDER_BENCH_BLENDER", "/usr/bin/blender")

_TIME = re.compile(r"^\s*Time:\s*(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")


def make_scene(
    path: Path,
    frame_start: int,
    frame_end: int,
    *,
    samples: int,
    resolution: int,
    heavy: int = 0,
) -> Path:
    """Save a Cycles scene (the factory cube) at `path`. Denoising stays off: Debian's Blender
    is built without OpenImageDenoise. `heavy`: add a grid of heavy × heavy faces hidden from
    the render, saved uncompressed, so that loading the file takes a while (2000: ~1 s)."""
    lines = [
        "import bpy",
        "s = bpy.context.scene",
        "s.render.engine = 'CYCLES'",
        f"s.cycles.samples = {int(samples)}",
        "s.cycles.use_denoising = False",
        f"s.render.resolution_x = {int(resolution)}",
        f"s.render.resolution_y = {int(resolution)}",
        "s.render.resolution_percentage = 100",
        f"s.frame_start = {int(frame_start)}",
        f"s.frame_end = {int(frame_end)}",
    ]
    if heavy:
        lines += [
            f"bpy.ops.mesh.primitive_grid_add(x_subdivisions={int(heavy)},"
            f" y_subdivisions={int(heavy)}, size=50, location=(0, 0, -20))",
            "bpy.context.active_object.hide_render = True",
        ]
    lines += [
        f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r}, compress=False)",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [BLENDER, "-b", "--factory-startup", "--python-expr", "\n".join(lines)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not path.is_file():
        output = done.stdout.decode(errors="replace")[-3000:]
        raise RuntimeError(f"Blender could not make {path} (exit {done.returncode}):\n{output}")
    return path


@dataclass
class PlainRun:
    seconds: float  # wall clock, process start to exit
    frame_seconds: list[float]  # Blender's own `Time:` per frame

    @property
    def startup(self) -> float:
        """What is not rendering: start, file load, exit."""
        return self.seconds - sum(self.frame_seconds)


def render_plain(blend: Path, output: Path, first: int, last: int) -> PlainRun:
    """`blender -b FILE -o OUT -F PNG -x 1 -j 1 -s FIRST -e LAST -a`, as the node runs it."""
    cmd = [BLENDER, "-b", str(blend), "-o", str(output / "####"), "-F", "PNG", "-x", "1"]
    cmd += ["-j", "1", "-s", str(first), "-e", str(last), "-a"]
    start = time.perf_counter()
    done = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=3600, check=False
    )
    seconds = time.perf_counter() - start
    text = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"plain Blender failed (exit {done.returncode}):\n{text[-3000:]}")
    frames = []
    for line in text.splitlines():
        match = _TIME.match(line)
        if match and "|" not in line:
            hours, minutes, secs = match.groups()
            frames.append(int(hours or 0) * 3600 + int(minutes) * 60 + float(secs))
    return PlainRun(seconds, frames)


def blender_available() -> bool:
    return os.access(BLENDER, os.X_OK)
