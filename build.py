"""Pack the Blender add-on: `python build.py` writes dist/brender-<version>.zip.

The zip holds `blender_manifest.toml` and the add-on's modules (addon/) at its root, as
Blender's *Install from Disk* expects, and nothing else: no caches, no tests, no hidden files.
The manifest is checked first, with the rules of Blender's own validator (`blender_ext.py
validate`), and its version must equal `__version__` of the add-on and of the Python package.
The same inputs give the same bytes: sorted entries, fixed dates, modes and compression.

    python build.py [--check] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
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
SKIP_NAMES = re.compile(r"^(\.|test|conftest\.py$)|\.(pyc|pyo|orig|rej|swp|blend\d*)$|~$")


class ManifestError(Exception):
    """The manifest (or the versions around it) would make a package Blender refuses."""


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


def build(root: Path = ROOT, out_dir: Path | None = None) -> Path:
    data = read_manifest(root)
    out_dir = out_dir or root / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{data['id']}-{data['version']}.zip"
    addon_dir = root / "addon"
    if not (addon_dir / "__init__.py").is_file():
        raise ManifestError(f"{addon_dir}/__init__.py is missing: nothing to pack")
    entries = [("blender_manifest.toml", root / "blender_manifest.toml")]
    entries += [(p.relative_to(addon_dir).as_posix(), p) for p in addon_files(addon_dir)]
    partial = target.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w") as zf:
        for name, path in entries:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, wherever it is built, so the bytes do not vary
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    os.replace(partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the manifest and pack the add-on.")
    parser.add_argument("--check", action="store_true", help="check only, write nothing")
    parser.add_argument("--out", type=Path, help="where the zip goes (default: dist/)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            data = read_manifest()
            print(f"blender_manifest.toml: {data['id']} {data['version']} is fine")
        else:
            print(build(out_dir=args.out))
    except ManifestError as exc:
        print(f"build.py: blender_manifest.toml refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
