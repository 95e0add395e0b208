"""A frame report counts only for a frame of the chunk the node holds, with the file the job's
output pattern names for it (server/reports.py): a scripted node on a real socket against a
real server tries everything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from farmctl import ScriptedNode, ServerProcess, TcpApi, frame_file, job_frames


def submit(api: TcpApi, shot: str, output: str, **values: Any) -> int:
    values = {"project": "reports", "sequence": "sq", "shot": shot, "blend_file": "/r.blend",
              "frame_start": 1, "frame_end": 4, "output": output, **values}  # fmt: skip
    return int(api.ok({"item": "job", "action": "submit", "values": values})["id"])


def refused_lines(server: ServerProcess) -> int:
    return server.log().count("refused a frame report from client")


def test_reports_for_frames_the_node_does_not_hold_or_files_the_job_does_not_name(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "farm").start()
    out = tmp_path / "out"
    try:
        with server.tcp() as api:
            paused = submit(api, "paused", str(out / "p" / "####"), paused=True)
            job = submit(api, "run", str(out / "####"), chunk_size=2)
            node = ScriptedNode(server.tcp_port, "liar")
            order = node.next()
            assert order["type"] == "render" and order["frames"] == [1, 2], order
            chunk = order["chunk_id"]
            right = frame_file(order, 1)
            assert right == str(out / "0001.png")
            lies = [
                (chunk, 3, frame_file(order, 3)),  # a frame of the job, not of this chunk
                (chunk, 1, "/etc/passwd"),
                (chunk, 1, frame_file(order, 2)),  # another frame's file
                (chunk, 1, str(out / "p" / "0001.png")),  # the paused job's file
                (chunk, 1, right + ".png"),
                (chunk, 1, str(out / "0001.exr")),
                (chunk, 1, str(out / "00001.png")),
            ]
            for chunk_id, frame, path in lies * 10:
                node.frame(chunk_id, frame, path)
            # Chunks it does not hold (the paused job's never went out): ignored, as a
            # resend of a chunk given back would be, and not counted.
            for chunk_id in range(chunk - 3, chunk + 10):
                if chunk_id != chunk:
                    node.frame(chunk_id, 1, "/etc/passwd")
            node.settle()

            frames = job_frames(api, job)
            assert [f["status"] for f in frames] == ["rendering"] * 2 + ["queued"] * 2, frames
            assert all(not f["output_file"] for f in frames), frames
            assert {f["status"] for f in job_frames(api, paused)} == {"queued"}
            [client] = api.ok({"item": "client", "action": "read"})
            assert client["refused_reports"] == len(lies) * 10
            # Logged once for the node, not 70 times (once a minute, server/reports.py).
            assert refused_lines(server) == 1, server.log()

            # The true report still counts.
            node.frame(chunk, 1, right)
            node.frame(chunk, 2, str(out / "." / "0002.png"))  # normalised, as Blender does
            node.settle()
            done = [f for f in job_frames(api, job) if f["status"] == "done"]
            assert [(f["number"], f["output_file"]) for f in done] == [
                (1, right),
                (2, str(out / "." / "0002.png")),
            ]
            node.api.close()
    finally:
        server.stop()


def test_a_view_file_stands_for_its_frame_on_shared_storage(tmp_path: Path) -> None:
    """Stereo saved view by view: on shared storage a node reports the first view's file (the
    others lie beside it); a view of another frame, or a suffix that is no view's, is refused."""
    server = ServerProcess(tmp_path / "farm").start()
    out = tmp_path / "out"
    try:
        with server.tcp() as api:
            job = submit(api, "stereo", str(out / "sh_####"), chunk_size=2)
            node = ScriptedNode(server.tcp_port, "stereo")
            order = node.next()
            chunk = order["chunk_id"]
            for lie in ("sh_0002_L.png", "sh_00015.png", "sh_0001_L.exr", "sh_0001_ L.png"):
                node.frame(chunk, 1, str(out / lie))
            node.frame(chunk, 2, str(out / "sh_0001_R.png"))
            node.settle()
            [client] = api.ok({"item": "client", "action": "read"})
            assert client["refused_reports"] == 5
            node.frame(chunk, 1, str(out / "sh_0001_L.png"))
            node.frame(chunk, 2, str(out / "sh_0002_left.png"))  # a view named by the artist
            node.settle()
            done = [(f["number"], f["output_file"]) for f in job_frames(api, job)][:2]
            assert done == [(1, str(out / "sh_0001_L.png")), (2, str(out / "sh_0002_left.png"))]
            node.close()
    finally:
        server.stop()
