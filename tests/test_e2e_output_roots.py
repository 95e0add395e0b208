"""A node writes only under its work dir, its `--output-root`s and, for the local node, next to
the artist's .blend (brender.roots): an order outside is refused with the reason, and the job
waits saying why. Real server, real nodes, Debian's Blender."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from farmctl import NodeProcess, ServerProcess, TcpApi, job_status, stop_all, wait_for

pytestmark = pytest.mark.blender


def submit(api: TcpApi, scene: Path, shot: str, output: str | None) -> int:
    values: dict[str, Any] = {
        "project": "roots", "sequence": "sq", "shot": shot, "blend_file": str(scene),
        "frame_start": 1, "frame_end": 2, "chunk_size": 2,
    }  # fmt: skip
    if output is not None:
        values["output"] = output
    return int(api.ok({"item": "job", "action": "submit", "values": values})["id"])


def waiting(api: TcpApi, job: int) -> str:
    return str(job_status(api, job).get("waiting") or "")


def finished(api: TcpApi, job: int) -> bool:
    return job_status(api, job)["status"] in ("completed", "failed")


def test_an_output_outside_the_roots_is_refused_and_the_job_says_why(
    scene: Path, blender: str, tmp_path: Path
) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "link").symlink_to(outside)  # inside as written, outside for real
    server = ServerProcess(tmp_path / "farm").start()
    work = tmp_path / "node"
    node = NodeProcess(server.master, "n1", work, blender=blender, output_roots=[allowed])
    try:
        node.start()
        with server.tcp() as api:
            wait_for(lambda: api.ok({"item": "client", "action": "read"}), 30, what="the node")
            # The server knows the node's roots: it does not send it this job at all.
            far = submit(api, scene, "far", str(outside / "####"))
            why = wait_for(lambda: waiting(api, far), 10, what="a waiting reason")
            assert f"no online node may write to {outside}" in why, why
            assert str(allowed) in why and "--output-root" in why, why
            # Through a link: only the node sees it leaves the root, and refuses the order.
            linked = submit(api, scene, "linked", str(allowed / "link" / "####"))
            refused = f"output {outside} is outside this node's output roots: {work}, {allowed}"
            wait_for(lambda: refused in node.log(), 30, what="the node's refusal")
            why = wait_for(lambda: waiting(api, linked), 10, what="the linked job to wait")
            assert f"no online node may write to {allowed / 'link'}" in why, why
            # Inside: it renders.
            inside = submit(api, scene, "inside", str(allowed / "sub" / "####"))
            wait_for(lambda: finished(api, inside), 120, what="the job inside the roots")
            assert job_status(api, inside)["status"] == "completed"
            assert sorted(p.name for p in (allowed / "sub").iterdir()) == ["0001.png", "0002.png"]
            for job in (far, linked):
                status = job_status(api, job)
                assert status["frames"]["queued"] == 2 and status["status"] in (
                    "queued",
                    "active",
                ), status
        assert list(outside.iterdir()) == [], "nothing was written outside the roots"
    finally:
        stop_all([node, server])


def test_the_local_node_writes_where_a_local_farm_renders(
    scene: Path, blender: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    blend = Path(shutil.copy(scene, project / "shot.blend"))
    server = ServerProcess(tmp_path / "farm", extra=["--local-node", "--blender", blender])
    server.start()
    try:
        with server.tcp() as api:
            default = submit(api, blend, "default", None)  # under the server's data dir
            beside = submit(api, blend, "beside", "//render/####")  # next to the .blend
            elsewhere = submit(api, blend, "elsewhere", str(tmp_path / "elsewhere" / "####"))
            for job in (default, beside):
                wait_for(lambda j=job: finished(api, j), 120, what=f"job {job}")  # type: ignore[misc]
                assert job_status(api, job)["status"] == "completed", job_status(api, job)
            assert sorted(os.listdir(project / "render")) == ["0001.png", "0002.png"]
            renders = tmp_path / "farm" / "renders"
            assert len(list(renders.rglob("*.png"))) == 2
            why = wait_for(lambda: waiting(api, elsewhere), 10, what="a waiting reason")
            assert f"no online node may write to {tmp_path / 'elsewhere'}" in why, why
    finally:
        server.stop()
