"""Helpers for the add-on's tests: the repo on sys.path, bpy in a subprocess, optional packages.

The add-on's plain modules are imported as the `addon` package from the repository root.
Blender itself (the `bpy` wheel) always runs in a child process with a deadline, so a Blender
that hangs on exit fails a test instead of hanging the test run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SESSION = Path(__file__).with_name("bpy_session.py")


def load_build() -> ModuleType:
    """The repository's build.py, by path (a PyPI package named `build` may be installed)."""
    spec = importlib.util.spec_from_file_location("brender_build", ROOT / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ADDON_MODULE = "bl_ext.user_default.brender"


def has(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def need(package: str, what: str) -> None:
    """Skip when `package` is not installed; in CI (CI=true) fail instead, so it is noticed."""
    if has(package):
        return
    message = f"{what} needs the '{package}' package (pip install -e '.[test]')"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def blender_ext_script() -> Path:
    """Blender's own extension tool, `addons_core/bl_pkg/cli/blender_ext.py`, from the bpy wheel."""
    need("bpy", "Blender's manifest validator")
    spec = importlib.util.find_spec("bpy")
    assert spec is not None and spec.origin is not None
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    assert found, f"no blender_ext.py under {Path(spec.origin).parent}"
    return found[-1]


def build_zip(out_dir: Path) -> Path:
    """The add-on's zip, made by `python build.py` exactly as a developer would."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "build.py"), "--out", str(out_dir)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def run_bpy(
    scenario: str, args: dict[str, Any], home: Path, timeout: float = 240.0
) -> dict[str, Any]:
    """Run one scenario of bpy_session.py in a fresh Python with the `bpy` wheel.

    `home` becomes BLENDER_USER_RESOURCES, so the extension is installed there and nowhere
    else. Answers the scenario's result (its last `RESULT {...}` line).
    """
    need("bpy", "this Blender test")
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRENDER_", "BLENDER_"))}
    env["BLENDER_USER_RESOURCES"] = str(home)
    try:
        done = subprocess.run(
            [sys.executable, str(SESSION), scenario, json.dumps(args)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=home,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = (
            (exc.stdout or b"").decode(errors="replace")
            if isinstance(exc.stdout, bytes)
            else exc.stdout
        )
        raise AssertionError(
            f"bpy session '{scenario}' did not exit in {timeout} s:\n{out}"
        ) from exc
    output = done.stdout + done.stderr
    results = [line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and results, f"bpy session '{scenario}' failed:\n{output}"
    result: dict[str, Any] = json.loads(results[-1])
    result["output"] = output
    return result
