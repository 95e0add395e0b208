"""Frames of an uploaded job survive faults: a frame saved while the server is down reaches it
after the restart, and a node killed mid-job loses no frame (another node renders it again).

Real processes, real Blender, a scene slow enough (a few seconds a frame) for the fault to
land while a frame renders."""

from __future__ import annotations

import re
import signal
import time
import urllib.parse
from pathlib import Path

import psutil
import pytest
from blender_scene import make_scene
from farmctl import (
    Link,
    NodeProcess,
    ServerProcess,
    TcpApi,
    job_frames,
    job_status,
    read_all,
    wait_for,
)
from test_e2e_upload import brender, last_json, render_in_place, same_pixels

pytestmark = pytest.mark.blender

TOKEN = "faults-s3cret"
SENT = re.compile(r"chunk \d+: frame (\d+) sent to the master")
BLENDER_SAVED = re.compile(r"Saved: '.*/out/(\d+)\.png'")


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three frames of a few seconds each, and plain Blender's render of them in place."""
    root = tmp_path_factory.mktemp("slow")
    scene = make_scene(root / "slow.blend", 1, 3, samples=4000, resolution=320)
    started = time.monotonic()
    render_in_place(scene, root / "reference", "1-3")
    print(f"reference: 3 frames in {time.monotonic() - started:.1f} s")
    return scene, root / "reference"


def sent_frames(node: NodeProcess) -> set[int]:
    return {int(m[1]) for m in SENT.finditer(node.log())}


def check_frames(server: ServerProcess, job_id: int, reference: Path, out: Path) -> None:
    """Every frame done, its row pointing at the server's copy, pixel-equal to the reference."""
    with TcpApi(server.tcp_port, TOKEN) as api:
        assert job_status(api, job_id)["status"] == "completed"
        frames = job_frames(api, job_id)
    assert [f["status"] for f in frames] == ["done"] * 3, frames
    for frame in frames:
        path = Path(frame["output_file"])
        assert path.is_relative_to(server.data_dir / "renders"), frame
        assert same_pixels(path, reference / path.name), path
    assert sorted(p.name for p in out.iterdir()) == ["0001.png", "0002.png", "0003.png"]
    for name in ("0001.png", "0002.png", "0003.png"):
        assert same_pixels(out / name, reference / name), name


def test_frame_saved_while_server_down(slow: tuple[Path, Path], tmp_path: Path) -> None:
    scene, reference = slow
    server = ServerProcess(tmp_path / "server", token=TOKEN).start()
    node = NodeProcess(server.master, "far-1", tmp_path / "node", token=TOKEN).start()
    farm = ["--farm", server.http_url, "--token", TOKEN]
    try:
        job = last_json(brender("submit", str(scene), "--upload", *farm, "--frames", "1-3",
                                "--chunk-size", "3"))  # fmt: skip
        wait_for(lambda: 1 in sent_frames(node), 120, 0.1, what="frame 1 on the server")
        assert server.stop() == 0  # SIGTERM while frame 2 renders
        # Frame 2 is saved while the server is away: the node keeps trying to send it.
        wait_for(lambda: "retrying in" in node.log(), 120, 0.2, what="a frame held back")
        assert sent_frames(node) == {1}, node.log()[-3000:]
        http_port = urllib.parse.urlsplit(server.http_url).port or 0
        server.start(tcp_port=server.tcp_port, http_port=http_port)
        out = tmp_path / "frames"
        done = brender("download", str(job["id"]), str(out), *farm, "--wait", "--timeout", "150")
        assert done.returncode == 0, done.stderr + node.log()[-4000:] + server.log()[-4000:]
        check_frames(server, job["id"], reference, out)
    finally:
        node.stop()
        server.stop()


def test_node_killed_mid_upload(slow: tuple[Path, Path], tmp_path: Path) -> None:
    scene, reference = slow
    server = ServerProcess(tmp_path / "server", token=TOKEN, extra=["--node-timeout", "3"])
    server.start()
    first = NodeProcess(server.master, "doomed", tmp_path / "node-1", token=TOKEN).start()
    second = NodeProcess(server.master, "spare", tmp_path / "node-2", token=TOKEN)
    farm = ["--farm", server.http_url, "--token", TOKEN]
    try:
        job = last_json(brender("submit", str(scene), "--upload", *farm, "--frames", "1-3",
                                "--chunk-size", "3"))  # fmt: skip
        wait_for(lambda: 1 in sent_frames(first), 120, 0.1, what="frame 1 on the server")
        assert first.proc is not None and server.proc is not None
        blenders = psutil.Process(first.proc.pid).children(recursive=True)
        # The server freezes, so the node's PUT of frame 2 cannot finish: the node dies with
        # the frame on its way (its answer never comes back).
        server.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: "0002.png'" in first.log(), 120, 0.1, what="frame 2 saved")
            time.sleep(0.5)
            assert "frame 2 sent" not in first.log()
            first.proc.send_signal(signal.SIGKILL)
            first.stop()
        finally:
            server.proc.send_signal(signal.SIGCONT)
        psutil.wait_procs(blenders, timeout=10)  # its Blender dies with it (PDEATHSIG)
        assert not [p for p in blenders if p.is_running()], blenders
        second.start()
        out = tmp_path / "frames"
        done = brender("download", str(job["id"]), str(out), *farm, "--wait", "--timeout", "150")
        assert done.returncode == 0, done.stderr + second.log()[-4000:] + server.log()[-4000:]
        check_frames(server, job["id"], reference, out)
        assert sent_frames(second) >= {2, 3}, second.log()[-3000:]
    finally:
        first.stop()
        second.stop()
        server.stop()


def test_frame_sent_while_the_chunk_was_away(slow: tuple[Path, Path], tmp_path: Path) -> None:
    """The node's link to the master breaks mid-chunk (both processes live on): the master
    gives the chunk back to the queue, so the frame the node saves meanwhile is refused with
    409 (not rendering). The link returns, the node's hello takes its chunk back, and the
    frame is taken then: the chunk ends well, no frame is rendered twice, none is blamed."""
    scene, reference = slow
    server = ServerProcess(tmp_path / "server", token=TOKEN).start()
    link = Link(server.tcp_port)
    node = NodeProcess(f"127.0.0.1:{link.port}", "flaky", tmp_path / "node", token=TOKEN).start()
    farm = ["--farm", server.http_url, "--token", TOKEN]
    try:
        job = last_json(brender("submit", str(scene), "--upload", *farm, "--frames", "1-3",
                                "--chunk-size", "3"))  # fmt: skip
        wait_for(lambda: 1 in sent_frames(node), 120, 0.1, what="frame 1 on the server")
        link.cut()
        wait_for(lambda: "requeued from client" in server.log(), 30, 0.1, what="the give-back")
        refused = f"frame 2 of job {job['id']} is not rendering"
        wait_for(lambda: refused in node.log(), 120, 0.1, what="frame 2 refused with 409")
        link.restore()
        out = tmp_path / "frames"
        done = brender("download", str(job["id"]), str(out), *farm, "--wait", "--timeout", "150")
        assert done.returncode == 0, done.stderr + node.log()[-4000:] + server.log()[-4000:]
        check_frames(server, job["id"], reference, out)
        saved = [int(m[1]) for m in BLENDER_SAVED.finditer(node.log())]
        assert sorted(saved) == [1, 2, 3], node.log()[-4000:]  # each rendered once
        assert "failed on client" not in server.log(), server.log()[-4000:]
        with TcpApi(server.tcp_port, TOKEN) as api:
            chunks = read_all(api, {"item": "chunk", "action": "read",
                                    "filters": {"job_id": job["id"]}})  # fmt: skip
        assert [(c["status"], c["error"]) for c in chunks] == [("done", "")], chunks
    finally:
        node.stop()
        link.close()
        server.stop()
