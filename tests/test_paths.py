"""The rule for a submitter's paths (brender.paths), and the server applying it at submit."""

from __future__ import annotations

from pathlib import Path

import pytest
from farmctl import ServerProcess

from brender.paths import path_problem


@pytest.mark.parametrize(
    "path",
    ["/projects/shot.blend", "//renders/####", "C:\\\\Projects\\\\shot.blend", "D:/x/####",
     "\\\\\\\\server\\\\share\\\\shot.blend", "/with space/ünïcode – ok.blend"],
)  # fmt: skip
def test_absolute_paths_are_fine(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("-P", "starts with '-'"),
        ("--python-console", "starts with '-'"),
        ("shot.blend", "not an absolute path"),
        ("../shot.blend", "not an absolute path"),
        ("/x\nSaved: '/etc/passwd'\n####", "control character"),
        ("/x\r.blend", "control character"),
        ("/x\x00.blend", "control character"),
        ("/x\u2028.blend", "control character"),
    ],
)
def test_paths_blender_would_misread_are_named(path: str, words: str) -> None:
    assert words in str(path_problem(path))


def test_submit_refuses_them_before_anything_is_written(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "farm").start()
    try:
        base = {"project": "p", "sequence": "s", "shot": "x", "blend_file": "/x.blend"}
        for change, words in (
            ({"blend_file": "-P"}, "'blend_file' starts with '-'"),
            ({"blend_file": "x.blend"}, "'blend_file' is not an absolute path"),
            ({"output": "/r/x\nSaved: '/etc/passwd'\n####"}, "'output' holds a control"),
        ):
            request = {"item": "job", "action": "submit", "values": {**base, **change}}
            answer = server.http(request)
            assert answer["ok"] is False, answer
            assert answer["error"]["code"] == "invalid_value"
            assert answer["error"]["message"].startswith(words), answer
        shots = server.http({"item": "shot", "action": "create",
                             "values": {"sequence_id": 1, "name": "y", "blend_file": "-y"}})  # fmt: skip
        assert shots["ok"] is False and "starts with '-'" in shots["error"]["message"]
        assert server.http({"item": "job", "action": "read"})["data"] == []
    finally:
        server.stop()
