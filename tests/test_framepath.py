"""brender.framepath names the file Blender saves a frame to: checked against Blender's own
`RenderSettings.frame_path` (Debian's Blender 3.4), pattern by pattern and format by format."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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


@pytest.mark.blender
def test_the_same_file_as_blender(blender: str, tmp_path: Path) -> None:
    blend = tmp_path / "shots" / "a.blend"
    blend.parent.mkdir()
    args = json.dumps({"formats": FORMATS, "patterns": PATTERNS, "frames": FRAMES})
    done = subprocess.run(
        [blender, "-b", "--factory-startup", "--python-expr", PROBE, "--", str(blend), args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    [line] = [x for x in done.stdout.splitlines() if x.startswith("PATHS")]
    rows = json.loads(line.removeprefix("PATHS"))
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
