"""The server's event loop: uvloop's where it is installed, asyncio's with BRENDER_LOOP=asyncio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from farmctl import ServerProcess, stop_all

STATUS = {"item": "server", "action": "status"}


@pytest.mark.parametrize("loop", ["uvloop", "asyncio", "auto"])
def test_the_server_runs_on_the_loop_it_is_given(tmp_path: Path, loop: str) -> None:
    env = {"BRENDER_LOOP": loop}
    server = ServerProcess(tmp_path / "server", env=env).start()
    try:
        with server.tcp() as api:
            assert "jobs" in api.request(STATUS)["data"]
        assert server.http(STATUS)["ok"] is True
    finally:
        stop_all([server])
    assert f"event loop: {'uvloop' if loop == 'auto' else loop}" in server.log()


def test_an_unknown_loop_is_refused(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "brender.server.main", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"BRENDER_LOOP": "trio", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 2
    assert "BRENDER_LOOP must be uvloop, asyncio or auto, not 'trio'" in run.stderr
