"""build.py: the manifest's checks, a zip Blender accepts, and the same bytes every time."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import addon_harness
import pytest

build = addon_harness.load_build()
ROOT = addon_harness.ROOT
GOOD = (ROOT / "blender_manifest.toml").read_text()
WHEEL = "wheels/blender_asset_tracer-1.23-py3-none-any.whl"
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}


def tree(tmp_path: Path, manifest: str = GOOD) -> Path:
    """A copy of what build.py reads: the manifest, addon/, common/'s __init__.py and the
    packing code, build.py."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "addon", root / "addon", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "common").mkdir()
    for name in ("__init__.py", *build.SHARED):
        shutil.copy(ROOT / "common" / name, root / "common" / name)
    shutil.copy(ROOT / "build.py", root / "build.py")
    (root / "blender_manifest.toml").write_text(manifest)
    return root


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    """Blender's own validator, `blender_ext.py validate`, from the bpy wheel, on plain Python."""
    return subprocess.run([sys.executable, str(addon_harness.blender_ext_script()), "validate",
                           str(path)], capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_zip_holds_the_manifest_and_the_addon_at_its_root(tmp_path: Path) -> None:
    root = tree(tmp_path)
    (root / "addon" / "__pycache__").mkdir()
    (root / "addon" / "__pycache__" / "client.cpython-311.pyc").write_bytes(b"\0")
    (root / "addon" / "test_client.py").write_text("")
    (root / "addon" / ".DS_Store").write_text("")
    (root / "addon" / "payload.py~").write_text("")
    zip_path = build.build(root, tmp_path / "out")
    assert zip_path.name == "brender-0.1.0.zip"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        assert zf.read("blender_manifest.toml").decode() == GOOD
        shared = {n: zf.read(n) for n in names if n.startswith("_shared/")}
        wheel = zf.read(WHEEL)
        assert zf.getinfo(WHEEL).compress_type == zipfile.ZIP_STORED
    modules = sorted(p.name for p in (ROOT / "addon").glob("*.py"))
    made = ["_shared/__init__.py", "_shared/manifest.py", "_shared/pack.py", "_shared/sizes.py",
            "_shared/tls.py", "_shared/transfer.py"]  # fmt: skip
    made.append(WHEEL)
    assert names == ["blender_manifest.toml", *modules, *made]
    assert "__init__.py" in names and not any("/" in n for n in names if n not in made)
    # The packing code is the brender package's own, byte for byte, and the wheel is the pin.
    for name in ("manifest.py", "pack.py", "sizes.py", "tls.py", "transfer.py"):
        assert shared[f"_shared/{name}"] == (ROOT / "common" / name).read_bytes(), name
    assert hashlib.sha256(wheel).hexdigest() == build.WHEELS[WHEEL.split("/")[1]][1]
    assert WHEEL in tomllib.loads(GOOD)["wheels"][0]


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    root = tree(tmp_path)
    first = hashlib.sha256(build.build(root, tmp_path / "a").read_bytes()).hexdigest()
    for path in (root / "addon").glob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))  # other dates, same contents
    second = hashlib.sha256(build.build(root, tmp_path / "b").read_bytes()).hexdigest()
    assert first == second
    (root / "addon" / "client.py").write_text((root / "addon" / "client.py").read_text() + "\n")
    assert hashlib.sha256(build.build(root, tmp_path / "c").read_bytes()).hexdigest() != first


def test_the_command_line_writes_dist(tmp_path: Path) -> None:
    root = tree(tmp_path)
    done = subprocess.run([sys.executable, "build.py"], cwd=root, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == root / "dist" / "brender-0.1.0.zip"
    check = subprocess.run([sys.executable, "build.py", "--check"], cwd=root, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0 and "is fine" in check.stdout


def test_offline_with_the_wheel_cached_and_not(tmp_path: Path) -> None:
    """A cached wheel needs no network; an empty cache offline is one line naming the way
    out; a cached file that is not the pinned wheel is refused."""
    root = tree(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(build.fetch_wheel(WHEEL.split("/")[1], build.wheel_cache()), cache)
    env = {**os.environ, **OFFLINE, "BRENDER_WHEEL_CACHE": str(cache)}
    run = [sys.executable, "build.py", "--out", str(tmp_path / "out")]
    done = subprocess.run(run, cwd=root, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    with_option = subprocess.run([*run[:2], "--wheels", str(cache), "--out", str(tmp_path / "o2")],
                                 cwd=root, capture_output=True, text=True, timeout=120,
                                 env={**os.environ, **OFFLINE})  # fmt: skip
    assert with_option.returncode == 0, with_option.stderr
    assert Path(done.stdout.strip()).read_bytes() == Path(with_option.stdout.strip()).read_bytes()

    empty = {**env, "BRENDER_WHEEL_CACHE": str(tmp_path / "empty")}
    done = subprocess.run(run, cwd=root, capture_output=True, text=True, timeout=120, env=empty)
    assert done.returncode == 1 and "pip could not download it" in done.stderr, done.stderr
    assert "--wheels DIR" in done.stderr and "Traceback" not in done.stderr

    (cache / WHEEL.split("/")[1]).write_bytes(b"not the wheel")
    done = subprocess.run(run, cwd=root, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1 and "is not the pinned" in done.stderr, done.stderr


def test_shared_code_is_not_committed_into_the_addon(tmp_path: Path) -> None:
    root = tree(tmp_path)
    (root / "addon" / "_shared").mkdir()
    with pytest.raises(build.ManifestError, match=re.escape("made by build.py")):
        build.build(root, tmp_path / "out")


def test_the_versions_agree() -> None:
    manifest = tomllib.loads(GOOD)["version"]
    for rel in ("common/__init__.py", "addon/__init__.py"):
        found = re.search(r'^__version__ = "(.+)"', (ROOT / rel).read_text(), re.MULTILINE)
        assert found and found.group(1) == manifest, rel


def test_blenders_validator_accepts_the_manifest_and_the_zip(tmp_path: Path) -> None:
    root = tree(tmp_path)
    zip_path = build.build(root, tmp_path / "out")
    done = validate(zip_path)
    assert done.returncode == 0, done.stdout + done.stderr
    staged = tmp_path / "staged"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(staged)
    done = validate(staged)
    assert done.returncode == 0, done.stdout + done.stderr


def edit(key: str, value: str | None) -> str:
    """The good manifest with one top-level `key = …` line replaced (or removed when None)."""
    pattern = re.compile(rf"^{re.escape(key)} = .*$", re.MULTILINE)
    assert pattern.search(GOOD), key
    return pattern.sub("" if value is None else f"{key} = {value}", GOOD)


# (manifest, what build.py says, whether Blender's validator refuses it too)
BROKEN = [
    (edit("id", None), "'id' is missing", True),
    (edit("version", None), "'version' is missing", True),
    (edit("tagline", None), "'tagline' is missing", True),
    (edit("version", '"1.0"'), "'version' = '1.0' is not a version like 1.2.3", True),
    (edit("version", "1"), "'version' must be a str, not a int", True),
    (edit("id", '"my-addon"'), "'id' = 'my-addon' is not a valid identifier", True),
    (edit("id", '"_brender"'), "'id' = '_brender' is not a valid identifier", True),
    (edit("type", '"plugin"'), "'type' must be 'add-on' or 'theme'", True),
    (edit("tagline", '"Sends the open file to the farm."'), "must not end with punctuation", True),
    (edit("tagline", '"' + "x" * 65 + '"'), "65 characters long, at most 64", True),
    (edit("blender_version_min", '"4.2"'), "is not a Blender version like 4.2.0", True),
    (edit("license", "[]"), "'license' must list SPDX identifiers", True),
    (edit("license", '["GPL-3.0-or-later"]'), "'license' must list SPDX identifiers", False),
    (edit("tags", '["Farming"]'), "unknown tag 'Farming'", False),  # checked by the platform
    (GOOD.replace('network = "', 'internet = "'), "unknown permission 'internet'", True),
    (
        re.sub(r'network = ".*"', 'network = "Talk to the farm."', GOOD),
        "permission 'network'",
        True,
    ),
    (edit("version", '"9.9.9"'), "version mismatch: the manifest says 9.9.9", False),
    ("id = ", "cannot read it", True),
]


@pytest.mark.parametrize(("manifest", "message", "blender_refuses"), BROKEN,
                         ids=[message for _, message, _ in BROKEN])  # fmt: skip
def test_a_broken_manifest_is_refused_by_name(tmp_path: Path, manifest: str, message: str,
                                              blender_refuses: bool) -> None:  # fmt: skip
    root = tree(tmp_path, manifest)
    with pytest.raises(build.ManifestError, match=re.escape(message)):
        build.build(root, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    done = subprocess.run([sys.executable, "build.py"], cwd=root, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1 and message in done.stderr and not (root / "dist").exists()
    assert "Traceback" not in done.stderr
    if blender_refuses and addon_harness.has("bpy"):
        staged = tmp_path / "staged"
        shutil.copytree(root / "addon", staged)
        (staged / "blender_manifest.toml").write_text(manifest)
        assert validate(staged).returncode != 0, "Blender's validator accepts it"
