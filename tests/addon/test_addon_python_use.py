"""Finding what in a file needs Python (auto-exec) to render as the artist sees it, without
Blender: data-blocks as plain objects shaped like bpy's. Real Blender runs the same code in
test_addon_in_blender.py."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import addon_harness  # noqa: F401  (puts the repository root on sys.path)

from addon import python_use


def fcurve(path: str, index: int, kind: str = "SCRIPTED", simple: bool = False) -> NS:
    return NS(data_path=path, array_index=index,
              driver=NS(type=kind, is_simple_expression=simple))  # fmt: skip


def block(name: str, *drivers: NS, tree: Any = None) -> NS:
    return NS(name=name, animation_data=NS(drivers=list(drivers)) if drivers else None,
              node_tree=tree)  # fmt: skip


def data(**collections: list[Any]) -> NS:
    return NS(**collections)


def test_drivers_that_need_python_are_named() -> None:
    nodes = block("Shader Nodetree", fcurve('nodes["Mix"].inputs[0].default_value', 0))
    found = data(
        objects=[block("Cube", fcurve("location", 2), fcurve("location", 0, simple=True)),
                 block("Lamp", fcurve("energy", 0, kind="AVERAGE")), block("Empty")],
        materials=[block("Metal", tree=nodes)],
    )  # fmt: skip
    assert python_use.python_drivers(found) == [
        "Cube location[2]",
        'Shader Nodetree nodes["Mix"].inputs[0].default_value[0]',
    ]


def test_registered_text_blocks_are_named() -> None:
    texts = [NS(name="rig_ui.py", use_module=True), NS(name="notes.txt", use_module=False)]
    assert python_use.registered_texts(data(texts=texts)) == ["rig_ui.py"]


def test_the_warning_in_words() -> None:
    assert python_use.warning(data()) == ""
    one = data(objects=[block("Cube", fcurve("location", 2))])
    assert python_use.warning(one) == (
        "Auto Run Python Scripts is off: the farm will render without this file's Python driver"
        " (Cube location[2]). Turn it on in Preferences › Save & Load to run them there."
    )
    many = data(objects=[block(f"Bone{i}", fcurve("rotation_euler", 1)) for i in range(5)],
                texts=[NS(name="rig_ui.py", use_module=True)])  # fmt: skip
    assert python_use.warning(many) == (
        "Auto Run Python Scripts is off: the farm will render without this file's Python drivers"
        " (Bone0 rotation_euler[1], Bone1 rotation_euler[1], Bone2 rotation_euler[1] and 2 more)"
        " and registered script (rig_ui.py). Turn it on in Preferences › Save & Load to run them"
        " there."
    )
