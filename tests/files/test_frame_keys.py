"""A frame PUT is bound to the node its chunk was sent to: each render order of an uploaded job
carries an `upload_key`, and `PUT /frames/…` takes a frame only with the key of the chunk run
that holds it now (403 without one or with a wrong one, 409 from a node whose chunk was taken
from it). Scripted nodes on real sockets against a real server process."""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from farmctl import ScriptedNode, ServerProcess, wait_for
from test_blob_http import TOKEN, call
from test_frame_put import put_frame, sim_node, submit_uploaded

from brender import messages


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    # A silent node is offline after 4 s (the server pings quiet ones every 2 s), and its
    # chunk goes to the queue again.
    s = ServerProcess(tmp_path / "server", token=TOKEN, extra=["--node-timeout", "4"]).start()
    try:
        yield s
    finally:
        s.stop()


def error(answer: object) -> tuple[str, str]:
    assert isinstance(answer, dict) and answer["ok"] is False, answer
    return answer["error"]["code"], answer["error"]["message"]


def test_no_key_or_another_chunks_key_is_refused(server: ServerProcess) -> None:
    job = submit_uploaded(server, frames=2)
    a = sim_node(server, "node-a")
    b = sim_node(server, "node-b")
    try:
        order_a, order_b = a.expect("render"), b.expect("render")
        assert (order_a["frames"], order_b["frames"]) == ([1], [2]), (order_a, order_b)
        key_a, key_b = order_a["upload_key"], order_b["upload_key"]
        assert len(key_a) >= 16 and key_a != key_b
        # The farm token alone is not enough.
        status, answer = put_frame(server, job, 1)
        assert status == 403 and error(answer)[0] == "forbidden", answer
        assert "X-Brender-Upload-Key" in error(answer)[1], answer
        # Another chunk's key, a made-up one, one a character short: refused alike.
        for wrong in (key_b, "A" * len(key_a), key_a[:-1]):
            status, answer = put_frame(server, job, 1, key=wrong)
            assert status == 403, (wrong, answer)
            assert error(answer) == (
                "forbidden",
                "wrong upload key for frame 1: send the one of its chunk's order",
            ), answer
        status, answer = put_frame(server, job, 2, key=key_a)
        assert status == 403 and error(answer)[0] == "forbidden", answer
        # Each node's own key takes its own frame.
        status, answer = put_frame(server, job, 1, key=key_a, body=b"frame one")
        assert status == 201, answer
        assert Path(answer["data"]["path"]).read_bytes() == b"frame one"
        assert put_frame(server, job, 2, key=key_b)[0] == 201
    finally:
        a.close()
        b.close()


def test_a_node_that_lost_its_chunk_cannot_overwrite_the_new_nodes_frame(
    server: ServerProcess,
) -> None:
    job = submit_uploaded(server, frames=1)
    a = sim_node(server, "node-a")
    b: ScriptedNode | None = None
    try:
        order_a = a.expect("render")
        key_a = order_a["upload_key"]
        # A goes silent (it answers no ping): the server drops it and gives the chunk to B.
        b = sim_node(server, "node-b")
        order_b = b.expect("render")
        assert order_b["chunk_id"] == order_a["chunk_id"] and order_b["frames"] == [1]
        key_b = order_b["upload_key"]
        assert key_b != key_a
        # A's late upload, before and after B's, is refused and stores nothing.
        status, answer = put_frame(server, job, 1, key=key_a, body=b"A's stale frame")
        assert status == 409, answer
        assert error(answer) == (
            "conflict",
            f"frame 1's chunk {order_a['chunk_id']} is not yours now: it was taken from your"
            " node and sent again",
        ), answer
        status, answer = put_frame(server, job, 1, key=key_b, body=b"B's frame")
        assert status == 201, answer
        stored = Path(answer["data"]["path"])
        status, answer = put_frame(server, job, 1, key=key_a, body=b"A's stale frame")
        assert status == 409 and error(answer)[0] == "conflict", answer
        assert stored.read_bytes() == b"B's frame"
        assert not [p.name for p in stored.parent.iterdir() if p.name.endswith(".part")]
        # B reports it: the frame is done with B's file, which is what the farm serves.
        b.send({"type": "frame", "chunk_id": order_b["chunk_id"], "frame": 1,
                "output_file": str(stored), "render_time": 0.1, "seq": 1})  # fmt: skip
        wait_for(lambda: call(server, "GET", f"/frames/{job}/1")[0] == 200, 10, what="frame done")
        assert call(server, "GET", f"/frames/{job}/1")[1] == b"B's frame"
        status, answer = put_frame(server, job, 1, key=key_a, body=b"A's stale frame")
        assert status == 409 and stored.read_bytes() == b"B's frame", answer
    finally:
        a.close()
        if b is not None:
            b.close()


def test_a_chunk_kept_across_a_restart_takes_frames_with_the_welcomes_new_key(
    server: ServerProcess,
) -> None:
    """The master forgets keys when it stops: the node that reclaims its chunk gets a fresh
    one in its `welcome`, and only that one takes the chunk's frames."""
    job = submit_uploaded(server, frames=1)
    a = sim_node(server, "node-a")
    order = a.expect("render")
    old_key = order["upload_key"]
    assert server.stop() == 0
    a.close()
    http_port = urllib.parse.urlsplit(server.http_url).port or 0
    server.start(tcp_port=server.tcp_port, http_port=http_port)
    # Nobody holds a key for the chunk yet: its node is not back.
    status, answer = put_frame(server, job, 1, key=old_key)
    assert status == 409 and "was running when the master restarted" in error(answer)[1], answer
    a = sim_node(server, "node-a", chunk=order["chunk_id"])
    try:
        new_key = a.welcome.get("upload_key")
        assert isinstance(new_key, str) and new_key != old_key, a.welcome
        status, answer = put_frame(server, job, 1, key=old_key)
        assert status == 403 and error(answer)[0] == "forbidden", answer
        status, answer = put_frame(server, job, 1, key=new_key, body=b"after the restart")
        assert status == 201, answer
        assert Path(answer["data"]["path"]).read_bytes() == b"after the restart"
    finally:
        a.close()


@pytest.mark.parametrize("bad", ["", "a key", "k" * 129, "clé-à-moi", 5])
def test_an_order_or_a_welcome_with_a_malformed_upload_key_is_refused(bad: object) -> None:
    order = {"type": "render", "chunk_id": 1, "job_id": 1, "blend_file": "x.blend",
             "frames": [1], "manifest": "a" * 64}  # fmt: skip
    welcome = {"type": "welcome", "client_id": 1, "heartbeat": 2.0}
    for kind, raw in ((messages.Render, order), (messages.Welcome, welcome)):
        with pytest.raises(messages.MessageError, match="upload_key"):
            kind.parse({**raw, "upload_key": bad})
        key = secrets.token_urlsafe(16)
        parsed = kind.parse({**raw, "upload_key": key})
        assert parsed.upload_key == key and parsed.to_wire()["upload_key"] == key
