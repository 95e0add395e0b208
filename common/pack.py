"""Packing a .blend with its dependencies for a farm without shared storage.

blender-asset-tracer (BAT) traces the file's dependencies (linked libraries, recursively;
images, sequences, UDIMs, caches, fonts, sounds) and copies them into a tree, rewriting the
paths in the copied .blend files so they resolve inside it; files outside the project (the
main file's folder) go under `_outside_project/`, as BAT does. The tree is then hashed into a
`Manifest`. Only the submitter needs BAT: neither the server nor a node imports this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

# Relative: build.py copies this module and manifest.py into the add-on as they are.
from .manifest import Manifest, ManifestError, build

log = logging.getLogger(__name__)

PACK_INFO = "pack-info.txt"
"""BAT's note of where the pack came from: not needed to render, and differs per pack."""


class PackError(Exception):
    """The file cannot be packed; the message says why, in words for the artist."""


class MissingFiles(PackError):
    """Dependencies that do not exist on disk, by name (nothing was packed or uploaded)."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        shown = "\n  ".join(missing)
        super().__init__(f"{len(missing)} file(s) this .blend uses are missing:\n  {shown}")


@dataclass(frozen=True)
class Packed:
    root: Path
    """The packed tree."""
    manifest: Manifest
    missing: list[str]
    """Dependencies left out because they do not exist (only with `allow_missing`)."""


def pack(blend: Path, dest: Path, *, allow_missing: bool = False) -> Packed:
    """Pack `blend` and what it uses into the (new or empty) folder `dest`.

    Raises MissingFiles, before copying anything, when dependencies are missing and
    `allow_missing` is false; PackError when BAT cannot read a file."""
    from blender_asset_tracer import pack as bat_pack  # only the submitter needs BAT

    blend = Path(blend).expanduser().resolve()
    if not blend.is_file():
        raise PackError(f"no such file: {blend}")
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with bat_pack.Packer(blend, blend.parent, dest) as packer:
            packer.strategise()
            missing = sorted(str(p) for p in packer.missing_files)
            if missing and not allow_missing:
                raise MissingFiles(missing)
            packer.execute()
            main = Path(packer.output_path)
    except PackError:
        raise
    except Exception as exc:  # BAT's errors share no base class: a file it cannot parse
        raise PackError(f"cannot read {blend.name} or a file it uses: {_why(exc)}") from exc
    for path in missing:
        log.warning("missing, left out: %s", path)
    try:
        manifest = build(dest, main, skip=frozenset({PACK_INFO}))
    except ManifestError as exc:
        raise PackError(f"the packed tree has a path the farm refuses: {exc}") from exc
    return Packed(dest, manifest, missing)


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
