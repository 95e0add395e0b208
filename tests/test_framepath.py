"""brender.framepath names the file Blender saves a frame to: checked against Blender's own
`RenderSettings.frame_path` (Debian's Blender 3.4), pattern by pattern and format by format."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from brender import framepath

PATTERNS = [
    "/r/####", "/r/a_##_b", "/r/a##b##", "/r/#x/####", "/r/x", "/r/x/", "/r/x.png", "/r/x.PNG",
    "/r/x.jpg", "/r/x.foo", "/r/x####.exr", "//rel/##", "//####", "/r/./a//b/../##",
    "/r/x.tar.gz", "/r/####.rgba", "/r/####.PNG", "/r/##/..", "/r/x/.", "/r/x.####",
    "/r/####.png.exr", "/r/####.JPEG", "/r/####.Tiff", "/r/####.j2c", "/r/####.sgi",
    "/r/ünï cödé/####", "/r/#",
]  # fmt: skip
FORMATS = ["PNG", "JPEG", "OPEN_EXR", "TIFF", "JPEG2000", "TARGA", "WEBP", "HDR", "BMP", "IRIS"]
FRAMES = [0, 5, -3, 123456]

PROBE = """
import bpy, json, sys
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-2])
s = bpy.context.scene
s.render.use_file_extension = True  # the node's -x 1
out = []
for fmt in json.loads(sys.argv[-1])["formats"]:
    s.render.image_settings.file_format = fmt
    for pat in json.loads(sys.argv[-1])["patterns"]:
        s.render.filepath = pat
        for f in json.loads(sys.argv[-1])["frames"]:
            out.append([fmt, pat, f, s.render.frame_path(frame=f)])
print("PATHS" + json.dumps(out))
"""


def blenders_paths(blender: str, probe: str, *args: str, python: bool = False) -> list[Any]:
    """The rows a probe script prints after `PATHS`, run in Debian's Blender (or, `python`, in
    a Python with the bpy module)."""
    command = [blender, "-c", probe] if python else [
        blender, "-b", "--factory-startup", "--python-expr", probe, "--"]  # fmt: skip
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    [line] = [x for x in done.stdout.splitlines() if x.startswith("PATHS")]
    return list(json.loads(line.removeprefix("PATHS")))


@pytest.mark.blender
def test_the_same_file_as_blender(blender: str, tmp_path: Path) -> None:
    blend = tmp_path / "shots" / "a.blend"
    blend.parent.mkdir()
    args = json.dumps({"formats": FORMATS, "patterns": PATTERNS, "frames": FRAMES})
    rows = blenders_paths(blender, PROBE, str(blend), args)
    assert len(rows) == len(FORMATS) * len(PATTERNS) * len(FRAMES)
    wrong = [
        (fmt, pat, n, want, sorted(framepath.frame_files(pat, n, fmt, str(blend))))
        for fmt, pat, n, want in rows
        if not framepath.names_frame(pat, n, fmt, want, str(blend))
    ]
    assert wrong == []


def test_one_file_per_frame_and_none_other() -> None:
    assert framepath.frame_files("/r/sh_####", 7, "PNG") == {"/r/sh_0007.png"}
    assert framepath.frame_files("/r/sh_####.exr", 7, "OPEN_EXR") == {"/r/sh_0007.exr"}
    assert framepath.frame_files("/r/sh_####", 7, "JPEG2000") == {
        "/r/sh_0007.jp2",
        "/r/sh_0007.j2c",
    }
    assert framepath.names_frame("/r/####", 7, "PNG", "/r/./x/../0007.png")
    for other in ("/r/0008.png", "/r/0007.jpg", "/r/00007.png", "/etc/passwd", "/r/0007.png/x",
                  "/r/0007.png\n", "/r/0007.PNG", "r/0007.png"):  # fmt: skip
        assert not framepath.names_frame("/r/####", 7, "PNG", other), other
    # `//` is the .blend's folder.
    assert framepath.frame_files("//out/##", 3, "PNG", "/p/sh.blend") == {"/p/out/03.png"}
    # No format named: the scene's own, so any still format's extension.
    assert "/r/0001.exr" in framepath.frame_files("/r/####", 1, None)


VIEWS_PROBE = """
import bpy, json, sys
s = bpy.context.scene
s.render.use_file_extension = True
s.render.views_format = 'STEREO_3D'
s.render.image_settings.views_format = 'INDIVIDUAL'
out = []
for fmt in json.loads(sys.argv[-1])["formats"]:
    s.render.image_settings.file_format = fmt
    for pat in json.loads(sys.argv[-1])["patterns"]:
        s.render.filepath = pat
        s.render.use_multiview = False
        plain = s.render.frame_path(frame=7)
        s.render.use_multiview = True
        out.append([fmt, pat, plain, [s.render.frame_path(frame=7, view=v) for v in ("left", "right")]])
print("PATHS" + json.dumps(out))
"""


def check_views(rows: list[Any]) -> None:
    """Each view's file is one of the frame's files (on shared storage), not the frame's own,
    nor another frame's."""
    assert len(rows) == len(FORMATS) * len(PATTERNS)
    for fmt, pat, plain, (left, right) in rows:
        assert left != right and "_L" in left and "_R" in right, (fmt, pat, left, right)
        if not framepath.names_frame(pat, 7, fmt, plain):
            continue  # a pattern this Blender resolves otherwise (its own test says which)
        for view in (left, right):
            assert framepath.names_view(pat, 7, fmt, view), (fmt, pat, view)
            assert framepath.names_frame(pat, 7, fmt, view, views=True), (fmt, pat, view)
            assert not framepath.names_frame(pat, 7, fmt, view), (fmt, pat, view)
            assert not framepath.names_view(pat, 8, fmt, view), (fmt, pat, view)


@pytest.mark.blender
def test_the_view_files_of_a_stereo_frame_as_blender_names_them(blender: str) -> None:
    """Stereo saved view by view ("Individual"): Blender writes a file per view, its suffix
    where `names_view` says."""
    args = json.dumps({"formats": FORMATS, "patterns": PATTERNS})
    rows = blenders_paths(blender, VIEWS_PROBE, args)
    assert all(framepath.names_frame(pat, 7, fmt, plain) for fmt, pat, plain, _ in rows)
    check_views(rows)


def test_the_view_files_as_the_bpy_module_names_them() -> None:
    """The same with Blender 4.5 (the `bpy` extra), which reads a leading `.` of a file name
    as no extension where 3.4 puts the suffix before it (`.07_L.png` against `_L.07.png`)."""
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("the bpy module is not installed (pip install 'brender[bpy]')")
    args = json.dumps({"formats": FORMATS, "patterns": PATTERNS})
    script = "import bpy\nbpy.ops.wm.read_factory_settings(use_empty=False)\n" + VIEWS_PROBE
    rows = blenders_paths(sys.executable, script, args, python=True)
    check_views(rows)
    assert framepath.names_view("/r/.##", 7, "PNG", "/r/.07_L.png")  # 4.x
    assert framepath.names_view("/r/.##", 7, "PNG", "/r/_L.07.png")  # 3.x


def test_a_view_suffix_is_a_name_and_nothing_else() -> None:
    assert framepath.names_view("/r/####", 7, "PNG", "/r/./0007_left.png")
    assert framepath.names_frame("/r/####", 7, "PNG", "/r/0007.png", views=True)
    for other in ("/r/0007.png", "/r/0007_L.jpg", "/q/0007_L.png", "/r/0007_L/x.png",
                  "/r/0007_L.png/x", "/r/0007_L R.png", "/r/0007_" + "L" * 40 + ".png",
                  "/r/0008_L.png", "/r/0007_\nSaved.png"):  # fmt: skip
        assert not framepath.names_view("/r/####", 7, "PNG", other), other
    # A suffix never starts with a digit: frame 1's view is not frame 11's file.
    assert not framepath.names_view("/r/#", 1, "PNG", "/r/11.png")
    assert framepath.names_view("/r/#", 1, "PNG", "/r/1_R.png")
