"""The small ones of issue 16: limits answered as documented, odd input answered, not dropped."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from farmctl import ServerProcess

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("farm")).start()
    yield srv
    srv.stop()


def post(server: ServerProcess, body: bytes) -> tuple[int, dict[str, object]]:
    host, port = server.http_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/api", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_a_body_over_8_mib_is_answered_413(server: ServerProcess) -> None:
    status, answer = post(server, b"[" + b" " * (10 * MIB) + b"]")
    assert status == 413 and answer["error"]["code"] == "too_large", answer  # type: ignore[index]


def test_a_2_mib_request_is_within_the_documented_8_mib(server: ServerProcess) -> None:
    request = {"item": "server", "action": "status", "id": "x" * (2 * MIB)}
    status, answer = post(server, json.dumps(request).encode())
    assert status == 200 and answer["ok"] is True, str(answer)[:300]


def test_a_nul_in_a_static_path_is_404(server: ServerProcess) -> None:
    host, port = server.http_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/static/%00")
    assert conn.getresponse().status == 404
    conn.close()
    assert "Traceback" not in server.log()


def test_a_lone_surrogate_in_id_is_answered_and_the_connection_stays(
    server: ServerProcess, tmp_path: Path
) -> None:
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=10) as sock:
        lines = sock.makefile("rb")
        sock.sendall(b'{"item": "server", "action": "status", "id": "\\ud800", "x": [1]}\n')
        first = json.loads(lines.readline())
        assert first["ok"] is False and first["error"]["code"] in ("bad_json", "bad_request")
        sock.sendall(b'{"item": "server", "action": "status"}\n')
        assert json.loads(lines.readline())["ok"] is True
