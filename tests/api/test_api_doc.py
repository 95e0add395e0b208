"""Every example in docs/api.md runs against a live server and gets the documented answer,
so the document cannot drift from the code."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

from farmctl import NodeProcess, ServerProcess, wait_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
STABLE = {
    "ok",
    "code",
    "status",
    "name",
    "priority",
    "frame_start",
    "frame_end",
    "chunk_size",
    "format",
    "number",
    "root",
    "blend_file",
    "output",
    "project",
    "sequence",
    "shot",
    "online",
    "busy",
    "version",
    "waiting",
    "warning",
    "able",
}


def examples() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(request, answer) pairs: a JSON block with `item` followed by one with `ok`."""
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.S)]
    pairs = []
    for first, second in itertools.pairwise(blocks):
        if "item" in first and "ok" in second:
            pairs.append((first, second))
    return pairs


def same_shape(doc: Any, real: Any, where: str) -> None:
    """Every documented key exists in the real answer; stable values are equal."""
    if isinstance(doc, dict):
        assert isinstance(real, dict), f"{where}: documented an object, got {real!r}"
        for key, value in doc.items():
            if key == "…":
                continue
            assert key in real, f"{where}: documented key '{key}' is not in {sorted(real)}"
            if key in STABLE and not isinstance(value, dict | list):
                assert real[key] == value, f"{where}.{key}: documented {value!r}, got {real[key]!r}"
            same_shape(value, real[key], f"{where}.{key}")
    elif isinstance(doc, list):
        assert isinstance(real, list), f"{where}: documented a list, got {real!r}"
        items = [d for d in doc if d != "…"]
        assert len(real) >= len(items), f"{where}: documented {len(items)} items, got {len(real)}"
        for i, (d, r) in enumerate(zip(items, real, strict=False)):
            same_shape(d, r, f"{where}[{i}]")


def test_every_action_is_documented() -> None:
    documented = {(r["item"].rstrip("s"), r["action"]) for r, _ in examples()}
    from brender.server import actions  # noqa: F401  (registers the routes)
    from brender.server.api import ROUTES

    missing = sorted(set(ROUTES) - documented - {("job", "resume"), ("client", "enable")})
    assert not missing, f"item x action without an example in docs/api.md: {missing}"


def test_examples_run(tmp_path: Path) -> None:
    pairs = examples()
    assert len(pairs) >= 30
    server = ServerProcess(tmp_path / "server").start()
    node = NodeProcess(server.master, "box-3", tmp_path / "node")
    try:
        node.start()
        with server.tcp() as api:
            wait_for(lambda: api.ok({"item": "client", "action": "read"}), 60, what="box-3")
            api.ok({"item": "client", "action": "disable", "filters": {}})
            for request, documented in pairs:
                real = api.request(request)
                same_shape(documented, real, f"{request['item']} {request['action']}")
    finally:
        node.stop()
        server.stop()
