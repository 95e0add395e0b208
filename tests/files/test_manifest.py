"""The manifest: paths that cannot leave the tree, hashes, the canonical form."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from brender.manifest import Manifest, ManifestError, build, check_path

SHA = "a" * 64


def test_build_hashes_every_file(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "a.blend").write_bytes(b"BLENDER main")
    (tmp_path / "lib" / "b.blend").write_bytes(b"library")
    (tmp_path / "pack-info.txt").write_text("note")
    m = build(tmp_path, tmp_path / "a.blend", skip=frozenset({"pack-info.txt"}))
    assert m.main == "a.blend"
    assert sorted(m.files) == ["a.blend", "lib/b.blend"]
    assert m.files["lib/b.blend"].sha256 == hashlib.sha256(b"library").hexdigest()
    assert m.total_size == len(b"BLENDER main") + len(b"library")
    again = Manifest.loads(m.canonical())
    assert again == m and again.sha256() == m.sha256()


@pytest.mark.parametrize(
    "path",
    ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "-rf", "a/-b", "a\\b", "a\nb", "a/"],
)
def test_paths_that_leave_the_tree_are_refused(path: str) -> None:
    with pytest.raises(ManifestError):
        check_path(path)


def test_refused_manifests() -> None:
    entry = {"sha256": SHA, "size": 1}
    with pytest.raises(ManifestError, match="not one of"):
        Manifest.parse({"main": "x.blend", "files": {"y.blend": entry}})
    with pytest.raises(ManifestError, match=r"not a \.blend"):
        Manifest.parse({"main": "y.png", "files": {"y.png": entry}})
    with pytest.raises(ManifestError, match="sha256"):
        Manifest.parse({"main": "y.blend", "files": {"y.blend": {"sha256": "AB", "size": 1}}})
    with pytest.raises(ManifestError, match="size"):
        Manifest.parse({"main": "y.blend", "files": {"y.blend": {"sha256": SHA, "size": -1}}})
    with pytest.raises(ManifestError, match="unknown"):
        Manifest.parse({"main": "y.blend", "files": {"y.blend": entry}, "x": 1})
