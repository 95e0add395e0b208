"""`brender-server --local-node` watches its node: a node that dies is reported and restarted."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from farmctl import ServerProcess, wait_for


def _status(server: ServerProcess) -> dict[str, Any]:
    with server.tcp() as api:
        return dict(api.ok({"item": "server", "action": "status"}))


def test_a_dead_local_node_is_reported_and_restarted(blender: str, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "farm", extra=["--local-node", "--blender", blender])
    server.start()
    try:
        first = wait_for(
            lambda: (s := _status(server))["clients"]["online"] == 1 and s["local_node"],
            timeout=30,
            what="the local node online",
        )
        assert first["state"] == "running" and first["restarts"] == 0
        os.kill(first["pid"], signal.SIGKILL)

        down = wait_for(
            lambda: (n := _status(server)["local_node"])["state"] == "down" and n,
            timeout=15,
            what="the server to see its local node down",
        )
        assert down["last_exit"] == -signal.SIGKILL
        # Its last words are kept: the node's start-up line names the master it was given.
        assert any(line.startswith("brender-node: ") for line in down["last_lines"]), down
        assert "the local node exited (code -9)" in server.log()

        again = wait_for(
            lambda: (
                (s := _status(server))["clients"]["online"] == 1
                and s["local_node"]["state"] == "running"
                and s["local_node"]
            ),
            timeout=30,
            what="the local node restarted and online",
        )
        assert again["restarts"] == 1 and again["pid"] != first["pid"]
    finally:
        assert server.stop() == 0
    wait_for(lambda: _gone(again["pid"]), timeout=10, what="the local node to stop with the server")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_status_has_no_local_node_without_the_flag(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "farm").start()
    try:
        assert _status(server)["local_node"] is None
    finally:
        server.stop()
