"""Test scenes made by the real Blender inside the test run (no .blend is committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from farmctl import BLENDER

SCRIPT = """
import bpy
s = bpy.context.scene
s.render.engine = 'CYCLES'
s.cycles.samples = {samples}
s.cycles.use_denoising = False   # Debian's Blender is built without OpenImageDenoise
s.render.resolution_x = {size}
s.render.resolution_y = {size}
s.render.resolution_percentage = 100
s.frame_start = {start}
s.frame_end = {end}
bpy.ops.wm.save_as_mainfile(filepath={path!r})
"""


def make_scene(
    path: Path, frame_start: int = 1, frame_end: int = 12, size: int = 64, samples: int = 4
) -> Path:
    """A small Cycles scene (the factory cube, camera and light) saved by Debian's Blender."""
    path.parent.mkdir(parents=True, exist_ok=True)
    script = SCRIPT.format(
        samples=samples, size=size, start=frame_start, end=frame_end, path=str(path)
    )
    result = subprocess.run(
        [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"Blender could not make {path}:\n{result.stdout}\n{result.stderr}")
    return path
