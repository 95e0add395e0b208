"""The wheel a user installs: it holds every module, and the README's first command works with it.

`pip install .` builds this same wheel; installed in a fresh venv, `brender-server --local-node`
must start a farm that renders, whether it is started from the repository root (where a source
folder could shadow the installed package) or from anywhere else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
from blender_scene import make_scene
from farmctl import START_LINE, wait_for

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"common": "brender", "server": "brender/server", "node": "brender/node"}


def source_files() -> set[str]:
    """Every file of the three package folders, named as the wheel must hold it."""
    out = set()
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            if folder == "common" and path.parent != ROOT / folder:
                continue  # the subpackages of `brender` are server/ and node/, checked below
            out.add(f"{package}/{path.relative_to(ROOT / folder).as_posix()}")
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy of the tracked tree, as a clean clone would: no build/ or egg-info left
    # behind by an earlier build can fill in for a missing package.
    tree = out / "src"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, files):
        source = ROOT / rel
        if source.is_file():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_bytes(source.read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("brender-*.whl")
    return built


def test_the_wheel_holds_every_module_and_asset(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = sorted(source_files() - names)
    assert not missing, f"the wheel lacks: {', '.join(missing)}"
    assert "brender/py.typed" in names
    with zipfile.ZipFile(wheel) as zf:
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for script in ("brender-server = brender.server.main:main", "brender-node = brender.node.main"):
        assert script in entry_points


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies from PyPI."""
    home = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    done = subprocess.run(
        [str(home / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return home


def _api(url: str, request: dict[str, Any]) -> Any:
    body = json.dumps(request).encode()
    req = urllib.request.Request(f"{url}/api", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer = json.loads(resp.read())
    assert answer["ok"], answer
    return answer["data"]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie child of the (already reaped) server is gone for our purpose too.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(") ", 1)[-1].startswith("Z")


@pytest.mark.parametrize("where", ["elsewhere", "repository root"])
def test_the_readme_command_renders_from_the_installed_wheel(
    venv: Path, blender: str, tmp_path: Path, where: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cwd = ROOT if where == "repository root" else tmp_path
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRENDER_", "PYTHON"))}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}:{Path(blender).parent}:{env['PATH']}")
    env.pop("XDG_DATA_HOME", None)
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            ["brender-server", "--local-node", "--tcp-port", "0", "--http-port", "0"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = START_LINE.match(line)
        assert match, f"no start-up line ({line!r}); log:\n{log_path.read_text()}"
        url = match.group(3)
        # The default database is in the user's data folder, under this HOME.
        assert str(home) in match.group(4)

        def online() -> bool:
            status = _api(url, {"item": "server", "action": "status"})
            return bool(status["clients"]["online"])

        wait_for(online, timeout=60, what=f"the local node; log:\n{log_path.read_text()}")
        scene = make_scene(tmp_path / "scene.blend", 1, 2, blender=blender)
        job = _api(url, {"item": "job", "action": "submit", "values": {
            "project": "p", "sequence": "s", "shot": "x", "blend_file": str(scene),
            "frame_start": 1, "frame_end": 2, "output": str(tmp_path / "out" / "####"),
        }})  # fmt: skip

        def ended() -> dict[str, Any] | None:
            row = _api(url, {"item": "job", "action": "read", "filters": {"id": job["id"]}})[0]
            return row if row["status"] in ("completed", "failed", "canceled") else None

        row = wait_for(ended, timeout=120, what="the job to end")
        assert row["status"] == "completed", row
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0001.png", "0002.png"]
        node_pid = _api(url, {"item": "server", "action": "status"})["local_node"]["pid"]
        assert isinstance(node_pid, int)
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(30)
    assert code == 0, log_path.read_text()
    wait_for(lambda: _gone(node_pid), timeout=10, what="the local node to stop with the server")
