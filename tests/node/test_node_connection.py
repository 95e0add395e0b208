"""The node against a small fake master on 127.0.0.1: hello, orders, reports, reconnects."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from blender_scene import make_scene
from farmctl import async_wait_for
from node_helpers import FakeMaster, MasterConnection, alive, run, wait_for_condition

from brender import wire
from brender.node.app import EXIT_OK, EXIT_UNAUTHORIZED, run_node
from brender.node.config import NodeConfig


@pytest.fixture(scope="module")
def slow_scene(blender: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.4 s a frame on any machine, so a chunk is still rendering when the test acts."""
    path = tmp_path_factory.mktemp("slow") / "slow.blend"
    return make_scene(path, 1, 100, resolution=96, seconds=0.4, blender=blender)


def make_config(blender: str, port: int, work_dir: Path, **extra: Any) -> NodeConfig:
    # Tests render under the temporary folder: the node may write there.
    extra.setdefault("output_roots", (Path(tempfile.gettempdir()),))
    return NodeConfig(
        blender=blender, work_dir=work_dir, name="test-node", host="127.0.0.1", port=port,
        max_backoff=1.0, **extra,
    )  # fmt: skip


@asynccontextmanager
async def running_node(config: NodeConfig) -> AsyncIterator[asyncio.Task[int]]:
    """The node as a task; stopped (and checked to exit 0) at the end."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_node(config, stop))
    try:
        yield task
    finally:
        stop.set()
        code = await asyncio.wait_for(task, 10)
        assert code == EXIT_OK


def render(chunk_id: int, blend: Path, out: Path, frames: list[int]) -> dict[str, Any]:
    return {
        "type": "render", "chunk_id": chunk_id, "job_id": 1, "blend_file": str(blend),
        "output": str(out / "####"), "format": "PNG", "frames": frames,
    }  # fmt: skip


async def collect_until_done(connection: MasterConnection, timeout: float = 60) -> dict[str, Any]:
    return await connection.expect("chunk_done", timeout)


def test_hello_render_and_reports(blender: str, scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def scenario() -> None:
        async with FakeMaster() as master:
            port = await master.start()
            async with running_node(make_config(blender, port, tmp_path / "work")):
                conn = await master.next_connection()
                hello = conn.hello
                assert hello["type"] == "hello" and hello["protocol"] == wire.PROTOCOL_VERSION
                assert len(hello["node_id"]) == 32
                assert (tmp_path / "work" / "node_id").read_text().strip() == hello["node_id"]
                assert hello["name"] == "test-node"
                assert hello["hostname"] == socket.gethostname()
                assert hello["blender_version"] == "3.4.1"
                assert hello["cpus"] == psutil.cpu_count()
                assert hello["memory"] == psutil.virtual_memory().total
                assert hello["token"] is None and hello["chunk"] is None
                assert hello["mac_address"] is None or len(hello["mac_address"]) == 17

                conn.send(render(7, scene, out, [1, 2, 3]))
                conn.send(render(7, scene, out, [1, 2, 3]))  # a repeat: already on it, no answer
                conn.send(render(8, scene, out, [4]))
                rejected = await conn.expect("rejected")
                assert rejected == {
                    "type": "rejected",
                    "chunk_id": 8,
                    "reason": "busy with chunk 7",
                }
                conn.send({"type": "system", "command": "info", "request": 12})
                info = await conn.expect("system")
                assert info["request"] == 12 and info["command"] == "info"
                assert info["data"]["busy"] is True and info["data"]["chunk_id"] == 7
                assert info["data"]["blender_version"] == "3.4.1"
                assert set(info["data"]["memory"]) == {"total", "available", "used", "percent"}
                conn.send({"type": "ping", "t": 1764316800.25})
                assert await conn.expect("pong") == {"type": "pong", "t": 1764316800.25}

                done = await collect_until_done(conn)
                assert {k: v for k, v in done.items() if k != "seq"} == {
                    "type": "chunk_done", "chunk_id": 7, "ok": True, "exit_code": 0,
                    "canceled": False, "frames_done": [1, 2, 3], "error": None, "log_tail": [],
                }  # fmt: skip
                # Reports are numbered, in order: the master acknowledges them by number.
                seqs = [m["seq"] for m in conn.received if m["type"] in ("frame", "chunk_done")]
                assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == 4
                progress = conn.of_type("progress")
                assert list(dict.fromkeys(m["frame"] for m in progress)) == [1, 2, 3]
                assert progress[0]["phase"] == "loading"  # `Read blend:`, then the frames
                assert {m["phase"] for m in progress} >= {"synchronizing", "rendering"}
                frames = conn.of_type("frame")
                assert [f["frame"] for f in frames] == [1, 2, 3]
                for f in frames:
                    assert f["chunk_id"] == 7
                    assert f["output_file"] == str(out / f"{f['frame']:04d}.png")
                    assert Path(f["output_file"]).stat().st_size > 0
                    assert f["render_time"] > 0
                reports = conn.of_type("progress", "frame", "chunk_done")
                assert reports[-1]["type"] == "chunk_done"
                assert len(conn.of_type("rejected")) == 1

                conn.send({"type": "system", "command": "mac_address", "request": 1})
                conn.send({"type": "system", "command": "memory", "request": 2})
                conn.send({"type": "system", "command": "reboot", "request": 3})
                conn.send({"type": "system", "command": "info", "request": 4})
                answers = [await conn.expect("system") for _ in range(4)]
                assert answers[0]["data"] == {"mac_address": hello["mac_address"]}
                assert answers[1]["data"]["total"] == hello["memory"]
                assert answers[2] == {"type": "system", "command": "reboot", "request": 3,
                                      "error": "unknown system command 'reboot'"}  # fmt: skip
                assert (
                    answers[3]["data"]["busy"] is False and answers[3]["data"]["chunk_id"] is None
                )
                # The node pings at the welcome's heartbeat.
                await conn.expect("ping", 5)

    run(scenario())


def test_failed_chunk_reports_blenders_error(blender: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeMaster() as master:
            port = await master.start()
            async with running_node(make_config(blender, port, tmp_path / "work")):
                conn = await master.next_connection()
                conn.send(render(3, tmp_path / "missing.blend", tmp_path, [1, 2]))
                done = await collect_until_done(conn)
                assert done["ok"] is False and done["exit_code"] == 1
                assert done["error"].startswith("Error: Cannot read file")
                assert any("Cannot read file" in line for line in done["log_tail"])
                conn.send({"type": "render", "chunk_id": 4, "frames": []})
                rejected = await conn.expect("rejected")
                assert rejected["chunk_id"] == 4
                assert rejected["reason"].startswith("invalid render order:")

    run(scenario())


@pytest.mark.parametrize(
    ("blend_file", "output", "words"),
    [
        ("-P", "/tmp/out/####", "blend_file starts with '-'"),
        ("relative.blend", "/tmp/out/####", "blend_file is not an absolute path"),
        ("/x.blend", "/tmp/x\nSaved: '/etc/passwd'\n####", "output holds a control character"),
    ],
)
def test_orders_with_paths_blender_would_misread_are_refused(
    blender: str, tmp_path: Path, blend_file: str, output: str, words: str
) -> None:
    # The server refuses such paths at submit; the node checks each order again.
    async def scenario() -> None:
        async with FakeMaster() as master:
            port = await master.start()
            async with running_node(make_config(blender, port, tmp_path / "work")):
                conn = await master.next_connection()
                order = {**render(5, Path("/x.blend"), tmp_path, [1]), "blend_file": blend_file,
                         "output": output}  # fmt: skip
                conn.send(order)
                rejected = await conn.expect("rejected")
                assert rejected["chunk_id"] == 5 and words in rejected["reason"], rejected
                assert not conn.of_type("frame", "chunk_done")  # no Blender was started

    run(scenario())


def test_cancel_order(blender: str, slow_scene: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeMaster() as master:
            port = await master.start()
            async with running_node(make_config(blender, port, tmp_path / "work")):
                conn = await master.next_connection()
                conn.send(render(5, slow_scene, tmp_path / "out", list(range(1, 60))))
                await conn.expect("progress")
                blenders = psutil.Process().children(recursive=True)
                assert blenders
                conn.send({"type": "cancel", "chunk_id": 99})  # not ours: ignored
                conn.send({"type": "cancel", "chunk_id": 5})
                # Cancelled, not finished: the 59 slow frames would take minutes.
                done = await conn.expect("chunk_done", 30)
                assert done["canceled"] is True and done["ok"] is False
                assert done["exit_code"] == -15
                pids = [p.pid for p in blenders]
                await wait_for_condition(
                    lambda: not any(map(alive, pids)), 10, "Blender to be gone"
                )

    run(scenario())


def test_reconnect_resends_the_outbox_in_order(
    blender: str, slow_scene: Path, tmp_path: Path
) -> None:
    frames = [1, 2, 3, 4, 5]

    async def scenario() -> None:
        async with FakeMaster() as master:
            port = await master.start()
            async with running_node(make_config(blender, port, tmp_path / "work")):
                first = await master.next_connection()
                first.send(render(7, slow_scene, tmp_path / "out", frames))
                await first.expect("frame")
                # The master vanishes mid-chunk and takes a while to take the node back: the node
                # keeps rendering, and its reports wait in the outbox.
                master.hold_welcome = 2.5
                first.drop()
                second = await master.next_connection()
                assert second.hello["chunk"] is not None
                assert second.hello["chunk"]["chunk_id"] == 7
                done = await second.expect("chunk_done", 60)
                assert done["ok"] is True and done["frames_done"] == frames
                resent = [m["frame"] for m in second.of_type("frame")]
                assert resent, "frames rendered while away must be sent after the welcome"
                assert resent == sorted(resent)
                assert {m["frame"] for m in first.of_type("frame")} | set(resent) == set(frames)
                reports = second.of_type("frame", "chunk_done")
                assert reports[-1]["type"] == "chunk_done"
                assert len(master.all) == 2

    run(scenario(), 120)


def test_reports_that_waited_for_the_master_go_folded_into_the_chunks_end(
    blender: str, scene: Path, tmp_path: Path
) -> None:
    """The master is away for the whole chunk; the one it comes back as reads `saved`
    (protocol 2): the frames' reports and the end go as one `chunk_done`, one `seq`."""
    out = tmp_path / "out"
    ended = asyncio.Event()

    class ChunkEnded(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("chunk 7 done"):
                ended.set()  # logged as the end is queued, in the same step

    watcher = ChunkEnded()
    orders_log = logging.getLogger("brender.node.orders")
    level = orders_log.level
    orders_log.setLevel(logging.INFO)
    orders_log.addHandler(watcher)

    async def scenario() -> None:
        async with FakeMaster() as master:
            port = await master.start()
            async with running_node(make_config(blender, port, tmp_path / "work")):
                first = await master.next_connection()
                master.welcome_gate, master.protocol = ended, 2
                first.send(render(7, scene, out, [1, 2, 3]))
                await first.expect("progress")  # it has the order
                first.drop()
                second = await master.next_connection(60)
                done = await second.expect("chunk_done", 60)
                assert not second.of_type("frame")
                assert [(f["frame"], f["output_file"]) for f in done["saved"]] == [
                    (n, str(out / f"{n:04d}.png")) for n in (1, 2, 3)
                ]
                assert all(f["render_time"] > 0 for f in done["saved"])
                assert done["ok"] is True and done["frames_done"] == [1, 2, 3]
                assert isinstance(done["seq"], int)

    try:
        run(scenario(), 120)
    finally:
        orders_log.removeHandler(watcher)
        orders_log.setLevel(level)


def test_node_waits_for_a_master_that_is_not_up_yet(
    blender: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The node logs every attempt that fails (the first as a warning, the rest at debug).
    caplog.set_level(logging.DEBUG, logger="brender.node.connection")
    refusal = f"cannot reach the master at 127.0.0.1:{port} ([Errno {errno.ECONNREFUSED}]"

    def refused() -> int:
        return sum(
            r.name == "brender.node.connection" and r.getMessage().startswith(refusal)
            for r in caplog.records
        )

    async def scenario() -> None:
        async with (
            FakeMaster() as master,
            running_node(make_config(blender, port, tmp_path / "work")),
        ):
            await async_wait_for(lambda: refused() >= 3, 30, what="3 refused attempts")
            await master.start(port)
            conn = await master.next_connection(30)
            assert conn.hello["name"] == "test-node"

    run(scenario())


def test_unauthorized_makes_the_node_exit(blender: str, tmp_path: Path) -> None:
    async def scenario() -> int:
        refuse = {"type": "error", "code": "unauthorized", "message": "this farm needs a token"}
        async with FakeMaster(refuse=refuse) as master:
            port = await master.start()
            config = make_config(blender, port, tmp_path / "work", token="wrong")
            code = await asyncio.wait_for(run_node(config), 30)
            conn = await master.next_connection(10)
            assert conn.hello["token"] == "wrong"
            assert len(master.all) == 1, "no retry with a refused token"
            return code

    assert run(scenario()) == EXIT_UNAUTHORIZED


def test_reports_the_master_did_not_confirm_are_resent(
    blender: str, scene: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with FakeMaster() as master:
            master.answer_pings = False  # so nothing the node writes is known to be read
            port = await master.start()
            async with running_node(make_config(blender, port, tmp_path / "work")):
                first = await master.next_connection()
                first.send(render(9, scene, tmp_path / "out", [1, 2]))
                await first.expect("chunk_done")
                master.answer_pings = True
                first.drop()
                second = await master.next_connection()
                assert second.hello["chunk"] == {"chunk_id": 9, "running": False}
                done = await second.expect("chunk_done")
                assert done["ok"] is True
                assert [m["frame"] for m in second.of_type("frame")] == [1, 2]
                # Once acknowledged, they are gone: a new connection starts clean. The node
                # handles lines in order: its answer to this `system` shows it has read the ack.
                await wait_for_condition(
                    lambda: not _pending_resend(second), 5, "the reports acknowledged"
                )
                second.send({"type": "system", "command": "memory", "request": 2})
                await second.expect("system")
                second.drop()
                third = await master.next_connection()
                assert third.hello["chunk"] is None
                third.send({"type": "system", "command": "memory", "request": 1})
                await third.expect("system")
                assert not third.of_type("frame", "chunk_done")

    run(scenario())


def _pending_resend(connection: MasterConnection) -> bool:
    """True until the master has acknowledged the last report it read."""
    reports = [m for m in connection.received if m.get("type") in ("frame", "chunk_done")]
    return not reports or connection.acked < reports[-1]["seq"]


def test_orders_before_the_welcome_are_served_after_it(blender: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeMaster() as master:
            master.before_welcome = [
                {"type": "cancel", "chunk_id": 4},
                {"type": "system", "command": "mac_address", "request": 5},
            ]
            port = await master.start()
            async with running_node(make_config(blender, port, tmp_path / "work")):
                conn = await master.next_connection()
                answer = await conn.expect("system")
                assert answer["request"] == 5 and "data" in answer

    run(scenario())
