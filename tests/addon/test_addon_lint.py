"""The add-on is ruff-clean and type-checks against Blender 4.5's API (fake-bpy-module stubs)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import addon_harness
import pytest

ROOT = addon_harness.ROOT
STUBS = "fake-bpy-module-4.5"


def test_ruff() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "addon", "build.py",
                           "tests/addon"], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_with_blender_stubs() -> None:
    try:
        importlib.metadata.version(STUBS)
    except importlib.metadata.PackageNotFoundError:
        message = f"mypy over addon/ needs {STUBS} (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--no-incremental",
         "addon", "build.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
