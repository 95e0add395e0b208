"""Render with the `bpy` module as `blender -b FILE … -a` would: same arguments, same output.

`python -m brender.node.bpy_render FILE [-o OUT] [-F FMT] [-x 0|1] [-j N] [-t N]
(-s A -e B -a | -f LIST)` opens FILE and renders each frame with `render(write_still=True)`.
bpy prints Blender's own `Fra:`, `Saved:`, `Time:` and `Error:` lines on stdout, so the node's
runner and log parser work unchanged; this module adds only the errors bpy does not print.

Standalone on purpose (stdlib and bpy only): it runs as the node's child, like Blender.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import bpy

MAX_THREADS = 1024
"""Blender's own limit for `-t`."""

_MOVIE_FORMATS = {"FFMPEG", "AVI_JPEG", "AVI_RAW"}


class Fail(Exception):
    """Stop rendering; the message is the `Error: …` line (None: bpy printed it already)."""

    def __init__(self, message: str | None) -> None:
        super().__init__(message or "")
        self.line = message


@dataclass
class Options:
    """The `blender -b` arguments this module understands, in Blender's meaning."""

    blend_file: str = ""
    output: str | None = None
    file_format: str | None = None
    use_extension: bool | None = None
    frame_step: int | None = None
    threads: int | None = None
    frame_start: int | None = None
    frame_end: int | None = None
    animation: bool = False
    frame_list: list[int] = field(default_factory=list)
    autoexec: bool = False


def _int(flag: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Fail(f"{flag} needs a whole number, not {value!r}") from None


def parse_frames(text: str) -> list[int]:
    """Blender's `-f` list: `1,3,7`, with `A..B` ranges."""
    frames: list[int] = []
    for part in text.split(","):
        first, sep, last = part.strip().partition("..")
        if sep:
            start, end = _int("-f", first), _int("-f", last)
            if end < start:
                raise Fail(f"-f: the range {part!r} goes backwards")
            frames += range(start, end + 1)
        else:
            frames.append(_int("-f", first))
    return frames


def parse_args(argv: Sequence[str]) -> Options:
    """The arguments after the program; `-b` is accepted and ignored (we are always -b)."""
    opts = Options()
    args: Iterator[str] = iter(argv)
    rendering = False

    def value(flag: str) -> str:
        try:
            return next(args)
        except StopIteration:
            raise Fail(f"{flag} needs a value") from None

    for arg in args:
        if arg in ("-b", "--background"):
            continue
        if arg in ("-y", "--enable-autoexec"):
            opts.autoexec = True
        elif arg in ("-Y", "--disable-autoexec"):
            opts.autoexec = False
        elif arg in ("-o", "--render-output"):
            opts.output = value(arg)
        elif arg in ("-F", "--render-format"):
            opts.file_format = value(arg).upper()
        elif arg in ("-x", "--use-extension"):
            opts.use_extension = _int(arg, value(arg)) != 0
        elif arg in ("-j", "--frame-jump"):
            opts.frame_step = max(_int(arg, value(arg)), 1)
        elif arg in ("-t", "--threads"):
            threads = _int(arg, value(arg))
            if not 0 <= threads <= MAX_THREADS:
                raise Fail(f"{arg} must be 0-{MAX_THREADS}, not {threads}")
            opts.threads = threads
        elif arg in ("-s", "--frame-start"):
            opts.frame_start = _int(arg, value(arg))
        elif arg in ("-e", "--frame-end"):
            opts.frame_end = _int(arg, value(arg))
        elif arg in ("-a", "--render-anim", "-f", "--render-frame"):
            if rendering:
                raise Fail("give one of -a or -f, once")
            rendering = True
            if arg in ("-a", "--render-anim"):
                opts.animation = True
            else:
                opts.frame_list = parse_frames(value(arg))
        elif arg.startswith("-") or opts.blend_file:
            raise Fail(f"bpy_render does not understand the argument {arg!r}")
        else:
            opts.blend_file = arg
    if not opts.blend_file:
        raise Fail("no .blend file given")
    if not rendering:
        raise Fail("nothing to render: give -a or -f")
    return opts


def say(line: str) -> None:
    """One line on stdout, flushed at once so it interleaves rightly with Blender's own."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Around a bpy call that reports: its `Error: …` report is on stdout already."""
    try:
        yield
    except RuntimeError as exc:
        message = str(exc).strip()
        raise Fail(None if message.startswith("Error:") else message) from None


def open_file(opts: Options) -> bpy.types.Scene:
    import bpy

    preferences = bpy.context.preferences
    if preferences is None:
        raise Fail("bpy has no preferences: cannot set whether the file's scripts may run")
    preferences.filepaths.use_scripts_auto_execute = opts.autoexec
    with reported():
        bpy.ops.wm.open_mainfile(filepath=opts.blend_file, load_ui=False)
    scene = bpy.context.scene
    if scene is None:
        raise Fail(f"{opts.blend_file} has no scene")
    return scene


def apply_settings(scene: bpy.types.Scene, opts: Options) -> None:
    """What `-o`, `-F`, `-x`, `-t`, `-s`, `-e`, `-j` do to the scene in `blender -b`."""
    render = scene.render
    if opts.output is not None:
        render.filepath = opts.output
    if opts.file_format is not None:
        try:
            render.image_settings.file_format = opts.file_format  # type: ignore[assignment]
        except TypeError:
            raise Fail(
                f"Format from '-F / --render-format' not known or not compiled in this "
                f"release: {opts.file_format}"
            ) from None
    if render.image_settings.file_format in _MOVIE_FORMATS:
        raise Fail(f"Cannot render a movie ({render.image_settings.file_format}) frame by frame")
    if opts.use_extension is not None:
        render.use_file_extension = opts.use_extension
    if opts.threads is not None:
        render.threads_mode = "AUTO" if opts.threads == 0 else "FIXED"
        if opts.threads:
            render.threads = opts.threads
    # Blender sets these without RNA's clamping of start against end: order them so ours
    # does not move the one we set second.
    if opts.frame_start is not None and opts.frame_start > scene.frame_end:
        scene.frame_end = opts.frame_start
    if opts.frame_start is not None:
        scene.frame_start = opts.frame_start
    if opts.frame_end is not None:
        scene.frame_end = max(opts.frame_end, scene.frame_start)
    if opts.frame_step is not None:
        scene.frame_step = opts.frame_step


def frames_to_render(scene: bpy.types.Scene, opts: Options) -> list[int]:
    if not opts.animation:
        return opts.frame_list
    start = opts.frame_start if opts.frame_start is not None else scene.frame_start
    end = opts.frame_end if opts.frame_end is not None else scene.frame_end
    return list(range(start, end + 1, max(scene.frame_step, 1)))


def _escape_template(path: str) -> str:
    """A literal path as a Blender 4.5+ path template, which expands `{…}` once more."""
    import bpy

    if tuple(bpy.app.version) < (4, 5, 0):
        return path
    return path.replace("{", "{{").replace("}", "}}")


def expected_files(scene: bpy.types.Scene, frame: int) -> list[str]:
    """The absolute paths `blender -b -a` would write for `frame` (one per view if split)."""
    render = scene.render
    views = [""]
    if render.use_multiview and render.image_settings.views_format == "INDIVIDUAL":
        views = [view.name for view in render.views if view.use] or [""]
    with reported():  # an unknown `{variable}` in a 4.5 path template
        return [os.path.abspath(render.frame_path(frame=frame, view=view)) for view in views]


def render_frame(scene: bpy.types.Scene, frame: int) -> str:
    """Render and save one frame; bpy prints its `Fra:`, `Saved:` and `Time:` lines. The
    path written (the first view's, when views are saved one by one)."""
    import bpy

    render = scene.render
    pattern = render.filepath
    scene.frame_set(frame)
    files = expected_files(scene, frame)
    with reported():
        target = os.path.abspath(render.frame_path(frame=frame))
    # A still render writes `filepath` as it is (no `#` replaced): give it this frame's path.
    render.filepath = _escape_template(target)
    try:
        with reported():
            result = bpy.ops.render.render(write_still=True)
    finally:
        render.filepath = pattern
    if not result or "FINISHED" not in result:
        raise Fail(f"Rendering frame {frame} was canceled")
    for path in files:
        if not os.path.isfile(path):
            raise Fail(f"Frame {frame} was rendered but {path!r} was not written")
    return files[0] if files else target


def run(argv: Sequence[str]) -> int:
    opts = parse_args(argv)
    try:
        import bpy  # noqa: F401 (imported here: parse errors need no 3-second import)
    except ImportError as exc:
        raise Fail(f"the bpy module is not installed ({exc}): pip install 'brender[bpy]'") from None
    try:
        scene = open_file(opts)
        apply_settings(scene, opts)
        for frame in frames_to_render(scene, opts):
            render_frame(scene, frame)
    finally:
        unload()
    return 0


def unload() -> None:
    """Close the file before Python exits: bpy 4.5 hangs at exit, after the last frame is
    saved, while a file with a Python driver is still open (auto-exec or not)."""
    import bpy

    with contextlib.suppress(Exception):
        bpy.ops.wm.read_factory_settings(use_empty=True)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except Fail as exc:
        if exc.line is not None:
            say(f"Error: {exc.line}")
        return 1
    except Exception as exc:
        message = str(exc).strip().removeprefix("Error:").strip()
        say(f"Error: {message or type(exc).__name__}")
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
