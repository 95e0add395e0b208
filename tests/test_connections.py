"""Connections cannot stall the server (issue 16): idle peers, floods, running out of descriptors.

A real server under `ulimit -n 1024` (soft and hard), flooded with idle sockets from this test
on loopback. Before: at the limit Tornado's accept loop spun at 100 % CPU writing tracebacks
and neither port answered while the sockets stayed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from farmctl import ServerProcess, http_api, wait_for

FLOOD = 1100
OTHER = "127.0.0.2"  # loopback too (127.0.0.0/8): a second peer address
STATUS = {"item": "server", "action": "status"}


def idle_sockets(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(sock)
    return socks


@contextlib.contextmanager
def flood(port: int, count: int = FLOOD) -> Iterator[list[socket.socket]]:
    socks = idle_sockets(port, count)
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    """The server has closed this socket (after telling it why, perhaps)."""
    sock.settimeout(0.0)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (BlockingIOError, TimeoutError):
        return False
    except OSError:
        return True


def said(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def tcp_status(port: int, source: str = "127.0.0.1") -> dict[str, object]:
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0)) as sock:  # fmt: skip
        sock.sendall(json.dumps(STATUS).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return dict(json.loads(data.splitlines()[-1]))


def http_status(url: str, source: str) -> dict[str, object]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        conn.request("POST", "/api", json.dumps(STATUS), {"Content-Type": "application/json"})
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


def worrying(log: str) -> list[str]:
    return [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line
            or "Traceback" in line]  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "farm", fd_limit=1024, extra=["--idle-timeout", "3"]).start()
    yield srv
    srv.stop()


def test_a_flood_of_idle_sockets_is_capped_and_timed_out(server: ServerProcess) -> None:
    with flood(server.tcp_port) as tcp_socks, flood(int(server.http_url.rsplit(":", 1)[1])):
        # Each port holds at most its share of the 1,024 descriptors, and one address at most
        # three quarters of that; the rest are told. Another address is answered at once.
        started = time.monotonic()
        assert tcp_status(server.tcp_port, OTHER)["ok"]
        assert http_status(server.http_url, OTHER)["ok"]
        print(f"status from another address under the flood: {time.monotonic() - started:.3f} s")
        refused = [s for s in tcp_socks[-50:] if b"unavailable" in said(s)]
        assert len(refused) == 50, "the last sockets of the flood were not told they were refused"
        # Idle API connections are closed after --idle-timeout: the port is free again.
        wait_for(lambda: all(closed_by_server(s) for s in tcp_socks), 30,
                 what="the idle sockets closed by the server")  # fmt: skip
        assert tcp_status(server.tcp_port)["ok"]
    log = server.log()
    assert "refusing connections" in log
    assert len(worrying(log)) <= 4, worrying(log)[:20]


def test_out_of_descriptors_pauses_accepting_instead_of_spinning(tmp_path: Path) -> None:
    # Caps above the descriptor limit: accept() itself fails with EMFILE.
    srv = ServerProcess(tmp_path / "farm", fd_limit=1024,
                        extra=["--idle-timeout", "10", "--max-connections", "5000"]).start()  # fmt: skip
    try:
        with flood(srv.tcp_port):
            wait_for(lambda: "out of file descriptors" in srv.log(), 30, what="EMFILE seen")
            time.sleep(2)  # a spinning accept loop would log thousands of lines by now
            lines = srv.log().count("out of file descriptors")
            # Once the idle ones are closed, both doors answer again.
            wait_for(lambda: _answers(srv), 60, what="the server answering again")
        assert lines == 1, lines
        assert len(worrying(srv.log())) <= 4, worrying(srv.log())[:20]
    finally:
        srv.stop()


def _answers(srv: ServerProcess) -> bool:
    try:
        return bool(http_api(srv.http_url, STATUS)["ok"]) and bool(tcp_status(srv.tcp_port)["ok"])
    except (OSError, ValueError):
        return False


def test_the_token_is_checked_before_the_costly_nesting_walk(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "farm", token="s3cret").start()
    try:
        # 40 levels (over the cap of 32, under orjson's own 1,024): refused as unauthorized,
        # without the walk that would find the nesting; with the token, the nesting is named.
        deep = {"item": "server", "action": "status", "filters": {"a": "[" * 40 + "]" * 40}}
        deep_line = json.dumps(deep).replace('"' + "[" * 40 + "]" * 40 + '"', "[" * 40 + "]" * 40)
        for token, code in ((None, "unauthorized"), ("s3cret", "too_large")):
            line = deep_line if token is None else deep_line[:-1] + f', "token": "{token}"}}'
            with socket.create_connection(("127.0.0.1", srv.tcp_port), timeout=10) as sock:
                sock.sendall(line.encode() + b"\n")
                answer = json.loads(sock.makefile("rb").readline())
            assert answer["error"]["code"] == code, answer
    finally:
        srv.stop()
