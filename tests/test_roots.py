"""brender.roots, the rule of where a node may write: the server's view (paths as written)
and the node's (real paths), and the roots a `hello` carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from farmctl import ServerProcess, TcpApi, job_status

from brender import messages, roots
from brender.roots import OutputRoots


def test_the_servers_view_of_a_nodes_roots() -> None:
    node = OutputRoots(("/var/brender", "/renders"))
    assert node.allows("/renders/sh010/####", "/p/sh.blend")
    assert node.allows("/renders/####", "/p/sh.blend")
    assert node.allows("/renders/a/./b/../####", "/p/sh.blend")
    assert not node.allows("/renders/../etc/####", "/p/sh.blend")
    assert not node.allows("/rendersx/####", "/p/sh.blend")
    assert not node.allows("//render/####", "/p/sh.blend")  # beside the .blend: not allowed
    assert OutputRoots(("/renders",), beside_blend=True).allows("//render/####", "/p/sh.blend")
    assert OutputRoots(None).allows("/anywhere/####", "/p/sh.blend")  # an older node
    assert OutputRoots(("/",)).allows("/anywhere/####", "/p/sh.blend")


def test_the_nodes_check_follows_links(tmp_path: Path) -> None:
    root, away = tmp_path / "root", tmp_path / "away"
    root.mkdir()
    away.mkdir()
    (root / "link").symlink_to(away)
    blend = str(tmp_path / "p" / "sh.blend")
    assert roots.refusal(str(root / "a" / "####"), blend, [str(root)], False) is None
    why = roots.refusal(str(root / "link" / "####"), blend, [str(root)], False)
    assert why == (
        f"output {away} is outside this node's output roots: {root}"
        " (start the node with --output-root DIR to let it write there)"
    )
    assert roots.refusal("//out/####", blend, [str(root)], True) is None
    assert "the folder of the job's .blend" in str(
        roots.refusal(str(away / "####"), blend, [str(root)], True)
    )


def test_a_hello_names_its_roots() -> None:
    hello = messages.Hello.parse(
        {
            "node_id": "n",
            "output_roots": ["/var/brender", "D:\\renders"],
            "output_beside_blend": True,
        }
    )
    assert hello.output_roots == ("/var/brender", "D:\\renders") and hello.output_beside_blend
    assert messages.Hello.parse({"node_id": "n"}).output_roots is None
    for bad in ("/x", ["relative"], [3], ["/x\n"], ["-o"]):
        with pytest.raises(messages.MessageError, match="output_roots"):
            messages.Hello.parse({"node_id": "n", "output_roots": bad})


def test_the_server_sends_a_node_only_what_it_may_write(tmp_path: Path) -> None:
    """A scripted node naming its roots (and no Blender) on a real server."""
    server = ServerProcess(tmp_path / "farm").start()
    try:
        with server.tcp() as api:
            node = TcpApi(server.tcp_port, timeout=10)
            node.send_raw(json.dumps({"type": "hello", "node_id": "roots-1", "name": "roots-1",
                                      "output_roots": ["/allowed"]}).encode() + b"\n")  # fmt: skip
            assert node.read_answer()["type"] == "welcome"
            values = {"project": "p", "sequence": "s", "blend_file": "/p/x.blend",
                      "frame_start": 1, "frame_end": 1}  # fmt: skip
            far = api.ok({"item": "job", "action": "submit",
                          "values": {**values, "shot": "far", "output": "/far/####"}})  # fmt: skip
            why = job_status(api, far["id"])["waiting"]
            assert why == (
                "no online node may write to /far (their output roots are /allowed): start a"
                " node with --output-root /far or a folder above it"
            )
            near = api.ok({"item": "job", "action": "submit",
                           "values": {**values, "shot": "near", "output": "/allowed/a/####"}})  # fmt: skip
            order = node.read_answer()
            while order["type"] == "ping":
                order = node.read_answer()
            assert order["type"] == "render" and order["job_id"] == near["id"], order
            node.close()
    finally:
        server.stop()
