"""A farm with a token: right token works, wrong or missing is refused, on every transport."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from farmctl import NodeProcess, ServerProcess, TcpApi, http_api, stop_all, wait_for

TOKEN = "s3cret-token"
STATUS = {"item": "server", "action": "status"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("token") / "server", token=TOKEN).start()
    yield srv
    srv.stop()


def test_tcp(server: ServerProcess) -> None:
    with TcpApi(server.tcp_port) as anon:
        answer = anon.request(STATUS)
        assert answer["ok"] is False and answer["error"]["code"] == "unauthorized"
        answer = anon.request({**STATUS, "token": "wrong"})
        assert answer["error"]["code"] == "unauthorized"
        assert anon.request({**STATUS, "token": TOKEN})["ok"] is True
        # Once shown, the token holds for the rest of the connection.
        assert anon.request(STATUS)["ok"] is True


def test_http(server: ServerProcess) -> None:
    assert http_api(server.http_url, STATUS)["error"]["code"] == "unauthorized"
    assert http_api(server.http_url, STATUS, token="wrong")["error"]["code"] == "unauthorized"
    assert http_api(server.http_url, STATUS, token=TOKEN)["ok"] is True
    req = urllib.request.Request(
        f"{server.http_url}/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["ok"] is True
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server.http_url}/api/jobs", timeout=10)
    assert info.value.code == 401


def test_nodes(server: ServerProcess, tmp_path: Path) -> None:
    good = NodeProcess(server.master, "good", tmp_path / "good", token=TOKEN)
    bad = NodeProcess(server.master, "bad", tmp_path / "bad", token="wrong")
    none = NodeProcess(server.master, "none", tmp_path / "none")
    try:
        for node in (good, bad, none):
            node.start()
        assert bad.proc is not None and none.proc is not None
        assert bad.proc.wait(60) != 0, "a node with a wrong token must give up"
        assert none.proc.wait(60) != 0, "a node without a token must give up"
        with TcpApi(server.tcp_port, TOKEN) as api:
            wait_for(
                lambda: (
                    [c["name"] for c in api.ok({"item": "client", "action": "read"}) if c["online"]]
                    == ["good"]
                ),
                60,
                what="only the good node online",
            )
        assert "token" in bad.log().lower()
    finally:
        stop_all((good, bad, none))


def test_refuses_other_interfaces_without_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "brender.server.main",
            "--host",
            "0.0.0.0",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "without a token" in result.stderr and "--token" in result.stderr
