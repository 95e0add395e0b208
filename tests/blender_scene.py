"""Make small real .blend files for tests with the installed Blender (never commit one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BLENDER = os.environ.get("BRENDER_TEST_BLENDER", "/usr/bin/blender")


def blender_available() -> bool:
    return os.access(BLENDER, os.X_OK)


def make_scene(
    path: Path,
    frame_start: int = 1,
    frame_end: int = 12,
    *,
    samples: int = 4,
    resolution: int = 64,
    camera: bool = True,
    denoise: bool = False,
    seconds: float | None = None,
    extra: tuple[str, ...] = (),
    blender: str = BLENDER,
) -> Path:
    """Save a tiny Cycles scene (the factory cube) at `path`; ~1.5 s.

    Denoising stays off by default: Debian's Blender is built without OpenImageDenoise and
    fails with `Error: Build without OpenImageDenoiser` when it is on. `seconds` makes every
    frame render for that long, on a fast machine or a slow one (see `slow_lines`). `extra`:
    more lines of Python (`s` is the scene) before the save.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = scene_lines(path, frame_start, frame_end, samples, resolution, camera, denoise)
    if seconds is not None:
        lines[-1:-1] = slow_lines(seconds)
    lines[-1:-1] = extra
    done = subprocess.run(
        [blender, "-b", "--factory-startup", "--python-expr", "\n".join(lines)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
        check=False,
    )
    return _made(path, done)


def make_scene_bpy(
    path: Path,
    frame_start: int = 1,
    frame_end: int = 12,
    *,
    samples: int = 4,
    resolution: int = 64,
    extra: tuple[str, ...] = (),
) -> Path:
    """The same scene saved by Blender 4.5 (the `bpy` module, in a child Python): a file
    Debian's Blender 3.4 cannot open. `extra` lines run before the save."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = scene_lines(path, frame_start, frame_end, samples, resolution, True, False)
    lines[1:1] = ["bpy.ops.wm.read_factory_settings(use_empty=False)"]
    lines[-1:-1] = list(extra)
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
        check=False,
    )
    return _made(path, done)


SLOW_SAMPLES = 1_000_000


def slow_lines(seconds: float) -> list[str]:
    """Scene lines that make each frame take `seconds` of Cycles whatever the machine: a
    frame's time that follows its samples was 20x shorter on one CI machine than on the one
    its test was written on (800 samples of the cube: 1 s there, 0.04 s here), and a test
    that needs to see a frame in flight lost the race. Cycles' time limit ends the frame; far
    more samples than it can reach and a noise threshold no pixel meets keep it from ending
    sooner."""
    return [
        f"s.cycles.samples = {SLOW_SAMPLES}",
        "s.cycles.adaptive_threshold = 0.0001",
        f"s.cycles.time_limit = {float(seconds)!r}",
    ]


def _made(path: Path, done: subprocess.CompletedProcess[bytes]) -> Path:
    if done.returncode != 0 or not path.is_file():
        output = done.stdout.decode(errors="replace")
        raise RuntimeError(f"could not make {path} (exit {done.returncode}):\n{output}")
    return path


def scene_lines(
    path: Path,
    frame_start: int,
    frame_end: int,
    samples: int,
    resolution: int,
    camera: bool,
    denoise: bool,
) -> list[str]:
    lines = [
        "import bpy",
        "s = bpy.context.scene",
        "s.render.engine = 'CYCLES'",
        f"s.cycles.samples = {int(samples)}",
        f"s.cycles.use_denoising = {bool(denoise)}",
        f"s.render.resolution_x = {int(resolution)}",
        f"s.render.resolution_y = {int(resolution)}",
        "s.render.resolution_percentage = 100",
        f"s.frame_start = {int(frame_start)}",
        f"s.frame_end = {int(frame_end)}",
    ]
    if not camera:
        lines.append("bpy.data.objects.remove(bpy.data.objects['Camera'])")
    lines.append(f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})")
    return lines


def make_linked_scene(
    root: Path,
    frame_start: int = 1,
    frame_end: int = 2,
    *,
    main_name: str = "shots/sh010.blend",
    samples: int = 4,
    resolution: int = 48,
    library: Path | None = None,
    blender: str = BLENDER,
) -> tuple[Path, Path, Path]:
    """An artist's three folders under `root`: a library .blend (`lib/props.blend`, one
    object "Prop"), a texture (`tex/checker.png`) and a main scene (`main_name`) that links
    the Prop from the library and puts the texture on its own plane, all saved with relative
    paths. Answers (main, library, texture). With `library` given, that library (and the
    texture beside it) is reused: a second shot sharing the first one's files."""
    root = Path(root).resolve()
    lib = library or root / "lib" / "props.blend"
    tex = lib.parent.parent / "tex" / "checker.png"
    main = root / main_name
    if library is None:
        lib.parent.mkdir(parents=True, exist_ok=True)
        tex.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "import bpy",
            "bpy.ops.wm.read_factory_settings(use_empty=True)",
            "img = bpy.data.images.new('checker', 16, 16, alpha=False)",
            "img.generated_type = 'COLOR_GRID'",
            f"img.filepath_raw = {str(tex)!r}",
            "img.file_format = 'PNG'",
            "img.save()",
            "bpy.ops.mesh.primitive_monkey_add(location=(1.2, 0, 0))",
            "o = bpy.context.active_object",
            "o.name = 'Prop'",
            "bpy.ops.wm.save_as_mainfile(filepath=" + repr(str(lib)) + ")",
        ]
        _run_blender(blender, lines, lib)
    main.parent.mkdir(parents=True, exist_ok=True)
    lines = scene_lines(main, frame_start, frame_end, samples, resolution, True, False)[:-1]
    lines += [
        f"with bpy.data.libraries.load({str(lib)!r}, link=True) as (src, dst):",
        "    dst.objects = ['Prop']",
        "for o in dst.objects:",
        "    s.collection.objects.link(o)",
        "bpy.ops.mesh.primitive_plane_add(size=1.5, location=(-1.2, 0, 0.5), rotation=(1.2, 0, 0))",
        "plane = bpy.context.active_object",
        "mat = bpy.data.materials.new('tex')",
        "mat.use_nodes = True",
        "nodes = mat.node_tree.nodes",
        "t = nodes.new('ShaderNodeTexImage')",
        f"t.image = bpy.data.images.load({str(tex)!r})",
        "mat.node_tree.links.new(t.outputs['Color'], nodes['Principled BSDF'].inputs['Base Color'])",
        "plane.data.materials.append(mat)",
        "s.frame_set(1)",
        f"bpy.ops.wm.save_as_mainfile(filepath={str(main)!r}, relative_remap=True)",
    ]
    _run_blender(blender, lines, main)
    return main, lib, tex


def _run_blender(blender: str, lines: list[str], made: Path) -> None:
    done = subprocess.run(
        [
            blender,
            "-b",
            "--factory-startup",
            "--python-exit-code",
            "1",
            "--python-expr",
            "\n".join(lines),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
        check=False,
    )
    _made(made, done)
