"""Node settings (flags > environment > defaults), render-order parsing, system info."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from brender.node import sysinfo
from brender.node.config import default_work_dir, parse_master, resolve
from brender.node.errors import NodeError
from brender.node.orders import parse_render


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:6001", ("127.0.0.1", 6001)),
        ("box-3", ("box-3", 6000)),
        ("[::1]:6000", ("::1", 6000)),
        ("[::1]", ("::1", 6000)),
        ("::1", ("::1", 6000)),
    ],
)
def test_parse_master(text: str, expected: tuple[str, int]) -> None:
    assert parse_master(text) == expected


@pytest.mark.parametrize("text", ["", ":6000", "host:0", "host:port", "[::1]6000", "[::1"])
def test_parse_master_refuses(text: str) -> None:
    with pytest.raises(NodeError):
        parse_master(text)


def test_flags_then_environment_then_defaults(tmp_path: Path) -> None:
    env = {
        "BRENDER_MASTER": "10.0.0.5:7000",
        "BRENDER_BLENDER": "/opt/blender/blender",
        "BRENDER_NODE_NAME": "env-name",
        "BRENDER_WORK_DIR": str(tmp_path / "env"),
        "BRENDER_TOKEN": "env-token",
        "BRENDER_THREADS": "4",
    }
    from_env = resolve(environ=env)
    assert (from_env.host, from_env.port) == ("10.0.0.5", 7000)
    assert from_env.blender == "/opt/blender/blender"
    assert from_env.name == "env-name"
    assert from_env.work_dir == tmp_path / "env"
    assert from_env.token == "env-token"
    assert from_env.threads == 4
    flags = resolve(
        environ=env,
        master="127.0.0.1:6100",
        blender="/usr/local/bin/blender",
        name="flag-name",
        work_dir=str(tmp_path / "flag"),
        token="flag-token",
        threads="2",
        max_backoff="8",
    )
    assert (flags.host, flags.port, flags.name, flags.token, flags.threads) == (
        "127.0.0.1",
        6100,
        "flag-name",
        "flag-token",
        2,
    )
    assert flags.blender == "/usr/local/bin/blender"
    assert flags.work_dir == tmp_path / "flag"
    assert flags.max_backoff == 8.0


def test_defaults(blender: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(Path(blender).parent))
    config = resolve(environ={})
    assert (config.host, config.port) == ("127.0.0.1", 6000)
    assert config.blender == blender
    assert config.name == socket.gethostname()
    assert config.work_dir == default_work_dir()
    assert config.work_dir.name == "node"
    assert config.token is None and config.threads is None
    assert config.max_backoff == 5.0 and config.silence_timeout is None


def test_bad_numbers() -> None:
    with pytest.raises(NodeError, match="threads must be a number"):
        resolve(environ={"BRENDER_THREADS": "many"}, blender="/b")
    with pytest.raises(NodeError, match=r"at least 0\.5"):
        resolve(environ={}, blender="/b", max_backoff="0.1")


def test_parse_render() -> None:
    order = parse_render(
        {
            "type": "render",
            "chunk_id": 7,
            "job_id": 2,
            "blend_file": "/p/a.blend",
            "output": "/r/####",
            "format": "PNG",
            "frames": [4, 5, 5, 6],
        }
    )
    assert (order.chunk_id, order.job_id, order.frames) == (7, 2, (4, 5, 6))
    assert (order.blend_file, order.output, order.format) == ("/p/a.blend", "/r/####", "PNG")
    assert order.timeout is None
    base = {"type": "render", "chunk_id": 1, "blend_file": "/a.blend", "frames": [1]}
    for bad, words in [
        ({"chunk_id": "1"}, "'chunk_id' must be an integer"),
        ({"blend_file": ""}, "'blend_file' is missing"),
        ({"frames": []}, "non-empty list"),
        ({"frames": [1, True]}, "non-empty list"),
        ({"frames": [-2]}, "negative"),
        ({"output": 5}, "'output' must be a string"),
        ({"timeout": 0}, "'timeout' must be a positive number"),
        ({"timeout": "600"}, "'timeout' must be a positive number"),
    ]:
        with pytest.raises(NodeError, match=re.escape(words)):
            parse_render({**base, **bad})


def test_parse_render_hang_timeout() -> None:
    base = {"type": "render", "chunk_id": 1, "blend_file": "/a.blend", "frames": [1]}
    assert parse_render({**base, "timeout": 600}).timeout == 600.0
    assert parse_render({**base, "timeout": None}).timeout is None


def test_node_id_is_created_once(tmp_path: Path) -> None:
    work = tmp_path / "work"
    first = sysinfo.node_id(work)
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert sysinfo.node_id(work) == first
    (work / "node_id").write_text("garbage")
    assert sysinfo.node_id(work) != first


def test_system_info() -> None:
    mac = sysinfo.mac_address()
    assert mac is None or re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac)
    assert mac != "00:00:00:00:00:00"
    info = sysinfo.info("3.4.1", 7)
    assert info["busy"] is True and info["chunk_id"] == 7
    assert info["cpus"] >= 1 and len(info["load"]) == 3
    assert info["memory"]["total"] >= info["memory"]["available"] > 0


def test_blender_version(blender: str) -> None:
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", sysinfo.blender_version(blender))
    with pytest.raises(NodeError, match="No such file or directory"):
        sysinfo.blender_version("/nonexistent/blender")


def test_warm_settings_flags_then_environment_then_defaults() -> None:
    blender = {"blender": "/opt/blender/blender"}
    default = resolve(environ={}, **blender)
    assert default.warm and default.warm_idle == 60.0
    assert default.warm_memory is not None and default.warm_memory > 0
    env = {"BRENDER_WARM": "0", "BRENDER_WARM_IDLE": "5", "BRENDER_WARM_MEMORY": "512"}
    from_env = resolve(environ=env, **blender)
    assert not from_env.warm and from_env.warm_idle == 5.0
    assert from_env.warm_memory == 512 * 2**20
    flags = resolve(environ=env, warm=True, warm_idle="0", warm_memory="0", **blender)
    assert flags.warm and flags.warm_idle is None and flags.warm_memory is None
    with pytest.raises(NodeError, match="--warm-idle"):
        resolve(environ={}, warm_idle="soon", **blender)
