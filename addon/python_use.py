"""What in the open file needs Python to render as the artist sees it. No `bpy` import here.

A node renders with `--disable-autoexec` unless the job asks for auto-exec (the artist's *Auto
Run Python Scripts* preference). Without it, a driver whose expression Blender's own evaluator
cannot take (`driver.is_simple_expression` is False) is switched off, and a text block marked
*Register* does not run: the farm's frames differ from the viewport's. `python_users(bpy.data)`
names them, so the add-on can say so before it submits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# The collections of `bpy.data` whose data-blocks may carry drivers (missing ones are skipped,
# as some exist only in some Blender versions).
ANIMATED = (
    "objects", "meshes", "materials", "node_groups", "shape_keys", "cameras", "lights",
    "worlds", "scenes", "armatures", "curves", "textures", "particles", "grease_pencils",
    "grease_pencils_v3", "linestyles", "lattices", "metaballs", "speakers", "volumes",
    "hair_curves", "pointclouds", "movieclips", "masks", "cache_files",
)  # fmt: skip
SHOWN = 3  # names given in the warning; the rest are counted


def _owners(data: Any) -> Iterator[Any]:
    """Every data-block that may hold drivers, with the node trees embedded in them."""
    for name in ANIMATED:
        for block in getattr(data, name, ()):
            yield block
            tree = getattr(block, "node_tree", None)  # a material's, world's, light's nodes
            if tree is not None:
                yield tree


def python_drivers(data: Any) -> list[str]:
    """The drivers that need Python, as "Cube location[2]"."""
    found = []
    for block in _owners(data):
        anim = getattr(block, "animation_data", None)
        for fcurve in getattr(anim, "drivers", None) or ():
            driver = fcurve.driver
            if driver.type == "SCRIPTED" and not driver.is_simple_expression:
                found.append(f"{block.name} {fcurve.data_path}[{fcurve.array_index}]")
    return found


def registered_texts(data: Any) -> list[str]:
    """The text blocks that run when the file opens (*Register* ticked)."""
    return [text.name for text in getattr(data, "texts", ()) if getattr(text, "use_module", False)]


def _names(kind: str, names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return f"{kind}{'s' if len(names) > 1 else ''} ({', '.join(names[:SHOWN])}{more})"


def warning(data: Any) -> str:
    """The warning for a submit without auto-exec, or "" when nothing in the file needs Python."""
    drivers, texts = python_drivers(data), registered_texts(data)
    parts = [_names(kind, names) for kind, names in
             (("Python driver", drivers), ("registered script", texts)) if names]  # fmt: skip
    if not parts:
        return ""
    return (
        f"Auto Run Python Scripts is off: the farm will render without this file's"
        f" {' and '.join(parts)}. Turn it on in Preferences › Save & Load to run them there."
    )
