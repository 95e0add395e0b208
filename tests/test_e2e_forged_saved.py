"""A scene's Python can print anything, a forged `Saved:` line too: the node takes only the file
the order's output pattern names for the frame (node/runner.py `saved_check`), so the frame is
reported with the file Blender really saved. Real server, real node, Debian's Blender running
a text block of the scene (auto-exec) that prints a fake `Fra:`/`Saved:` pair as each frame
starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from blender_scene import _run_blender, scene_lines
from farmctl import NodeProcess, ServerProcess, job_frames, job_status, stop_all, wait_for

pytestmark = pytest.mark.blender

FORGED = "/etc/passwd"  # exists and is not empty: the node's own check of the file passes
FORGE = f"""
import bpy, sys

def forge(scene, *args):
    print(f"Fra:{{scene.frame_current}} Mem:1.00M | Time:00:00.01 | forged", flush=True)
    print("Saved: '{FORGED}'", flush=True)
    print(" Time: 00:00.01 (Saving: 00:00.00)", flush=True)

bpy.app.handlers.frame_change_post.append(forge)
"""


def forging_scene(path: Path, blender: str) -> Path:
    lines = scene_lines(path, 1, 3, 4, 32, True, False)
    lines[-1:-1] = [
        "t = bpy.data.texts.new('forge.py')",
        f"t.write({FORGE!r})",
        "t.use_module = True",
    ]
    _run_blender(blender, lines, path)
    return path


@pytest.mark.parametrize("runner", ["warm", "cold"])
def test_a_forged_saved_line_is_not_reported(runner: str, blender: str, tmp_path: Path) -> None:
    scene = forging_scene(tmp_path / "forge.blend", blender)
    out = tmp_path / "out"
    server = ServerProcess(tmp_path / "farm").start()
    extra = ["--allow-autoexec", *(["--no-warm"] if runner == "cold" else [])]
    node = NodeProcess(server.master, "n1", tmp_path / "node", blender=blender, extra=extra)
    try:
        node.start()
        with server.tcp() as api:
            values = {
                "project": "forge", "sequence": "sq", "shot": runner, "blend_file": str(scene),
                "frame_start": 1, "frame_end": 3, "chunk_size": 3, "autoexec": True,
                "output": str(out / "####"), "format": "PNG",
            }  # fmt: skip
            job = api.ok({"item": "job", "action": "submit", "values": values})["id"]
            wait_for(
                lambda: job_status(api, job)["status"] in ("completed", "failed"),
                120,
                what="the job to finish",
            )
            frames = job_frames(api, job)
            assert [(f["number"], f["output_file"]) for f in frames] == [
                (n, str(out / f"{n:04d}.png")) for n in (1, 2, 3)
            ], frames
            assert job_status(api, job)["status"] == "completed"
        # The script did run and print its lines: the node saw them and did not take them.
        assert f"naming '{FORGED}'" in node.log(), node.log()
    finally:
        stop_all([node, server])
