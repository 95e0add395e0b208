"""`brender-node` as a real process: start-up checks, exit codes, signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
from node_helpers import FakeMaster, alive, run, wait_for_condition

NODE = [sys.executable, "-m", "brender.node.main"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRENDER_")}
    env.update(extra)
    return env


def node(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NODE, *args], capture_output=True, text=True, timeout=60, env=env or clean_env()
    )


def test_missing_blender_exits_2(tmp_path: Path) -> None:
    result = node("--blender", "/nonexistent", "--work-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        "brender-node: cannot run Blender at '/nonexistent': No such file or directory\n"
    )
    assert result.stdout == ""


def test_blender_from_the_environment(tmp_path: Path) -> None:
    result = node(env=clean_env(BRENDER_BLENDER="/nope/blender", BRENDER_WORK_DIR=str(tmp_path)))
    assert result.returncode == 2
    assert "cannot run Blender at '/nope/blender'" in result.stderr


def test_blender_that_is_not_runnable_or_not_blender(tmp_path: Path) -> None:
    text = tmp_path / "blender.txt"
    text.write_text("not a program")
    result = node("--blender", str(text), "--work-dir", str(tmp_path))
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"brender-node: cannot run Blender at '{text}': Permission denied"
    )

    impostor = tmp_path / "impostor"
    impostor.write_text("#!/bin/sh\necho hello\n")
    impostor.chmod(0o755)
    result = node("--blender", str(impostor), "--work-dir", str(tmp_path))
    assert result.returncode == 2
    assert "printed no Blender version" in result.stderr


def test_bad_master_address(blender: str, tmp_path: Path) -> None:
    result = node("--master", "127.0.0.1:99999", "--blender", blender, "--work-dir", str(tmp_path))
    assert result.returncode == 2
    assert "port must be 1-65535" in result.stderr


@contextlib.asynccontextmanager
async def node_process(
    *args: str, env: dict[str, str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`brender-node` as a child process; if the test ends while it still runs, it is killed
    together with any Blender it started."""
    proc = await asyncio.create_subprocess_exec(
        *NODE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            family: list[psutil.Process] = []
            with contextlib.suppress(psutil.NoSuchProcess):
                parent = psutil.Process(proc.pid)
                family = [parent, *parent.children(recursive=True)]
            for member in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            await proc.wait()


def test_unauthorized_exits_3(blender: str, tmp_path: Path) -> None:
    async def scenario() -> tuple[int, bytes]:
        refuse = {"type": "error", "code": "unauthorized", "message": "bad token"}
        async with FakeMaster(refuse=refuse) as master:
            port = await master.start()
            async with node_process(
                "--master", f"127.0.0.1:{port}", "--blender", blender, "--token", "nope",
                "--work-dir", str(tmp_path), env=clean_env(),
            ) as proc:  # fmt: skip
                _, stderr = await asyncio.wait_for(proc.communicate(), 30)
                assert proc.returncode is not None
                return proc.returncode, stderr

    code, stderr = run(scenario())
    assert code == 3
    assert b"refused us: unauthorized: bad token" in stderr


def test_sigterm_while_rendering_stops_blender_and_exits_0(
    blender: str, scene: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with FakeMaster() as master:
            port = await master.start()
            work = tmp_path / "work"
            env = clean_env(
                BRENDER_MASTER=f"127.0.0.1:{port}", BRENDER_NODE_NAME="env-node",
                BRENDER_WORK_DIR=str(work), BRENDER_BLENDER=blender, BRENDER_THREADS="1",
                BRENDER_OUTPUT_ROOTS=f"/nonexistent{os.pathsep}{tmp_path / 'out'}",
            )  # fmt: skip
            async with node_process(env=env) as proc:
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
                assert line.decode() == (
                    f"brender-node: env-node (Blender 3.4.1) -> 127.0.0.1:{port}, work dir {work}\n"
                )
                conn = await master.next_connection()
                assert conn.hello["name"] == "env-node"
                conn.send({"type": "render", "chunk_id": 1, "job_id": 1, "blend_file": str(scene),
                           "output": str(tmp_path / "out" / "####"), "format": "PNG",
                           "frames": list(range(1, 13))})  # fmt: skip
                await conn.expect("progress")
                children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
                assert children, "Blender should be running"
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)
                assert proc.returncode == 0
                await wait_for_condition(
                    lambda: not any(map(alive, children)), 10, "Blender to be gone"
                )
                # A node stopping is not a cancel: it says nothing and the master requeues.
                assert not conn.of_type("chunk_done")

    run(scenario())


STUCK_NODE = """
import asyncio, sys
from brender.node import main

async def stuck(config, stop):
    print("ready", flush=True)
    await stop.wait()
    while True:  # a stop that never ends: a task that swallows its cancel
        try:
            await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            pass

main.run_node = stuck
main.SHUTDOWN_LIMIT = 1.0
asyncio.run(main._serve(None))
"""


def test_a_stop_that_hangs_still_ends_the_node() -> None:
    """SIGTERM always ends the node within SHUTDOWN_LIMIT, whatever a task does meanwhile."""
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_NODE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    assert code == 1
    assert "still stopping after 1 s: exiting now" in proc.stderr.read()
