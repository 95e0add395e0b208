"""`PUT /frames/<job>/<n>` takes a frame only for an uploaded job's frame that is rendering,
with the token and the upload key of its chunk's order; a frame that takes no file now is a
409 with a JSON error (tests/files/test_frame_keys.py tries the keys). A simulated node
(real TCP, the real protocol, no Blender) holds the chunk."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farmctl import ScriptedNode, ServerProcess, wait_for
from test_blob_http import AUTH, TOKEN, call

BLEND = b"BLENDER-v304" + b"\0" * 64


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path / "server", token=TOKEN).start()
    try:
        yield s
    finally:
        s.stop()


def sim_node(
    server: ServerProcess, node_id: str = "sim-frames", chunk: int | None = None
) -> ScriptedNode:
    """A node on one TCP connection that takes orders and reports what the test says."""
    held: dict[str, Any] = {} if chunk is None else {"chunk": {"chunk_id": chunk, "running": True}}
    return ScriptedNode(server.tcp_port, node_id, node_id=node_id, token=TOKEN, protocol=1,
                        blender_version="3.4.1", **held)  # fmt: skip


def submit_uploaded(server: ServerProcess, shot: str = "x", frames: int = 2) -> int:
    sha = hashlib.sha256(BLEND).hexdigest()
    assert call(server, "PUT", f"/blobs/{sha}", BLEND)[0] in (200, 201)
    answer = server.http({"item": "job", "action": "submit", "values": {
        "project": "p", "sequence": "s", "shot": shot, "frame_start": 1,
        "frame_end": frames, "chunk_size": 1, "upload": {"main": "x.blend", "files": {"x.blend": {
            "sha256": sha, "size": len(BLEND)}}}}})  # fmt: skip
    assert answer["ok"], answer
    return int(answer["data"]["id"])


def put_frame(
    server: ServerProcess, job: int, n: int, name: str = "", key: str | None = None,
    body: bytes = b"png" * 100, **headers: str,
) -> tuple[int, Any]:  # fmt: skip
    """PUT a frame, with `key` as its upload key (none when None)."""
    keyed = {} if key is None else {"X-Brender-Upload-Key": key}
    return call(server, "PUT", f"/frames/{job}/{n}?name={name or f'{n:04d}.png'}",
                body, {**AUTH, **keyed, **headers})  # fmt: skip


def test_only_rendering_frames_of_uploaded_jobs(server: ServerProcess, tmp_path: Path) -> None:
    job = submit_uploaded(server)
    shared = server.http({"item": "job", "action": "submit", "values": {
        "project": "p", "sequence": "s", "shot": "y", "blend_file": str(tmp_path / "y.blend"),
        "frame_start": 1, "frame_end": 1, "paused": True}})["data"]["id"]  # fmt: skip
    # Queued, not rendering yet: refused.
    status, answer = put_frame(server, job, 1, key="no-order-yet")
    assert status == 409 and answer["error"]["code"] == "conflict", answer
    assert "not rendering" in answer["error"]["message"]
    node = sim_node(server)
    try:
        order = node.expect("render")
        assert order["job_id"] == job and order["frames"] == [1], order
        key = order["upload_key"]
        status, answer = put_frame(server, job, 1, key=key)
        assert status == 201, answer
        stored = answer["data"]["path"]
        assert Path(stored).read_bytes() == b"png" * 100
        # The node may send it again: the answer was lost.
        assert put_frame(server, job, 1, key=key)[0] == 201
        status, answer = put_frame(server, job, 2, key=key)  # frame 2 is still queued
        assert status == 409 and "frame 2 of job" in answer["error"]["message"], answer
        # Only under the name the job's pattern gives frame 1: no other frame's file, no other
        # file of the folder.
        # Nor a view's file (stereo saved view by view): one file a frame comes back.
        for name in ("0002.png", "0001.exr", "x.png", "00001.png", "0001_L.png"):
            status, answer = put_frame(server, job, 1, name, key)
            assert status == 422, (name, answer)
            assert "frame 1's file is '0001.png'" in answer["error"]["message"], answer
        # A report naming another file than the one stored is refused (server/reports.py).
        for seq, name in enumerate(("0002.png", "0001_L.png"), start=1):
            node.send({"type": "frame", "chunk_id": order["chunk_id"], "frame": 1,
                       "output_file": str(Path(stored).with_name(name)),
                       "render_time": 0.1, "seq": seq})  # fmt: skip
        node.send({"type": "ping", "t": 1.0})
        node.expect("pong")
        assert put_frame(server, job, 1, key=key)[0] == 201, "the refused report left it rendering"
        node.send({"type": "frame", "chunk_id": order["chunk_id"], "frame": 1,
                   "output_file": stored, "render_time": 0.1, "seq": 3})  # fmt: skip
        # Reported: the frame is done, it takes no other file.
        wait_for(
            lambda: put_frame(server, job, 1, key=key)[0] == 409,
            10,
            what="frame 1 refused once done",
        )
    finally:
        node.close()
    status, answer = put_frame(server, shared, 1, key=key)
    assert status == 409 and "shared storage" in answer["error"]["message"], answer
    status, answer = put_frame(server, 999, 1, key=key)
    assert status == 404 and answer["error"]["code"] == "not_found", answer
    status, answer = put_frame(server, job, 1, key=key, Authorization="Bearer wrong")
    assert status == 401 and answer["error"]["code"] == "unauthorized", answer
