"""When the master tells a node its reports are durable (docs/protocol.md, `ack`): a scripted
node on a real socket against a real server."""

from __future__ import annotations

from pathlib import Path

from farmctl import ScriptedNode, ServerProcess, TcpApi, job_status, wait_for


def submit(api: TcpApi, frames: int, chunk_size: int) -> int:
    values = {
        "project": "acks", "sequence": "sq", "shot": f"s{frames}", "blend_file": "/none.blend",
        "frame_start": 1, "frame_end": frames, "chunk_size": chunk_size, "output": "/tmp/x/####",
    }  # fmt: skip
    return int(api.ok({"item": "job", "action": "submit", "values": values})["id"])


def test_a_rendering_node_hears_of_its_reports_with_the_next_order_or_pong(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "farm").start()
    try:
        with server.tcp() as api:
            job = submit(api, 4, 2)
            node = ScriptedNode(server.tcp_port, "acks-1")
            order = node.next()
            assert order["type"] == "render" and order["frames"] == [1, 2]
            chunk = order["chunk_id"]
            # Busy: the frame is committed but not announced on its own...
            node.send({"type": "frame", "chunk_id": chunk, "frame": 1, "seq": 1,
                       "output_file": "/tmp/x/0001.png", "render_time": 0.1})  # fmt: skip
            wait_for(lambda: job_status(api, job)["frames"]["done"] == 1, 10, "frame 1 done")
            # ...the pong of a later ping confirms it.
            node.send({"type": "ping", "t": 1.5})
            assert node.next() == {"type": "pong", "t": 1.5}
            node.send({"type": "frame", "chunk_id": chunk, "frame": 2, "seq": 2,
                       "output_file": "/tmp/x/0002.png", "render_time": 0.1})  # fmt: skip
            node.send({"type": "chunk_done", "chunk_id": chunk, "ok": True, "exit_code": 0,
                       "frames_done": [1, 2], "seq": 3})  # fmt: skip
            # The next order carries what is durable by the time it is sent (at least seq 1);
            # whatever it does not cover is acknowledged once the node is idle again.
            second = node.next()
            assert second["type"] == "render" and second["frames"] == [3, 4]
            assert second.get("ack", 0) >= 1
            node.send({"type": "frame", "chunk_id": second["chunk_id"], "frame": 3, "seq": 4,
                       "output_file": "/tmp/x/0003.png", "render_time": 0.1})  # fmt: skip
            node.send({"type": "frame", "chunk_id": second["chunk_id"], "frame": 4, "seq": 5,
                       "output_file": "/tmp/x/0004.png", "render_time": 0.1})  # fmt: skip
            node.send({"type": "chunk_done", "chunk_id": second["chunk_id"], "ok": True,
                       "exit_code": 0, "frames_done": [3, 4], "seq": 6})  # fmt: skip
            # Idle, nothing left to render: told at once, up to its last report.
            assert node.next() == {"type": "ack", "seq": 6}
            assert job_status(api, job)["status"] == "completed"
            node.api.close()
    finally:
        server.stop()


def test_frame_reports_folded_into_the_chunks_end_count_as_frame_lines_do(
    tmp_path: Path,
) -> None:
    """Protocol 2: a `chunk_done` carries the frame reports that waited with it (`saved`);
    each is checked as a `frame` line is (a wrong file is refused and fails the run), and the
    one `seq` acknowledges them all."""
    server = ServerProcess(tmp_path / "farm").start()
    try:
        with server.tcp() as api:
            job = submit(api, 3, 3)
            node = ScriptedNode(server.tcp_port, "folds-1")
            assert node.welcome["protocol"] == 2  # the master says it reads `saved`
            order = node.next()
            assert order["frames"] == [1, 2, 3]
            chunk = order["chunk_id"]
            node.frame(chunk, 1, "/tmp/x/0001.png")  # seq 1, on its own line
            node.send({"type": "chunk_done", "chunk_id": chunk, "ok": True, "exit_code": 0,
                       "frames_done": [1, 2, 3], "seq": 2, "saved": [
                           {"frame": 2, "output_file": "/tmp/x/0002.png", "render_time": 0.2},
                           {"frame": 3, "output_file": "/tmp/x/elsewhere.png"}]})  # fmt: skip
            # Frame 3's file is not the one its pattern names: refused, so the run failed
            # and frame 3 comes back (to this node: it is the only one).
            retry = node.next()
            assert retry["type"] == "render" and retry["frames"] == [3], retry
            assert retry.get("ack", 0) >= 1  # what was durable when it went (see above)
            wait_for(lambda: job_status(api, job)["frames"]["done"] == 2, 10, "frames 1, 2 done")
            frames = api.ok({"item": "frame", "action": "read", "filters": {"job_id": job}})
            done = {f["number"]: f for f in frames if f["status"] == "done"}
            assert sorted(done) == [1, 2]
            assert done[2]["output_file"] == "/tmp/x/0002.png"
            assert done[2]["render_time"] == 0.2
            node.send({"type": "chunk_done", "chunk_id": retry["chunk_id"], "ok": True,
                       "exit_code": 0, "frames_done": [3], "seq": 3, "saved": [
                           {"frame": 3, "output_file": "/tmp/x/0003.png",
                            "render_time": 0.1}]})  # fmt: skip
            assert node.next() == {"type": "ack", "seq": 3}
            assert job_status(api, job)["status"] == "completed"
            frames = api.ok({"item": "frame", "action": "read", "filters": {"job_id": job}})
            third = next(f for f in frames if f["number"] == 3)
            assert third["output_file"] == "/tmp/x/0003.png" and third["attempts"] == 2
            assert [h["outcome"] for h in third["history"]] == ["failed", "done"]
            assert "a frame report was refused" in third["history"][0]["error"]
            node.api.close()
    finally:
        server.stop()
