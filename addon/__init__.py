"""brender: send the open .blend file to a brender render farm and follow its jobs.

A Blender 4.2+ extension (see blender_manifest.toml). This module only registers; the parts
that do not need Blender (payload, client, jobs, comms, errors) import without `bpy`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"  # = blender_manifest.toml's version = brender.__version__ (build.py checks)

# Imported when Blender registers the add-on, not when the package is imported, so that tests
# can import `payload`, `client`, `jobs` and `comms` without Blender.
_MODULES = ("preferences", "properties", "operators", "ending", "gui")


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f".{name}", __name__) for name in _MODULES]


def register() -> None:
    for module in _modules():
        module.register()
    importlib.import_module(".farm", __name__).start()


def unregister() -> None:
    importlib.import_module(".farm", __name__).stop()
    for module in reversed(_modules()):
        module.unregister()
