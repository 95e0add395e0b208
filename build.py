"""Pack the Blender add-on: `python build.py` writes dist/brender-<version>.zip.

The zip holds `blender_manifest.toml` and the add-on's modules (addon/) at its root, as
Blender's *Install from Disk* expects, and nothing else: no caches, no tests, no hidden files.
Two things are added at build time and never committed in addon/:

- `_shared/`: `common/manifest.py`, `common/pack.py`, `common/sizes.py`, `common/tls.py` and
  `common/transfer.py` byte for byte (the packing code, the TLS checks and the upload client
  the `brender` command line uses; they import each other relatively, or only the standard
  library, so they work in either package), and
- `wheels/`: the pinned blender-asset-tracer wheel, which Blender installs when the extension
  is enabled (the manifest's `wheels = [...]`). It comes from the wheel cache (`--wheels DIR`,
  `BRENDER_WHEEL_CACHE`, else `~/.cache/brender/wheels`), or from `pip download` into it when
  it is not there yet; its SHA-256 is checked either way, so a build offline with the wheel
  cached and one online give the same bytes.

The manifest is checked first, with the rules of Blender's own validator (`blender_ext.py
validate`), and its version must equal `__version__` of the add-on and of the Python package.
The same inputs give the same bytes: sorted entries, fixed dates, modes and compression.

    python build.py [--check] [--out DIR] [--wheels DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REQUIRED = {
    "schema_version": str, "id": str, "version": str, "name": str, "tagline": str,
    "maintainer": str, "type": str, "blender_version_min": str, "license": list,
}  # fmt: skip
OPTIONAL = {
    "blender_version_max": str, "website": str, "copyright": list, "permissions": dict,
    "tags": list, "platforms": list, "wheels": list,
}  # fmt: skip
# Blender's RE_MANIFEST_SEMVER: X.Y.Z with an optional -prerelease and +build.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
BLENDER_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
TERSE_MAX = 64  # tagline and permission reasons
PERMISSIONS = ("files", "network", "clipboard", "camera", "microphone")
ADDON_TAGS = {
    "3D View", "Add Curve", "Add Mesh", "Animation", "Bake", "Camera", "Compositing",
    "Development", "Game Engine", "Geometry Nodes", "Grease Pencil", "Import-Export", "Lighting",
    "Material", "Mesh", "Modeling", "Node", "Object", "Paint", "Physics", "Pipeline", "Render",
    "Rigging", "Scene", "Sculpt", "Sequencer", "System", "Text Editor", "Tracking",
    "User Interface", "UV",
}  # fmt: skip
VERSION_LINE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)
VERSION_FILES = ("common/__init__.py", "addon/__init__.py")
FIXED_TIME = (2024, 1, 1, 0, 0, 0)
# The bundled blender-asset-tracer: 1.23 is the last for Python 3.11, the Python of Blender
# 4.2 to 5.0 (2.x needs 3.13). Its hash is PyPI's, so a wheel from any cache is the same one.
WHEELS = {
    "blender_asset_tracer-1.23-py3-none-any.whl": (
        "blender-asset-tracer==1.23",
        "dd176f58ceac43621d7ae1e539604e9859b102cbb6b5106b666953f8b3683998",
    ),
}
SHARED = (
    "manifest.py",
    "pack.py",
    "sizes.py",
    "tls.py",
    "transfer.py",
)  # from common/, into the zip's _shared/
SHARED_INIT = b'"""Copied from the brender package by build.py: the code the CLI uses."""\n'
SKIP_NAMES = re.compile(r"^(\.|test|conftest\.py$)|\.(pyc|pyo|orig|rej|swp|blend\d*)$|~$")


class ManifestError(Exception):
    """The manifest (or the versions around it) would make a package Blender refuses."""


class WheelError(ManifestError):
    """A wheel to bundle cannot be had (offline and not cached) or is not the pinned one."""


def _terse(key: str, value: str) -> None:
    """Blender's rule for short texts: at most 64 characters, no trailing punctuation."""
    if len(value) > TERSE_MAX:
        raise ManifestError(f"{key} is {len(value)} characters long, at most {TERSE_MAX} allowed")
    if not value.strip() or value != value.strip():
        raise ManifestError(f"{key} must be text without leading or trailing spaces")
    if not (value[-1].isalnum() or value[-1] in ")]}"):
        raise ManifestError(f"{key} must not end with punctuation ({value[-1]!r})")


def check_manifest(data: dict[str, Any]) -> None:
    """Refuse a manifest Blender would refuse, naming the problem."""
    for key, kind in (REQUIRED | OPTIONAL).items():
        if key not in data:
            if key in REQUIRED:
                raise ManifestError(f"'{key}' is missing")
            continue
        if not isinstance(data[key], kind):
            raise ManifestError(
                f"'{key}' must be a {kind.__name__}, not a {type(data[key]).__name__}"
            )
    for key in ("schema_version", "version"):
        if not SEMVER.match(data[key]):
            raise ManifestError(f"'{key}' = {data[key]!r} is not a version like 1.2.3")
    for key in ("blender_version_min", "blender_version_max"):
        if key in data and not BLENDER_VERSION.match(data[key]):
            raise ManifestError(f"'{key}' = {data[key]!r} is not a Blender version like 4.2.0")
    ident = data["id"]
    if not ident.isidentifier() or "__" in ident or ident.startswith("_") or ident.endswith("_"):
        raise ManifestError(
            f"'id' = {ident!r} is not a valid identifier (letters, digits and single "
            "underscores, not starting with a digit or an underscore)"
        )
    if data["type"] not in ("add-on", "theme"):
        raise ManifestError(f"'type' must be 'add-on' or 'theme', not {data['type']!r}")
    for key in ("name", "maintainer"):
        if not data[key].strip() or data[key] != data[key].strip():
            raise ManifestError(f"'{key}' must be text without leading or trailing spaces")
    _terse("'tagline'", data["tagline"])
    if not data["license"] or not all(
        isinstance(x, str) and x.startswith("SPDX:") and len(x) > 5 for x in data["license"]
    ):
        raise ManifestError("'license' must list SPDX identifiers, like \"SPDX:GPL-3.0-or-later\"")
    for key, reason in data.get("permissions", {}).items():
        if key not in PERMISSIONS:
            raise ManifestError(f"unknown permission {key!r} (known: {', '.join(PERMISSIONS)})")
        if not isinstance(reason, str):
            raise ManifestError(f"permission {key!r} needs a reason (a string)")
        _terse(f"the reason for permission {key!r}", reason)
    if data["type"] == "add-on":
        for tag in data.get("tags", []):
            if tag not in ADDON_TAGS:
                raise ManifestError(
                    f"unknown tag {tag!r} (Blender's: {', '.join(sorted(ADDON_TAGS))})"
                )


def check_versions(version: str, root: Path) -> None:
    """The manifest, the add-on and the Python package say the same version."""
    for rel in VERSION_FILES:
        path = root / rel
        match = VERSION_LINE.search(path.read_text()) if path.exists() else None
        if match is None:
            raise ManifestError(f"{rel} has no __version__ line")
        if match.group(1) != version:
            raise ManifestError(
                f"version mismatch: the manifest says {version}, {rel} says {match.group(1)}"
            )


def read_manifest(root: Path = ROOT) -> dict[str, Any]:
    path = root / "blender_manifest.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"cannot read it: {exc}") from exc
    check_manifest(data)
    check_versions(data["version"], root)
    return data


def addon_files(addon_dir: Path) -> list[Path]:
    """The add-on's files to pack: everything but caches, tests, hidden and editor files."""
    return sorted(
        p for p in addon_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
        and not any(SKIP_NAMES.search(part) for part in p.relative_to(addon_dir).parts)
    )  # fmt: skip


def wheel_cache() -> Path:
    if os.environ.get("BRENDER_WHEEL_CACHE"):
        return Path(os.environ["BRENDER_WHEEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "brender" / "wheels"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel(name: str, cache: Path) -> Path:
    """The pinned wheel `name` from `cache`, downloaded into it with pip when missing."""
    requirement, sha = WHEELS[name]
    path = cache / name
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as temp:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--dest", temp, requirement],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            got = Path(temp) / name
            if done.returncode != 0 or not got.is_file():
                raise WheelError(
                    f"{name} is not in {cache} and pip could not download it "
                    f"({done.stderr.strip().splitlines()[-1:] or 'no error'}): put the wheel "
                    "there, or pass --wheels DIR"
                )
            os.replace(got, path)
    if _sha256(path) != sha:
        raise WheelError(f"{path} is not the pinned {name} (SHA-256 {sha}): delete it")
    return path


def bundled_wheels(data: dict[str, Any], cache: Path) -> list[tuple[str, Path]]:
    """The manifest's `wheels`, each one we pin, as (name in the zip, file)."""
    entries = []
    for rel in data.get("wheels", []):
        name = rel.removeprefix("./")
        if not name.startswith("wheels/") or name[7:] not in WHEELS:
            raise WheelError(f"{rel!r} in 'wheels' is not one build.py knows how to fetch")
        entries.append((name, fetch_wheel(name[7:], cache)))
    return entries


def build(root: Path = ROOT, out_dir: Path | None = None, wheels: Path | None = None) -> Path:
    data = read_manifest(root)
    out_dir = out_dir or root / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{data['id']}-{data['version']}.zip"
    addon_dir = root / "addon"
    if not (addon_dir / "__init__.py").is_file():
        raise ManifestError(f"{addon_dir}/__init__.py is missing: nothing to pack")
    entries: list[tuple[str, Path | bytes]] = [
        ("blender_manifest.toml", root / "blender_manifest.toml")
    ]
    entries += [(p.relative_to(addon_dir).as_posix(), p) for p in addon_files(addon_dir)]
    if (addon_dir / "_shared").exists():
        raise ManifestError("addon/_shared is made by build.py: delete it from addon/")
    entries += [("_shared/__init__.py", SHARED_INIT)]
    entries += [(f"_shared/{name}", root / "common" / name) for name in SHARED]
    entries += bundled_wheels(data, wheels or wheel_cache())
    partial = target.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w") as zf:
        for name, source in entries:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            # A wheel is a zip already: stored as it is, byte for byte.
            wheel = name.endswith(".whl")
            info.compress_type = zipfile.ZIP_STORED if wheel else zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, wherever it is built, so the bytes do not vary
            info.external_attr = 0o644 << 16
            body = source if isinstance(source, bytes) else source.read_bytes()
            zf.writestr(info, body, compresslevel=None if wheel else 9)
    os.replace(partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the manifest and pack the add-on.")
    parser.add_argument("--check", action="store_true", help="check only, write nothing")
    parser.add_argument("--out", type=Path, help="where the zip goes (default: dist/)")
    parser.add_argument(
        "--wheels", type=Path,
        help="wheel cache: the bundled wheels are taken from (or downloaded into) DIR "
        "(default: BRENDER_WHEEL_CACHE, else ~/.cache/brender/wheels)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.check:
            data = read_manifest()
            print(f"blender_manifest.toml: {data['id']} {data['version']} is fine")
        else:
            print(build(out_dir=args.out, wheels=args.wheels))
    except WheelError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    except ManifestError as exc:
        print(f"build.py: blender_manifest.toml refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
