"""Warm Blender end to end: a real server and node, Debian's real Blender, frames compared
pixel by pixel with plain `blender -b FILE -f N`.

The scenes are animated (the cube moves; in one a Python driver turns it), so a frame that
was not re-evaluated, or rendered from the wrong file, shows in its pixels.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blender_scene import BLENDER
from farmctl import NodeProcess, ServerProcess, TcpApi, job_frames, job_status, wait_for
from fault_blender import script_fault_blender
from PIL import Image, ImageChops

pytestmark = pytest.mark.blender

STARTED = re.compile(r"warm Blender \d+ started")


def animated_scene(path: Path, *, move: tuple[float, float, float], driver: bool = False) -> Path:
    """A small Cycles scene, frames 1-12, the cube moving by `move`; with `driver`, a Python
    driver that only runs under auto-exec turns it with the frame."""
    lines = [
        "import bpy",
        "s = bpy.context.scene",
        "s.render.engine = 'CYCLES'",
        "s.cycles.samples = 4",
        "s.cycles.use_denoising = False",
        "s.render.resolution_x = s.render.resolution_y = 64",
        "s.render.resolution_percentage = 100",
        "s.frame_start, s.frame_end = 1, 12",
        "cube = bpy.data.objects['Cube']",
        "cube.location = (0, 0, 0)",
        "cube.keyframe_insert('location', frame=1)",
        f"cube.location = {tuple(move)!r}",
        "cube.keyframe_insert('location', frame=12)",
    ]
    if driver:
        lines += [
            "curve = cube.driver_add('rotation_euler', 2)",
            "curve.driver.type = 'SCRIPTED'",
            # Blender 3.4 runs safe expressions (len, lists) even without auto-exec.
            "curve.driver.expression = '__import__(\"math\").sqrt(frame)'",
        ]
    lines.append(f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})")
    path.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [BLENDER, "-b", "--factory-startup", "--python-expr", "\n".join(lines)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and path.is_file(), done.stdout.decode(errors="replace")
    return path


def plain(blend: Path, out: Path, frames: list[int], *, autoexec: bool = False) -> Path:
    """Plain `blender -b [-y] FILE -o OUT -F PNG -x 1 -f N,…`: the reference frames."""
    cmd = [BLENDER, "-b", "-y" if autoexec else "--disable-autoexec", str(blend)]
    cmd += ["-o", str(out / "####"), "-F", "PNG", "-x", "1"]
    cmd += ["-f", ",".join(str(f) for f in frames)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert done.returncode == 0, done.stdout.decode(errors="replace")[-3000:]
    return out


def same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as left, Image.open(b) as right:
        diff = ImageChops.difference(left.convert("RGBA"), right.convert("RGBA"))
        return diff.getbbox(alpha_only=False) is None


def assert_frames_equal(out: Path, ref: Path, frames: range | list[int]) -> None:
    for n in frames:
        name = f"{n:04d}.png"
        assert same_pixels(out / name, ref / name), f"frame {n} differs from plain Blender's"


def starts(node: NodeProcess) -> int:
    """Warm Blenders the node started (it logs each one)."""
    return len(STARTED.findall(node.log()))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("warm-scenes")
    return {
        "a": animated_scene(root / "a.blend", move=(1.5, 0.0, 0.0)),
        "b": animated_scene(root / "b.blend", move=(0.0, 0.0, 1.5)),
    }


@pytest.fixture(scope="module")
def refs(scenes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("warm-refs")
    return {k: plain(blend, root / k, list(range(1, 13))) for k, blend in scenes.items()}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "server", extra=["--node-timeout", "3600"]).start()
    try:
        yield srv
    finally:
        srv.stop()


def online(api: TcpApi) -> None:
    wait_for(
        lambda: any(c["online"] for c in api.ok({"item": "client", "action": "read"})),
        60,
        what="the node online",
    )


def render(
    api: TcpApi, blend: Path, out: Path, first: int, last: int, chunk: int, **values: Any
) -> dict[str, Any]:
    """Submit a job and wait for it to end; the job as the API reads it at the end."""
    request = {
        "project": "warm",
        "sequence": "sq",
        "shot": out.name,
        "blend_file": str(blend),
        "frame_start": first,
        "frame_end": last,
        "chunk_size": chunk,
        "output": str(out / "####"),
        "format": "PNG",
        **values,
    }
    job = api.ok({"item": "job", "action": "submit", "values": request})
    return dict(
        wait_for(
            lambda: (
                (j := job_status(api, job["id"]))["status"] in ("completed", "failed", "canceled")
                and j
            ),
            180,
            0.1,
            f"job {job['id']} to finish",
        )
    )


def chunks(api: TcpApi, job_id: int) -> list[dict[str, Any]]:
    read = {"item": "chunk", "action": "read", "filters": {"job_id": job_id}}
    return sorted(api.ok(read), key=lambda c: c["id"])


def test_one_frame_chunks_render_in_one_warm_blender(
    server: ServerProcess, scenes: dict[str, Path], refs: dict[str, Path], tmp_path: Path
) -> None:
    node = NodeProcess(server.master, "warm", tmp_path / "node").start()
    out = tmp_path / "out"
    try:
        with server.tcp() as api:
            online(api)
            job = render(api, scenes["a"], out, 1, 12, chunk=1)
            assert job["status"] == "completed", job
            assert len(chunks(api, job["id"])) == 12
            assert all(f["attempts"] == 1 for f in job_frames(api, job["id"]))
        assert_frames_equal(out, refs["a"], range(1, 13))
        assert not same_pixels(out / "0001.png", out / "0012.png"), "the scene must move"
        assert starts(node) == 1, node.log()
        assert node.log().count("warm Blender 1: reused") == 11
    finally:
        node.stop()


def test_files_alternate_and_the_warm_blender_follows(
    server: ServerProcess, scenes: dict[str, Path], refs: dict[str, Path], tmp_path: Path
) -> None:
    node = NodeProcess(server.master, "warm", tmp_path / "node").start()
    try:
        with server.tcp() as api:
            online(api)
            for i, name in enumerate("aba"):
                out = tmp_path / f"out-{i}-{name}"
                job = render(api, scenes[name], out, 1 + i, 3 + i, chunk=1)
                assert job["status"] == "completed", job
                assert_frames_equal(out, refs[name], range(1 + i, 4 + i))
            assert starts(node) == 3
            assert node.log().count("another file") == 2
            # The same file, changed on disk (here only its time): a fresh Blender loads it.
            st = scenes["a"].stat()
            os.utime(scenes["a"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
            out = tmp_path / "out-touched"
            job = render(api, scenes["a"], out, 5, 6, chunk=1)
            assert job["status"] == "completed", job
            assert_frames_equal(out, refs["a"], [5, 6])
        assert starts(node) == 4
        assert "the file changed on disk" in node.log()
    finally:
        node.stop()


def test_a_python_driver_renders_as_blender_y(server: ServerProcess, tmp_path: Path) -> None:
    blend = animated_scene(tmp_path / "driver.blend", move=(1.0, 0.0, 0.0), driver=True)
    frames = [1, 4, 9]
    ref = plain(blend, tmp_path / "ref", frames, autoexec=True)
    without = plain(blend, tmp_path / "ref-no-scripts", [9])
    assert not same_pixels(ref / "0009.png", without / "0009.png"), "the driver must matter"
    node = NodeProcess(
        server.master, "trusting", tmp_path / "node", extra=["--allow-autoexec"]
    ).start()
    out = tmp_path / "out"
    try:
        with server.tcp() as api:
            online(api)
            for n in frames:
                job = render(api, blend, out, n, n, chunk=1, autoexec=True)
                assert job["status"] == "completed", job
        assert_frames_equal(out, ref, frames)
        assert starts(node) == 1
        assert " -y " in node.log()
    finally:
        node.stop()


def test_control_script_crash_mid_chunk_blames_the_frame_and_starts_afresh(
    server: ServerProcess, scenes: dict[str, Path], refs: dict[str, Path], tmp_path: Path
) -> None:
    stand_in = script_fault_blender(tmp_path / "blender", "raise", 5, once=tmp_path / "once")
    node = NodeProcess(server.master, "faulty", tmp_path / "node", blender=str(stand_in))
    node.start()
    out = tmp_path / "out"
    try:
        with server.tcp() as api:
            online(api)
            job = render(api, scenes["a"], out, 1, 6, chunk=3)
            assert job["status"] == "completed", job
            frames = {f["number"]: f for f in job_frames(api, job["id"])}
            assert frames[5]["attempts"] == 2
            assert all(f["attempts"] == 1 for n, f in frames.items() if n != 5)
            assert [c["attempts"] for c in chunks(api, job["id"])] == [1, 2]
        assert (tmp_path / "once").exists()
        # The retried chunk's record says how it ended at last; the node's log says why the
        # first try failed, as for a cold Blender.
        assert re.search(r"failed \(exit code 1\): Error: injected fault .* frame 5", node.log())
        assert_frames_equal(out, refs["a"], range(1, 7))
        # The first Blender rendered 1-3 and 4, then died; the retry got a fresh one.
        assert starts(node) == 2, node.log()
    finally:
        node.stop()


def test_a_warm_blender_that_cannot_start_falls_back_to_cold(
    server: ServerProcess, scenes: dict[str, Path], refs: dict[str, Path], tmp_path: Path
) -> None:
    stand_in = script_fault_blender(tmp_path / "blender", "broken")
    node = NodeProcess(server.master, "old", tmp_path / "node", blender=str(stand_in)).start()
    out = tmp_path / "out"
    try:
        with server.tcp() as api:
            online(api)
            job = render(api, scenes["a"], out, 1, 6, chunk=2)
            assert job["status"] == "completed", job
            assert all(f["attempts"] == 1 for f in job_frames(api, job["id"]))
            noted = [c for c in chunks(api, job["id"]) if "could not start" in c["log_tail"]]
            assert len(noted) == 1, chunks(api, job["id"])
        assert_frames_equal(out, refs["a"], range(1, 7))
        assert starts(node) == 1  # tried once, then cold for the rest of the job
        assert node.log().count("the warm Blender could not start") == 1
    finally:
        node.stop()
