"""The control script of a warm Blender: the file stays loaded, frames are rendered on order.

In a Blender binary, after Blender loaded the file:
`blender -b -y|--disable-autoexec FILE [-t N] --python-exit-code 1 --python warm_blender.py`.
For the `bpy` engine, which loads the file itself:
`python -P -m brender.node.warm_blender -y|--disable-autoexec [-t N] FILE`.

It says `ready` (`warm_protocol`), then reads one order a line from stdin and renders each of
its frames as `blender -b FILE -o OUTPUT -F FORMAT -x 1 -f N` would (`bpy_render.render_frame`:
`frame_set`, which evaluates animation and drivers, then a still render to the frame's path),
answering each saved frame and the order's end. Before each order it puts back the render
settings an order changes, as the file had them, so nothing is left over from the last one.
Any failure prints `Error: …` and exits 1, so the node sees it as it sees a cold Blender's;
end of input exits 0. Either way it closes the file first (`bpy_render.unload`).

Standalone on purpose (stdlib and bpy only): in a Blender binary `brender` is not
importable, so it imports its two sibling modules from its own folder.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if __package__:
    from brender.node import bpy_render, warm_protocol
else:  # inside a Blender binary: the sibling files, not an installed package
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bpy_render  # type: ignore[import-not-found,no-redef]
    import warm_protocol  # type: ignore[import-not-found,no-redef]

if TYPE_CHECKING:
    import bpy

RENDER_KEPT = ("filepath", "use_file_extension", "threads_mode", "threads")
IMAGE_KEPT = ("file_format", "color_mode", "color_depth")
"""What an order (or `apply_settings`) may change; `file_format` first, as setting it adjusts
the other two."""


def snapshot(scene: bpy.types.Scene) -> dict[str, Any]:
    render = scene.render
    kept: dict[str, Any] = {name: getattr(render, name) for name in RENDER_KEPT}
    kept.update({"image." + name: getattr(render.image_settings, name) for name in IMAGE_KEPT})
    kept["frame_current"] = scene.frame_current
    return kept


def restore(scene: bpy.types.Scene, kept: dict[str, Any]) -> None:
    render = scene.render
    for name in IMAGE_KEPT:
        setattr(render.image_settings, name, kept["image." + name])
    for name in RENDER_KEPT:
        setattr(render, name, kept[name])
    scene.frame_current = kept["frame_current"]


def parse_args(argv: Sequence[str]) -> tuple[str, bool, int | None]:
    """The `bpy` engine's arguments: (file, auto-exec, threads)."""
    blend_file, autoexec, threads = "", False, None
    args = iter(argv)
    for arg in args:
        if arg in ("-y", "--enable-autoexec"):
            autoexec = True
        elif arg in ("-Y", "--disable-autoexec"):
            autoexec = False
        elif arg in ("-t", "--threads"):
            threads = int(next(args, "0"))
        elif arg.startswith("-") or blend_file:
            raise bpy_render.Fail(f"warm_blender does not understand the argument {arg!r}")
        else:
            blend_file = arg
    if not blend_file:
        raise bpy_render.Fail("no .blend file given")
    return blend_file, autoexec, threads


def load(argv: Sequence[str]) -> tuple[bpy.types.Scene, int | None]:
    """The scene to render and the threads an order sets (None: as Blender was started)."""
    import bpy

    if __package__:  # the bpy engine: open the file as bpy_render does
        blend_file, autoexec, threads = parse_args(argv)
        opts = bpy_render.Options(blend_file=blend_file, autoexec=autoexec)
        return bpy_render.open_file(opts), threads
    if not bpy.data.filepath:
        raise bpy_render.Fail("Blender started the control script without a file loaded")
    scene = bpy.context.scene
    if scene is None:
        raise bpy_render.Fail(f"{bpy.data.filepath} has no scene")
    return scene, None  # `-t` was Blender's own argument


def serve(scene: bpy.types.Scene, threads: int | None) -> None:
    import bpy

    kept = snapshot(scene)
    version = ".".join(str(part) for part in bpy.app.version[:3])
    bpy_render.say(warm_protocol.encode_reply(warm_protocol.Ready(version, bpy.data.filepath)))
    while True:
        line = sys.stdin.readline()
        if not line:
            return  # the node closed our input: it is done with us
        if not line.strip():
            continue
        order = warm_protocol.parse_order(line)
        restore(scene, kept)
        opts = bpy_render.Options(
            output=order.output, file_format=order.format, use_extension=True, threads=threads
        )
        bpy_render.apply_settings(scene, opts)
        for frame in order.frames:
            started = time.monotonic()
            path = bpy_render.render_frame(scene, frame)
            seconds = round(time.monotonic() - started, 3)
            bpy_render.say(warm_protocol.encode_reply(warm_protocol.Saved(frame, path, seconds)))
        bpy_render.say(warm_protocol.encode_reply(warm_protocol.Done(order.chunk_id)))


def main(argv: Sequence[str]) -> int:
    try:
        serve(*load(argv))
    except bpy_render.Fail as exc:
        if exc.line is not None:
            bpy_render.say(f"Error: {exc.line}")
        return 1
    except Exception as exc:
        message = str(exc).strip().removeprefix("Error:").strip()
        bpy_render.say(f"Error: {message or type(exc).__name__}")
        traceback.print_exc(file=sys.stdout)
        return 1
    return 0


def run() -> None:
    """Serve, close the file, and leave at once: neither Blender nor bpy gets to run its
    own exit (bpy 4.5 can hang there)."""
    code = main(sys.argv[1:] if __package__ else [])
    bpy_render.unload()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
