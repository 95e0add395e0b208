"""Packing with BAT 1.23: files from Debian's Blender 3.4 (plain and compressed) and from
the bpy 4.5 module, missing dependencies by name, unreadable files in words."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from blender_scene import make_linked_scene, make_scene_bpy

from brender.pack import MissingFiles, PackError, pack

pytestmark = pytest.mark.blender


def test_linked_scene_packs_into_one_tree(blender: str, tmp_path: Path) -> None:
    main, _, _ = make_linked_scene(tmp_path / "art")
    packed = pack(main, tmp_path / "pack")
    m = packed.manifest
    assert m.main == "sh010.blend" and len(m.files) == 3 and packed.missing == []
    names = sorted(Path(p).name for p in m.files)
    assert names == ["checker.png", "props.blend", "sh010.blend"]
    assert all((packed.root / p).is_file() for p in m.files)
    assert "pack-info.txt" not in m.files


def test_missing_files_are_named_before_anything(blender: str, tmp_path: Path) -> None:
    main, _, tex = make_linked_scene(tmp_path / "art")
    tex.unlink()
    with pytest.raises(MissingFiles) as missing:
        pack(main, tmp_path / "pack")
    assert missing.value.missing == [str(tex)]
    assert not any((tmp_path / "pack").rglob("*.blend"))  # nothing was copied
    packed = pack(main, tmp_path / "pack2", allow_missing=True)
    assert packed.missing == [str(tex)] and len(packed.manifest.files) == 2


def test_compressed_34_file(blender: str, tmp_path: Path) -> None:
    path = tmp_path / "z.blend"
    subprocess.run(
        [blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr",
         f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(path)!r}, compress=True)"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd
    assert pack(path, tmp_path / "pack").manifest.main == "z.blend"


def test_bpy_45_file(tmp_path: Path) -> None:
    pytest.importorskip("bpy")
    path = make_scene_bpy(tmp_path / "b45.blend", 1, 1)
    assert pack(path, tmp_path / "pack").manifest.main == "b45.blend"


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.blend"
    path.write_bytes(b"not a blend file at all" * 10)
    with pytest.raises(PackError, match=r"cannot read junk\.blend"):
        pack(path, tmp_path / "pack")
    with pytest.raises(PackError, match="no such file"):
        pack(tmp_path / "nope.blend", tmp_path / "pack")
