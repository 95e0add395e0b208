"""A warm Blender's limits, end to end with a real server, node and Blender: the idle timeout
stops it (the next chunk starts a new one), a memory limit below its size replaces it after
each chunk (rendering still right), and a node disabled with `now` while it renders a frame
kills its process group, the chunk going back to the queue."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from blender_scene import make_scene
from farmctl import NodeProcess, ServerProcess, job_frames, job_status, wait_for
from test_e2e_warm import assert_frames_equal, chunks, online, plain, render, starts

pytestmark = pytest.mark.blender

PID = re.compile(r"warm Blender (\d+) started \(pid (\d+)\)")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("limits")
    blend = make_scene(root / "limits.blend", 1, 4, samples=4, resolution=48)
    return blend, plain(blend, root / "ref", [1, 2, 3, 4])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "server", extra=["--node-timeout", "3600"]).start()
    try:
        yield srv
    finally:
        srv.stop()


def node_blenders(node: NodeProcess) -> list[psutil.Process]:
    """The Blender processes the node runs now (zombies not counted)."""
    assert node.proc is not None
    found = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(node.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(child.cmdline()[:2])
                if "blender" in cmd and child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
    return found


def group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is in process group `pgid`."""
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


def test_idle_warm_blender_is_stopped_and_the_next_chunk_starts_one(
    server: ServerProcess, scene: tuple[Path, Path], tmp_path: Path
) -> None:
    blend, ref = scene
    node = NodeProcess(server.master, "idle", tmp_path / "node", extra=["--warm-idle", "2"])
    node.start()
    try:
        with server.tcp() as api:
            online(api)
            first = render(api, blend, tmp_path / "out-1", 1, 2, chunk=1)
            assert first["status"] == "completed", first
            assert starts(node) == 1, node.log()
            wait_for(lambda: "warm Blender 1: idle for 2 s: stopping it" in node.log(), 60,
                     0.1, what="the idle timeout")  # fmt: skip
            wait_for(lambda: not node_blenders(node), 30, 0.1, what="the idle Blender gone")
            second = render(api, blend, tmp_path / "out-2", 3, 4, chunk=1)
            assert second["status"] == "completed", second
        assert starts(node) == 2, node.log()
        assert "warm Blender 2: reused" in node.log()  # its second chunk, within the timeout
        assert_frames_equal(tmp_path / "out-1", ref, [1, 2])
        assert_frames_equal(tmp_path / "out-2", ref, [3, 4])
    finally:
        node.stop()


def test_memory_limit_replaces_the_warm_blender_after_each_chunk(
    server: ServerProcess, scene: tuple[Path, Path], tmp_path: Path
) -> None:
    blend, ref = scene
    # 1 MiB: any Blender is over it, so none is kept after its chunk.
    node = NodeProcess(server.master, "small", tmp_path / "node", extra=["--warm-memory", "1"])
    node.start()
    try:
        with server.tcp() as api:
            online(api)
            job = render(api, blend, tmp_path / "out", 1, 4, chunk=1)
            assert job["status"] == "completed", job
            assert all(f["attempts"] == 1 for f in job_frames(api, job["id"]))
            wait_for(lambda: not node_blenders(node), 30, 0.1, what="the last Blender stopped")
        log = node.log()
        assert starts(node) == 4, log
        assert "reused" not in log
        over = re.findall(r"warm Blender (\d+): uses \d+ MB, over the limit of 1 MB", log)
        assert over == ["1", "2", "3", "4"], log
        assert_frames_equal(tmp_path / "out", ref, [1, 2, 3, 4])
    finally:
        node.stop()


def test_disable_now_stops_the_warm_frame_and_requeues_the_chunk(
    server: ServerProcess, tmp_path: Path
) -> None:
    # Frames of 2 s on any machine (4,000 samples took 1 s here): frame 2 is still rendering
    # when the test, having seen frame 1 done, disables the node.
    blend = make_scene(tmp_path / "slow.blend", 1, 3, seconds=2.0)
    node = NodeProcess(server.master, "busy", tmp_path / "node").start()
    out = tmp_path / "out"
    try:
        with server.tcp() as api:
            online(api)
            values = {"project": "warm", "sequence": "sq", "shot": "now",
                      "blend_file": str(blend), "frame_start": 1, "frame_end": 3,
                      "chunk_size": 3, "output": str(out / "####"), "format": "PNG"}  # fmt: skip
            job = api.ok({"item": "job", "action": "submit", "values": values})
            wait_for(lambda: job_status(api, job["id"])["frames"]["done"] >= 1, 120, 0.05,
                     what="frame 1 done: frame 2 renders")  # fmt: skip
            found = PID.search(node.log())
            assert found is not None, node.log()
            pgid = int(found[2])  # the warm Blender leads its own process group
            assert group_alive(pgid)
            api.ok({"item": "client", "action": "disable", "filters": {"name": "busy"},
                    "values": {"now": True}})  # fmt: skip
            asked = time.monotonic()
            wait_for(lambda: not group_alive(pgid), 30, 0.02, what="the process group gone")
            # How fast is for bench/ (the target is 2 s; an assert on it fails on a busy
            # machine); that it was killed mid-frame shows in the frames never written.
            print(f"warm Blender's group gone {time.monotonic() - asked:.2f} s after disable")
            assert sorted(p.name for p in out.glob("*.png")) == ["0001.png"]
            assert not node_blenders(node)
            status = job_status(api, job["id"])
            assert status["frames"]["rendering"] == 0 and status["frames"]["queued"] == 2, status
            assert [c["status"] for c in chunks(api, job["id"])] == ["queued"]
            # Enabled again, the node takes the chunk back and renders it to the end.
            api.ok({"item": "client", "action": "enable", "filters": {"name": "busy"}})
            wait_for(lambda: job_status(api, job["id"])["status"] == "completed", 180, 0.2,
                     what="the job to complete")  # fmt: skip
        assert sorted(p.name for p in out.glob("*.png")) == ["0001.png", "0002.png", "0003.png"]
        assert starts(node) == 2, node.log()
    finally:
        node.stop()
