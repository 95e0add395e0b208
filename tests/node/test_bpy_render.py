"""`python -m brender.node.bpy_render`: Blender as a Python module, rendering like `blender -b`.

Scenes are made with Debian's Blender 3.4 and opened by bpy 4.5; every frame is compared pixel
for pixel with the same frame rendered by bpy directly.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from blender_scene import make_scene
from node_helpers import run, wait_for_condition, wait_gone
from PIL import Image, ImageChops

from brender.node.blender_log import (
    FATAL_ERRORS,
    Event,
    FrameSaved,
    FrameStarted,
    LineSplitter,
    LogTracker,
)
from brender.node.chunk import ChunkResult, RenderOrder
from brender.node.engines import Engine
from brender.node.runner import BlenderRunner

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bpy") is None, reason="the bpy module is not installed"
)

BPY_RENDER = Engine("bpy", "bpy", "4.5", ("CPU",)).command()


def make_moving_scene(
    blender: str,
    path: Path,
    *,
    samples: int = 4,
    resolution: int = 48,
    on_load: str = "",
    extra: tuple[str, ...] = (),
) -> Path:
    """A tiny Cycles scene whose cube moves, so every frame is a different image.

    `on_load`: a registered text block (runs when the file loads, if auto-exec allows it).
    `extra`: more lines of Python before the save.
    """
    lines = [
        "import bpy",
        "s = bpy.context.scene",
        "s.render.engine = 'CYCLES'",
        "s.cycles.device = 'CPU'",
        f"s.cycles.samples = {samples}",
        "s.cycles.use_denoising = False",
        f"s.render.resolution_x = s.render.resolution_y = {resolution}",
        "s.render.resolution_percentage = 100",
        "s.frame_start, s.frame_end = 1, 100",
        "cube = bpy.data.objects['Cube']",
        "for frame, x in ((1, -1.5), (3, 1.5)):",
        "    cube.location.x = x",
        "    cube.keyframe_insert('location', index=0, frame=frame)",
    ]
    if on_load:
        lines += [
            "text = bpy.data.texts.new('on_load.py')",
            f"text.write({on_load!r})",
            "text.use_module = True",
        ]
    lines += [*extra, f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})"]
    done = subprocess.run(
        [blender, "-b", "--factory-startup", "--python-expr", "\n".join(lines)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and path.is_file(), done.stdout.decode(errors="replace")
    return path


@pytest.fixture(scope="module")
def moving(blender: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_moving_scene(blender, tmp_path_factory.mktemp("moving") / "moving.blend")


@pytest.fixture(scope="module")
def reference(moving: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Frames 1-3 rendered by bpy itself: `frame_set`, then `render(write_still=True)`."""
    out = tmp_path_factory.mktemp("reference")
    frames = {n: out / f"frame{n}.png" for n in (1, 2, 3)}
    script = "\n".join(
        [
            "import bpy",
            f"bpy.ops.wm.open_mainfile(filepath={str(moving)!r}, load_ui=False)",
            "s = bpy.context.scene",
            "s.render.image_settings.file_format = 'PNG'",
            f"for n, path in {[(n, str(p)) for n, p in frames.items()]!r}:",
            "    s.frame_set(n)",
            "    s.render.filepath = path",
            "    bpy.ops.render.render(write_still=True)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", script], capture_output=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout.decode(errors="replace") + done.stderr.decode()
    assert all(p.is_file() for p in frames.values())
    return frames


@dataclass
class Rendered:
    code: int
    lines: list[str]
    events: list[Event]
    tracker: LogTracker

    def saved(self) -> list[FrameSaved]:
        return [e for e in self.events if isinstance(e, FrameSaved)]


def render(args: list[str], frames: list[int], cwd: Path | None = None) -> Rendered:
    """Run bpy_render to the end and parse its output as the node's runner does."""
    done = subprocess.run(
        [*BPY_RENDER, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    splitter = LineSplitter()
    lines = splitter.feed(done.stdout) + splitter.finish()
    tracker = LogTracker(frames)
    events: list[Event] = []
    for number, line in enumerate(lines):
        events += tracker.feed(line, float(number))
    events += tracker.finish(float(len(lines)))
    return Rendered(done.returncode, lines, events, tracker)


def same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as first, Image.open(b) as second:
        if (first.mode, first.size) != (second.mode, second.size):
            return False
        # alpha_only=False: on RGBA, the default would look at the alpha channel alone.
        return ImageChops.difference(first, second).getbbox(alpha_only=False) is None


def png_args(scene: Path, out: Path) -> list[str]:
    return [str(scene), "-o", str(out / "####"), "-F", "PNG", "-x", "1", "-j", "1"]


def test_renders_a_range_like_blender(
    moving: Path, reference: dict[int, Path], tmp_path: Path
) -> None:
    result = render([*png_args(moving, tmp_path), "-s", "1", "-e", "2", "-a"], [1, 2])
    assert result.code == 0, "\n".join(result.lines)
    assert result.tracker.first_error is None
    assert [e.frame for e in result.events if isinstance(e, FrameStarted)] == [1, 2]
    # Exactly one save per frame: bpy's own `Saved:` line, not a second one of ours.
    assert [(e.frame, e.path) for e in result.saved()] == [
        (n, str(tmp_path / f"{n:04d}.png")) for n in (1, 2)
    ]
    assert sum(line.startswith("Saved:") for line in result.lines) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001.png", "0002.png"]
    for n in (1, 2):
        assert same_pixels(tmp_path / f"{n:04d}.png", reference[n]), f"frame {n}"


def test_renders_a_frame_list(moving: Path, reference: dict[int, Path], tmp_path: Path) -> None:
    result = render([*png_args(moving, tmp_path), "-t", "1", "-f", "1,3"], [1, 3])
    assert result.code == 0, "\n".join(result.lines)
    assert [e.frame for e in result.saved()] == [1, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001.png", "0003.png"]
    assert same_pixels(tmp_path / "0001.png", reference[1])
    assert same_pixels(tmp_path / "0003.png", reference[3])
    # The comparison has teeth: the cube moved between the two frames.
    assert not same_pixels(tmp_path / "0001.png", tmp_path / "0003.png")


def test_output_path_semantics(moving: Path, tmp_path: Path) -> None:
    # Relative to the working directory; no `#`, so Blender appends the frame; a 4.5 path
    # template expanded once (`{{` is a literal brace), not twice; no extension with -x 0.
    pattern = "out/{blend_name}_{{x}}_"
    result = render(
        [str(moving), "-o", pattern, "-F", "PNG", "-x", "0", "-f", "2"], [2], cwd=tmp_path
    )
    assert result.code == 0, "\n".join(result.lines)
    written = tmp_path / "out" / "moving_{x}_0002"
    assert [(e.frame, e.path) for e in result.saved()] == [(2, str(written))]
    assert written.is_file()


def test_missing_file_is_fatal(tmp_path: Path) -> None:
    missing = tmp_path / "missing.blend"
    result = render([*png_args(missing, tmp_path), "-s", "1", "-e", "2", "-a"], [1, 2])
    assert result.code == 1
    errors = [line for line in result.lines if line.startswith("Error:")]
    assert errors == [f'Error: Cannot read file "{missing}": No such file or directory']
    assert errors[0].startswith(FATAL_ERRORS)
    assert result.tracker.fatal_error == errors[0]
    assert result.events == []


def test_no_camera_is_fatal(blender: str, tmp_path: Path) -> None:
    nocam = make_scene(tmp_path / "nocam.blend", camera=False, blender=blender)
    result = render([*png_args(nocam, tmp_path), "-f", "1"], [1])
    assert result.code == 1
    assert result.tracker.fatal_error == "Error: Cannot render, no camera"
    assert [line for line in result.lines if line.startswith("Error:")] == [
        "Error: Cannot render, no camera"
    ]
    assert result.saved() == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-f", "1,x"], "Error: -f needs a whole number, not 'x'"),
        (["-F", "NOPE", "-a"], "Error: Format from '-F / --render-format' not known"),
        (["-F", "FFMPEG", "-a"], "Error: Cannot render a movie (FFMPEG) frame by frame"),
        (["--quiet", "-a"], "Error: bpy_render does not understand the argument '--quiet'"),
        (["-s", "1"], "Error: nothing to render: give -a or -f"),
    ],
)
def test_bad_arguments(scene: Path, tmp_path: Path, args: list[str], error: str) -> None:
    result = render([str(scene), "-o", str(tmp_path / "#"), *args], [1])
    assert result.code == 1
    assert result.tracker.first_error is not None
    assert result.tracker.first_error.startswith(error), result.lines
    assert list(tmp_path.iterdir()) == []


def test_autoexec_only_when_asked(blender: str, tmp_path: Path) -> None:
    marker = tmp_path / "script-ran"
    scene = make_moving_scene(
        blender,
        tmp_path / "script.blend",
        samples=1,
        resolution=8,
        on_load=f"open({str(marker)!r}, 'w').close()\n",
    )
    out = tmp_path / "out"
    for flags in ([], ["--disable-autoexec"]):
        result = render([str(scene), *flags, "-o", str(out / "#"), "-f", "1"], [1])
        assert result.code == 0, "\n".join(result.lines)
        assert not marker.exists()
    result = render([str(scene), "-y", "-o", str(out / "#"), "-f", "1"], [1])
    assert result.code == 0, "\n".join(result.lines)
    assert marker.exists()


def test_a_python_driver_renders_and_the_process_ends(blender: str, tmp_path: Path) -> None:
    # bpy 4.5 hangs at exit while a file with a Python driver is open: the child must still end
    # by itself (subprocess.run's timeout fails the test) with every frame saved.
    driver = (
        "d = bpy.data.objects['Cube'].driver_add('location', 2).driver",
        "d.type = 'SCRIPTED'",
        "d.expression = '(lambda f: f * 0.0 + 1.5)(frame)'",  # needs Python, not simple
    )
    scene = make_moving_scene(blender, tmp_path / "d.blend", samples=1, resolution=16,
                              extra=driver)  # fmt: skip
    frames = {}
    for flag in ("-y", "--disable-autoexec"):
        out = tmp_path / flag.strip("-")
        result = render([str(scene), flag, *png_args(scene, out)[1:], "-f", "1"], [1])
        assert result.code == 0, "\n".join(result.lines)
        frames[flag] = out / "0001.png"
    assert not same_pixels(frames["-y"], frames["--disable-autoexec"])  # the driver ran with -y


def test_without_bpy(tmp_path: Path) -> None:
    # Only brender's own folder on the path: the same Python, without the bpy it found.
    import brender

    site = Path(brender.__file__).parents[1]
    bpy_spec = importlib.util.find_spec("bpy")
    if bpy_spec is not None and bpy_spec.origin and Path(bpy_spec.origin).is_relative_to(site):
        pytest.skip("bpy is installed beside brender")
    done = subprocess.run(
        [sys.executable, "-S", *BPY_RENDER[1:], str(tmp_path / "a.blend"), "-f", "1"],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout.startswith("Error: the bpy module is not installed")
    assert done.stdout.rstrip().endswith("pip install 'brender[bpy]'")


# BlenderRunner takes one executable path and puts `-b` after it, so it cannot take
# `Engine.command()` (a list) as it is: a two-line shim runs bpy_render in its place, and
# bpy_render ignores the `-b`.
@pytest.fixture
def shim(tmp_path: Path) -> str:
    path = tmp_path / "bpy-blender"
    path.write_text(f'#!/bin/sh\nexec {shlex.join(BPY_RENDER)} "$@"\n')
    path.chmod(0o755)
    return str(path)


def test_the_node_runner_renders_with_bpy(shim: str, moving: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    order = RenderOrder(1, str(moving), (2, 3), str(out / "####"), "PNG")
    events: list[Event] = []
    result = run(BlenderRunner(shim, threads=1).run(order, events.append), 300)
    assert result.ok, result
    assert result.frames_done == [2, 3]
    assert [e.frame for e in events if isinstance(e, FrameStarted)] == [2, 3]
    assert [(e.frame, e.path) for e in events if isinstance(e, FrameSaved)] == [
        (n, str(out / f"{n:04d}.png")) for n in (2, 3)
    ]


def test_the_node_runner_cancels_bpy(shim: str, blender: str, tmp_path: Path) -> None:
    slow = make_moving_scene(blender, tmp_path / "slow.blend", samples=1024, resolution=96)
    runner = BlenderRunner(shim)
    events: list[Event] = []
    order = RenderOrder(1, str(slow), tuple(range(1, 50)), str(tmp_path / "####"), "PNG")

    async def scenario() -> tuple[ChunkResult, list[int]]:
        task = asyncio.create_task(runner.run(order, events.append))
        await wait_for_condition(lambda: bool(events), 60, "the first frame")
        pid = runner.pid
        assert pid is not None
        group = [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
        runner.cancel()
        return await task, group

    result, group = run(scenario(), 120)
    assert result.canceled and not result.ok
    assert result.exit_code == -15  # bpy dies of SIGTERM as Blender does
    wait_gone(group)
