"""The lines between a node and its warm Blender: orders in, marked replies out."""

from __future__ import annotations

import pytest

from brender.node import warm_protocol as wp
from brender.node.chunk import RenderOrder
from brender.node.engines import Engine
from brender.node.runner import BlenderRunner
from brender.node.warm import WarmRunner


def test_an_order_survives_the_line() -> None:
    order = wp.Order(7, (4, 5, 9), "/renders/####", "PNG")
    line = order.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert wp.parse_order(line) == order
    assert wp.parse_order(wp.Order(1, (-2,)).encode()) == wp.Order(1, (-2,), None, None)


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[1, 2]",
        b'{"chunk": "7", "frames": [1]}',
        b'{"chunk": true, "frames": [1]}',
        b'{"chunk": 7, "frames": []}',
        b'{"chunk": 7, "frames": [1.5]}',
        b'{"chunk": 7, "frames": [false]}',
        b'{"chunk": 7, "frames": [1], "output": 3}',
        b'{"chunk": 7, "frames": [1], "format": ["PNG"]}',
    ],
)
def test_a_bad_order_is_refused(line: bytes) -> None:
    with pytest.raises(wp.ProtocolError):
        wp.parse_order(line)


@pytest.mark.parametrize(
    "reply",
    [wp.Ready("3.4.1", "/p/a.blend"), wp.Saved(5, "/r/0005.png", 0.25), wp.Done(7)],
)
def test_replies_survive_the_line(reply: wp.Reply) -> None:
    line = wp.encode_reply(reply)
    assert line.startswith(wp.MARKER) and "\n" not in line
    assert wp.parse_reply(line) == reply


@pytest.mark.parametrize(
    "line",
    [
        "Fra:5 Mem:9.04M (Peak 9.11M) | Time:00:00.00 | Sample 4/4",
        "Saved: '/r/0005.png'",
        " Time: 00:00.24 (Saving: 00:00.17)",
        "",
        "BRENDER-WARMER {}",
        ' BRENDER-WARM {"done": 7}',
    ],
)
def test_blenders_own_lines_are_not_replies(line: str) -> None:
    assert wp.parse_reply(line) is None


@pytest.mark.parametrize(
    "line",
    [
        "BRENDER-WARM not json",
        "BRENDER-WARM [1]",
        'BRENDER-WARM {"ready": true}',
        'BRENDER-WARM {"saved": 5, "path": "/r/0005.png"}',
        'BRENDER-WARM {"saved": "5", "path": "/r/0005.png", "seconds": 1}',
        'BRENDER-WARM {"done": "7"}',
        'BRENDER-WARM {"something": 1}',
    ],
)
def test_a_bad_reply_is_an_error(line: str) -> None:
    with pytest.raises(wp.ProtocolError):
        wp.parse_reply(line)


def test_the_warm_command_line_matches_the_cold_ones_flags() -> None:
    binary = Engine("binary", "/opt/blender/blender", "4.2.0", ("CPU",))
    bpy = Engine("bpy", "bpy", "4.5.1", ("CPU",))
    cold = BlenderRunner("/opt/blender/blender", threads=2, engines=[binary, bpy])
    runner = WarmRunner(cold)
    order = RenderOrder(1, "/p/a.blend", (1,), blender="4.2.0")
    cmd = runner.command(order, binary)
    assert cmd[:5] == ["/opt/blender/blender", "-b", "--disable-autoexec", "/p/a.blend", "-t"]
    assert cmd[-4:-1] == ["--python-exit-code", "1", "--python"]
    assert cmd[-1].endswith("warm_blender.py")
    # auto-exec only when the job asks and the node allows it
    asked = RenderOrder(1, "/p/a.blend", (1,), autoexec=True)
    assert "--disable-autoexec" in runner.command(asked, binary)
    cold.allow_autoexec = True
    assert runner.command(asked, binary)[2] == "-y"
    cmd = runner.command(asked, bpy)
    assert cmd[1:4] == ["-P", "-m", "brender.node.warm_blender"]
    assert cmd[4:] == ["-y", "-t", "2", "/p/a.blend"]
