"""Every file on a Blender that can open it (issue 12): real server, real nodes, Debian's
Blender 3.4 and Blender 4.5 from PyPI (`--blender bpy`)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from blender_scene import BLENDER, make_scene, make_scene_bpy
from farmctl import NodeProcess, ServerProcess, TcpApi, job_frames, job_status, stop_all, wait_for
from PIL import Image, ImageChops

pytestmark = pytest.mark.blender

DRIVER = (
    # A driver Blender's simple-expression evaluator cannot take: it needs Python (auto-exec).
    "d = bpy.data.objects['Cube'].driver_add('location', 2).driver",
    "d.type = 'SCRIPTED'",
    "d.expression = '(lambda f: f * 0.0 + 1.5)(frame)'",
)


def submit(api: TcpApi, blend: Path, out: Path, **values: Any) -> dict[str, Any]:
    base = {
        "project": "versions", "sequence": "sq", "shot": out.name, "blend_file": str(blend),
        "frame_start": 1, "frame_end": 2, "chunk_size": 1, "output": str(out / "####"),
    }  # fmt: skip
    return dict(api.ok({"item": "job", "action": "submit", "values": {**base, **values}}))


def online(api: TcpApi) -> int:
    rows = api.ok({"item": "client", "action": "read", "filters": {"online": True}})
    return len(rows)


def done(api: TcpApi, job_id: int) -> bool:
    return str(job_status(api, job_id)["status"]) in ("completed", "failed", "canceled")


@contextmanager
def farm(tmp_path: Path) -> Iterator[tuple[ServerProcess, list[NodeProcess]]]:
    server = ServerProcess(tmp_path / "farm").start()
    nodes: list[NodeProcess] = []
    try:
        yield server, nodes
    finally:
        stop_all(nodes)
        server.stop()


def same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as x, Image.open(b) as y:
        diff = ImageChops.difference(x.convert("RGBA"), y.convert("RGBA"))
        return diff.getbbox(alpha_only=False) is None  # by default only alpha counts


def bpy_render(blend: Path, out: Path, frame: int) -> Path:
    """The frame as Blender 4.5 renders it by itself (no farm)."""
    script = "\n".join([
        "import bpy",
        f"bpy.ops.wm.open_mainfile(filepath={str(blend)!r}, load_ui=False)",
        "s = bpy.context.scene",
        # A still render replaces no `#`: give it the frame's own path.
        f"s.render.filepath = {str(out / f'{frame:04d}.png')!r}",
        f"s.frame_set({frame})",
        "bpy.ops.render.render(write_still=True)",
    ])  # fmt: skip
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300)
    return out / f"{frame:04d}.png"


def test_a_file_from_blender_4_5_waits_for_a_node_that_can_open_it(tmp_path: Path) -> None:
    blend = make_scene_bpy(tmp_path / "new.blend", 1, 2, samples=2, resolution=32)
    with farm(tmp_path) as (server, nodes), server.tcp() as api:
        nodes.append(NodeProcess(server.master, "debian", tmp_path / "n1").start())
        wait_for(lambda: online(api) == 1, 30, what="the Debian node online")
        # Asked before the submit (as the add-on does), the farm says it in words.
        values = {"project": "versions", "sequence": "sq", "shot": "out", "blend_file": str(blend)}
        check = api.ok({"item": "job", "action": "check", "values": values})
        assert check["file_version"] == "4.5" and check["nodes"]["able"] == 0, check
        assert check["warning"] == (
            "No node on the farm can open files from Blender 4.5: nodes have 3.4.1. "
            "Add a node with Blender 4.5 or `--blender bpy`."
        )
        job = submit(api, blend, tmp_path / "out")
        assert job["file_version"] == "4.5"  # read from the file's header at submit
        assert job["waiting"] == "needs Blender ≥ 4.5; online nodes have 3.4.1"
        # 20 s: many dispatch passes, and time for a Blender to start and crash, had one run.
        until = time.monotonic() + 20
        while time.monotonic() < until:
            row = job_status(api, job["id"])
            assert row["status"] == "queued" and row["frames"]["queued"] == 2, row
            assert all(f["attempts"] == 0 for f in job_frames(api, job["id"]))
            time.sleep(1)
        assert "chunk " not in nodes[0].log()  # it was never given the job, and ran nothing

        nodes.append(NodeProcess(server.master, "pypi", tmp_path / "n2", blender="bpy").start())
        wait_for(lambda: done(api, job["id"]), 240, what="the job rendered by the bpy node")
        row = job_status(api, job["id"])
        assert row["status"] == "completed" and row["waiting"] is None, row
        check = api.ok({"item": "job", "action": "check", "values": values})
        assert (check["nodes"]["able"], check["warning"], check["waiting"]) == (1, None, None)
        clients = {c["id"]: c for c in api.ok({"item": "client", "action": "read"})}
        for frame in job_frames(api, job["id"]):
            assert clients[frame["client_id"]]["name"] == "pypi"
            alone = bpy_render(blend, tmp_path / "alone", frame["number"])
            assert same_pixels(Path(frame["output_file"]), alone), frame
        pypi = next(c for c in clients.values() if c["name"] == "pypi")
        assert [b["kind"] for b in pypi["blenders"]] == ["bpy"]
        assert pypi["blenders"][0]["version"].startswith("4.5")


def test_a_node_with_two_blenders_picks_the_one_for_each_file(tmp_path: Path) -> None:
    old = make_scene(tmp_path / "old.blend", 1, 2, samples=2, resolution=32)
    new = make_scene_bpy(tmp_path / "new.blend", 1, 2, samples=2, resolution=32)
    with farm(tmp_path) as (server, nodes), server.tcp() as api:
        node = NodeProcess(server.master, "both", tmp_path / "n", extra=["--blender", "bpy"])
        nodes.append(node.start())
        wait_for(lambda: online(api) == 1, 60, what="the node online")
        client = api.ok({"item": "client", "action": "read"})[0]
        assert [b["version"][:3] for b in client["blenders"]] == ["3.4", "4.5"]
        jobs = [submit(api, old, tmp_path / "o34"), submit(api, new, tmp_path / "o45")]
        assert [j["file_version"] for j in jobs] == ["3.4", "4.5"]
        for job in jobs:
            wait_for(lambda j=job: done(api, j["id"]), 240, what=f"job {job['id']}")
            assert job_status(api, job["id"])["status"] == "completed"
        commands = [line for line in node.log().splitlines() if "--disable-autoexec" in line]
        # The bpy engine's child is `-m brender.node.warm_blender` (warm, the default) or
        # `-m brender.node.bpy_render` (a Blender per chunk).
        bpy = ("brender.node.warm_blender", "brender.node.bpy_render")
        assert commands and all(
            (BLENDER in line) == (str(old) in line)
            and any(m in line for m in bpy) == (str(new) in line)
            for line in commands
        ), commands


def test_auto_exec_is_a_choice_of_the_job_and_of_the_node(tmp_path: Path) -> None:
    blend = make_scene(tmp_path / "driven.blend", 1, 1, samples=2, resolution=32)
    # The cube is lifted by a Python driver: with auto-exec off Blender skips the driver.
    subprocess.run(
        [BLENDER, "-b", "-y", str(blend), "--python-expr",
         "import bpy\n" + "\n".join(DRIVER) + "\nbpy.ops.wm.save_mainfile()"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    alone = tmp_path / "alone"
    for flag, name in (("-y", "y"), ("--disable-autoexec", "n")):
        subprocess.run(
            [BLENDER, "-b", flag, str(blend), "-o", str(alone / name / "####"), "-F", "PNG",
             "-x", "1", "-f", "1"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    with_scripts, without = alone / "y" / "0001.png", alone / "n" / "0001.png"
    assert not same_pixels(with_scripts, without)  # the driver shows in the frame
    with farm(tmp_path) as (server, nodes), server.tcp() as api:
        nodes.append(NodeProcess(server.master, "strict", tmp_path / "n1").start())
        wait_for(lambda: online(api) == 1, 30, what="the strict node online")
        plain = submit(api, blend, tmp_path / "plain", frame_end=1)
        wait_for(lambda: done(api, plain["id"]), 120, what="the job without auto-exec")
        frame = job_frames(api, plain["id"])[0]
        assert same_pixels(Path(frame["output_file"]), without)

        job = submit(api, blend, tmp_path / "scripts", frame_end=1, autoexec=True)
        assert job["autoexec"] is True
        assert "--allow-autoexec" in str(job["waiting"])
        nodes.append(
            NodeProcess(server.master, "trusting", tmp_path / "n2", extra=["--allow-autoexec"])
        )
        nodes[-1].start()
        wait_for(lambda: done(api, job["id"]), 120, what="the job with auto-exec")
        frame = job_frames(api, job["id"])[0]
        clients = {c["id"]: c["name"] for c in api.ok({"item": "client", "action": "read"})}
        assert clients[frame["client_id"]] == "trusting"
        assert same_pixels(Path(frame["output_file"]), with_scripts)


def test_bad_versions_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    with farm(tmp_path) as (server, _), server.tcp() as api:
        for values, words in (
            ({"blender": "four"}, "'blender'"),
            ({"file_version": "x.y"}, "'file_version'"),
            ({"autoexec": "yes"}, "'autoexec'"),
        ):
            answer = api.request({"item": "job", "action": "submit", "values": {
                "project": "p", "sequence": "s", "shot": "x", "blend_file": "/nowhere.blend",
                **values}})  # fmt: skip
            assert not answer["ok"] and words in answer["error"]["message"], answer
        not_blend = tmp_path / "notes.blend"
        not_blend.write_text("hello")
        answer = api.request({"item": "job", "action": "submit", "values": {
            "project": "p", "sequence": "s", "shot": "y", "blend_file": str(not_blend)}})  # fmt: skip
        assert not answer["ok"] and "blend_file" in answer["error"]["message"], answer
        job = submit(api, Path("/nowhere.blend"), tmp_path / "o", file_version="4.5.3",
                     blender=">=4.2")  # fmt: skip
        assert (job["file_version"], job["blender"]) == ("4.5", ">=4.2")
