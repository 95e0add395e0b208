"""The farm renders: a real server, two real nodes and Debian's real Blender, end to end."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbs import KINDS, fresh_database, query
from farmctl import NodeProcess, ServerProcess, TcpApi, job_frames, job_status, stop_all, wait_for

pytestmark = pytest.mark.blender


def submit_values(scene: Path, out: Path, **extra: Any) -> dict[str, Any]:
    return {
        "project": "e2e",
        "sequence": "sq01",
        "shot": "sh010",
        "blend_file": str(scene),
        "frame_start": 1,
        "frame_end": 12,
        "chunk_size": 3,
        "output": str(out / "####"),
        "format": "PNG",
        **extra,
    }


def wait_job_done(api: TcpApi, job_id: int, timeout: float = 120.0) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = job_status(api, job_id)
        return job if job["status"] in ("completed", "failed", "canceled") else None

    return wait_for(finished, timeout, 0.2, f"job {job_id} to finish")


def check_rendered(api: TcpApi, job_id: int, out: Path, node_ids: set[int]) -> None:
    job = job_status(api, job_id)
    assert job["status"] == "completed", job
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"{n:04d}.png" for n in range(1, 13)]
    assert all(f.stat().st_size > 0 for f in files)
    frames = job_frames(api, job_id)
    assert [f["number"] for f in frames] == list(range(1, 13))
    for frame in frames:
        assert frame["status"] == "done", frame
        assert frame["client_id"] in node_ids
        assert frame["output_file"] == str(out / f"{frame['number']:04d}.png")
        assert frame["render_time"] is not None and frame["render_time"] > 0
        assert frame["attempts"] == 1, f"frame {frame['number']} was dispatched twice"
    assert {f["client_id"] for f in frames} == node_ids, "both nodes should have rendered"
    chunks = api.ok({"item": "chunk", "action": "read", "filters": {"job_id": job_id}})
    assert len(chunks) == 4 and all(c["status"] == "done" and c["attempts"] == 1 for c in chunks)


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file, or a fresh database on the test PostgreSQL server."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def farm(tmp_path: Path, db_url: str) -> Any:
    server = ServerProcess(tmp_path / "server", db_url=db_url).start()
    nodes = [NodeProcess(server.master, f"node-{i}", tmp_path / f"node-{i}") for i in (1, 2)]
    try:
        for node in nodes:
            node.start()
        with server.tcp() as api:
            wait_for(
                lambda: (
                    len([c for c in api.ok({"item": "client", "action": "read"}) if c["online"]])
                    == 2
                ),
                60,
                what="two nodes online",
            )
            yield server, nodes, api
    finally:
        stop_all(nodes)
        server.stop()


def _node_ids(api: TcpApi) -> set[int]:
    return {c["id"] for c in api.ok({"item": "client", "action": "read"})}


def test_twelve_frames_over_tcp(farm: Any, scene: Path, tmp_path: Path) -> None:
    server, _nodes, api = farm
    out = tmp_path / "out-tcp"
    job = api.ok({"item": "job", "action": "submit", "values": submit_values(scene, out)})
    assert job["status"] == "queued" and job["frames"]["total"] == 12
    wait_job_done(api, job["id"])
    check_rendered(api, job["id"], out, _node_ids(api))
    # The database itself holds the record, not just the server's answers.
    assert server.db_url is not None
    rows = query(
        server.db_url,
        "SELECT status, client_id, output_file FROM frame WHERE job_id = ?",
        (job["id"],),
    )
    assert len(rows) == 12 and all(r[0] == "done" and r[1] and r[2] for r in rows)


def test_twelve_frames_over_http(farm: Any, scene: Path, tmp_path: Path) -> None:
    server, _nodes, api = farm
    out = tmp_path / "out-http"
    answer = server.http({"item": "job", "action": "submit", "values": submit_values(scene, out)})
    assert answer["ok"], answer
    wait_job_done(api, answer["data"]["id"])
    check_rendered(api, answer["data"]["id"], out, _node_ids(api))


def test_node_restart_keeps_its_client(tmp_path: Path, db_url: str) -> None:
    server = ServerProcess(tmp_path / "server", db_url=db_url).start()
    node = NodeProcess(server.master, "box-1", tmp_path / "box-1")
    try:
        with server.tcp() as api:
            for _ in range(3):
                node.start()
                wait_for(
                    lambda: any(c["online"] for c in api.ok({"item": "client", "action": "read"})),
                    60,
                    what="node online",
                )
                assert node.stop() == 0, node.log()[-3000:]
                wait_for(
                    lambda: (
                        not any(c["online"] for c in api.ok({"item": "client", "action": "read"}))
                    ),
                    30,
                    what="node offline",
                )
            clients = api.ok({"item": "client", "action": "read"})
            assert len(clients) == 1, clients
            assert clients[0]["name"] == "box-1"
    finally:
        node.stop()
        server.stop()
    assert query(db_url, "SELECT COUNT(*) FROM client") == [(1,)]


def test_server_restart_keeps_everything(tmp_path: Path, scene: Path, db_url: str) -> None:
    server = ServerProcess(tmp_path / "server", db_url=db_url).start()
    node = NodeProcess(server.master, "keeper", tmp_path / "keeper")
    out = tmp_path / "out"
    try:
        node.start()
        with server.tcp() as api:
            job = api.ok(
                {
                    "item": "job",
                    "action": "submit",
                    "values": submit_values(scene, out, frame_end=4, chunk_size=2),
                }
            )
            wait_job_done(api, job["id"])
            api.ok({"item": "client", "action": "disable", "filters": {"name": "keeper"}})
            before = {
                item: api.ok({"item": item, "action": "read"})
                for item in ("project", "sequence", "shot", "job", "frame", "client")
            }
        node.stop()
        assert server.stop(signal.SIGTERM) == 0
        server.start()
        with server.tcp() as api:
            after = {item: api.ok({"item": item, "action": "read"}) for item in before}
        for item in ("project", "sequence", "shot", "job", "frame"):
            assert after[item] == before[item], item
        (client,) = after["client"]
        assert client["id"] == before["client"][0]["id"]
        assert client["status"] == "disabled" and client["online"] is False
    finally:
        node.stop()
        server.stop()


def test_bad_input_on_tcp(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server").start()
    try:
        with server.tcp() as api, server.tcp() as other:
            api.send_raw(b"{broken\n")
            answer = api.read_answer()
            assert answer["ok"] is False and answer["error"]["code"] == "bad_json"
            # The connection stays usable.
            assert api.ok({"item": "server", "action": "status"})["version"]
            api.send_raw(b"{" + b" " * (1024 * 1024 + 16) + b"\n")
            answer = api.read_answer()
            assert answer["ok"] is False and answer["error"]["code"] == "too_large"
            with pytest.raises((ConnectionError, OSError)):
                api.ok({"item": "server", "action": "status"})
            # Other connections are served as before.
            assert other.ok({"item": "server", "action": "status"})["version"]
        with server.tcp() as fresh:
            assert fresh.ok({"item": "project", "action": "read"}) == []
    finally:
        assert server.stop() == 0
