"""A node cannot flood the server's log: its bad messages and its rejections are logged at most
once a minute per node and kind (server/quiet.py), over a real socket to a real server."""

from __future__ import annotations

import json
from pathlib import Path

from farmctl import ScriptedNode, ServerProcess

BAD_LINES = [
    b"not json at all",
    b'{"type": "frame"}',  # a frame report without its fields
    b'{"type": "no such message", "x": 1}',
    b'{"type": "welcome", "client_id": 1}',  # a message only the server sends
    b"[1, 2, 3]",
]


def test_bad_messages_and_rejections_are_logged_once_a_minute(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "farm").start()
    try:
        node = ScriptedNode(server.tcp_port, "noisy")
        node.api.send_raw(b"".join(BAD_LINES[i % len(BAD_LINES)] + b"\n" for i in range(1000)))
        rejected = [
            {"type": "rejected", "chunk_id": 1000 + i, "reason": f"no thanks {i}"}
            for i in range(1000)
        ]
        node.api.send_raw(b"".join(json.dumps(r).encode() + b"\n" for r in rejected))
        node.settle()  # still connected, and everything it sent was read

        log = server.log()
        assert 1 <= log.count("sent a bad message") <= 2, log[-3000:]
        assert 1 <= log.count("rejected chunk") <= 2, log[-3000:]
        with server.tcp() as api:
            status = api.ok({"item": "server", "action": "status"})
            assert status, status
            [client] = api.ok({"item": "client", "action": "read"})
            assert client["name"] == "noisy" and client["online"], client
        node.settle()
        node.api.close()
    finally:
        server.stop()
