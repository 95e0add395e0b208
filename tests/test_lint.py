"""ruff and mypy are part of the test run (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ruff() -> None:
    result = run([sys.executable, "-m", "ruff", "check", "."], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy(tmp_path: Path) -> None:
    # server/ and node/ install as brender.server and brender.node (package-dir mapping); mypy
    # cannot follow that mapping, so it checks a tree of links laid out as the installed package.
    pkg = tmp_path / "brender"
    pkg.mkdir()
    for item in (ROOT / "common").iterdir():
        if item.name != "__pycache__":
            (pkg / item.name).symlink_to(item)
    (pkg / "server").symlink_to(ROOT / "server")
    (pkg / "node").symlink_to(ROOT / "node")
    result = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-incremental",
            "-p",
            "brender",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
