"""The telnet console, driven through a real socket the way a person types."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from farmctl import NodeProcess, ServerProcess, TcpApi, wait_for

PROMPT = b"brender> "


class Person:
    """Types lines into a console connection and reads the screen up to the next prompt."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def until_prompt(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while PROMPT not in self.buffer:
            if time.monotonic() > deadline:
                raise AssertionError(f"no prompt; screen so far: {self.buffer!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed; screen: {self.buffer!r}")
            self.buffer += chunk
        screen, _, self.buffer = self.buffer.partition(PROMPT)
        return screen.decode()

    def type(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.until_prompt()


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[tuple[ServerProcess, NodeProcess]]:
    server = ServerProcess(tmp_path / "server").start()
    node = NodeProcess(server.master, "console-node", tmp_path / "node")
    try:
        node.start()
        with server.tcp() as api:
            wait_for(lambda: api.ok({"item": "client", "action": "read"}), 60, what="node")
        yield server, node
    finally:
        node.stop()
        server.stop()


def client_status(server: ServerProcess) -> str:
    with server.tcp() as api:
        return str(api.ok({"item": "client", "action": "read"})[0]["status"])


def test_a_person_at_the_console(farm: tuple[ServerProcess, NodeProcess]) -> None:
    server, _node = farm
    person = Person(server.tcp_port)
    banner = person.until_prompt()  # typed nothing: greeted with a banner and a prompt
    assert "brender-server" in banner and "help" in banner
    assert "enable NAME|all" in person.type("help")
    listing = person.type("clients")
    header, row = listing.strip().splitlines()[:2]
    assert header.split()[:3] == ["id", "name", "status"]
    assert "console-node" in row and "enabled" in row
    assert "disabled" in person.type("disable console-node")
    assert client_status(server) == "disabled"
    assert "enabled" in person.type("enable all")
    assert client_status(server) == "enabled"
    assert "unknown command 'fly'" in person.type("fly away")
    assert "(none)" in person.type("jobs")
    assert "no job matches" in person.type("pause 999")
    assert "clients" in person.type("status")
    person.sock.sendall(b"quit\r\n")
    wait_for(lambda: person.sock.recv(100) == b"", 10, what="the console to close")


def test_json_client_never_sees_console_text(farm: tuple[ServerProcess, NodeProcess]) -> None:
    server, _ = farm
    sock = socket.create_connection(("127.0.0.1", server.tcp_port), timeout=30)
    sock.sendall(b'{"item": "server", "action": "status", "id": 1}\n')
    first = sock.makefile("rb").readline()
    assert first.startswith(b'{"ok":true') and b'"id":1' in first
    sock.close()
    # A JSON client that waits before its first line is greeted, but only with text it can skip.
    with TcpApi(server.tcp_port) as slow:
        # Silent until the greeting has really come (the point of this test), not for a time.
        wait_for(
            lambda: PROMPT in slow.sock.recv(65536, socket.MSG_PEEK),
            10,
            what="the greeting a silent client gets",
        )
        assert slow.ok({"item": "server", "action": "status"})["version"]
