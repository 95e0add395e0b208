"""Scenarios run inside Blender-as-a-module (the `bpy` wheel) by test_addon_in_blender.py.

    python bpy_session.py SCENARIO '{"zip": ..., "address": ...}'

Run only as a child process, with BLENDER_USER_RESOURCES set to a scratch folder before bpy is
imported. Each scenario installs the built zip as an extension, does its work through
`bpy.ops.brender.*`, disables the add-on, and prints one `RESULT {json}` line for the test.
"""

from __future__ import annotations

import importlib
import json
import socket
import sys
import threading
import time
from types import ModuleType, SimpleNamespace
from typing import Any

import bpy

addon_utils = importlib.import_module("addon_utils")  # Blender's, on sys.path once bpy is in

ADDON = "bl_ext.user_default.brender"
CLASSES = {
    "BRENDER_OT_submit_job": "Operator", "BRENDER_OT_test_connection": "Operator",
    "BRENDER_OT_refresh_jobs": "Operator", "BRENDER_OT_job_action": "Operator",
    "BRENDER_PT_submit": "Panel", "BRENDER_PT_output_submit": "Panel", "BRENDER_PT_jobs": "Panel",
    "BRENDER_PG_submit": "PropertyGroup", "BrenderPreferences": "AddonPreferences",
}  # fmt: skip


def registered() -> list[str]:
    """The add-on's classes Blender knows right now."""
    return [name for name, base in CLASSES.items()
            if getattr(bpy.types, base).bl_rna_get_subclass_py(name) is not None]  # fmt: skip


def module(name: str) -> ModuleType:
    return sys.modules[f"{ADDON}.{name}"]


def install(zip_path: str) -> None:
    bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True
    )


def set_farm(address: str) -> None:
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.address = address


def state() -> dict[str, Any]:
    """What the add-on has left in Blender: classes, the scene property, timers, threads."""
    farm = sys.modules.get(f"{ADDON}.farm")
    return {
        "classes": registered(),
        "scene_property": hasattr(bpy.types.Scene, "brender"),
        "timer": bool(farm and bpy.app.timers.is_registered(farm.tick)),
        "threads": [t.name for t in threading.enumerate() if t.name.startswith("brender")],
        "enabled": ADDON in bpy.context.preferences.addons,
    }


def call(operator: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """An operator's result, or the text of the error it reported (bpy.ops raises those)."""
    try:
        return {"result": sorted(operator(*args, **kwargs)), "error": ""}
    except RuntimeError as exc:
        return {"result": [], "error": str(exc)}


class Recorder:
    """A stand-in `UILayout` that checks every property, operator and icon a panel draws exists."""

    def __init__(self, log: list[list[Any]]) -> None:
        self.log = log

    def _child(self, *args: Any, **kwargs: Any) -> Recorder:
        return Recorder(self.log)

    row = column = box = split = _child

    @staticmethod
    def check_icon(kwargs: dict[str, Any]) -> None:
        icons = bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items
        assert kwargs.get("icon", "NONE") in icons, f"no icon {kwargs['icon']}"

    def label(self, text: str = "", **kwargs: Any) -> None:
        self.check_icon(kwargs)
        self.log.append(["label", text])

    def prop(self, data: Any, name: str, **kwargs: Any) -> None:
        self.check_icon(kwargs)
        assert name in data.bl_rna.properties, f"no property {name} on {data}"
        self.log.append(["prop", name])

    def progress(self, factor: float = 0.0, text: str = "", **kwargs: Any) -> None:
        self.log.append(["progress", factor, text])

    def operator(self, idname: str, **kwargs: Any) -> Any:
        self.check_icon(kwargs)
        group, name = idname.split(".")
        rna = getattr(getattr(bpy.ops, group), name).get_rna_type()
        self.log.append(["operator", idname])
        return OperatorProps(rna)


class OperatorProps:
    def __init__(self, rna: Any) -> None:
        object.__setattr__(self, "rna", rna)

    def __setattr__(self, name: str, value: Any) -> None:
        assert name in self.rna.properties, f"no property {name} on {self.rna.identifier}"


def draw(panel: str) -> list[list[Any]]:
    log: list[list[Any]] = []
    getattr(module("gui"), panel).draw(SimpleNamespace(layout=Recorder(log)), bpy.context)
    return log


def refresh_until(predicate: Any, timeout: float = 120.0) -> Any:
    """Refresh through the add-on's own timer callback until `predicate(board)` holds."""
    farm = module("farm")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        farm.board.seen(time.monotonic())
        farm.board.stale = True
        farm.tick()  # the bpy.app.timers callback: pump replies, post a refresh
        if farm.wait_until(lambda: farm.board.pending == 0, 10.0) and predicate(farm.board):
            return farm.board
        time.sleep(0.2)
    raise AssertionError(f"timed out; board: {farm.board}")


def jobs_of(board: Any) -> list[dict[str, Any]]:
    return [dict(vars(job)) for job in board.snapshot.jobs]


def scenario_submit(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    install(args["zip"])
    out["installed"] = state()
    set_farm(args["address"])
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = args["frame_start"], args["frame_end"]
    scene.render.filepath = args["output"]
    bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
    group = scene.brender
    out["names"] = [group.project, group.sequence, group.shot]
    out["submit"] = call(bpy.ops.brender.submit_job)
    out["test_connection"] = call(bpy.ops.brender.test_connection)
    board = refresh_until(lambda b: b.snapshot.jobs)
    out["jobs"] = jobs_of(board)
    out["projects"] = list(board.snapshot.names.projects)
    out["drawn_jobs"] = draw("BRENDER_PT_jobs")
    out["drawn_submit"] = draw("BRENDER_PT_submit")
    farm = module("farm")
    out["pause"] = call(
        bpy.ops.brender.job_action, job_id=board.snapshot.jobs[0].id, action="pause"
    )
    refresh_until(lambda b: bool(b.snapshot.jobs) and b.snapshot.jobs[0].status == "paused", 30)
    out["resume"] = call(
        bpy.ops.brender.job_action, job_id=farm.board.snapshot.jobs[0].id, action="resume"
    )

    addon_utils.disable(ADDON, default_set=True)
    out["disabled"] = state()
    addon_utils.enable(ADDON, default_set=True)
    out["enabled_again"] = state()
    set_farm(args["address"])
    group = scene.brender
    group.shot = "sh020"
    group.priority = 70
    group.use_scene_range = False  # its update callback starts from the scene's values
    group.use_scene_output = False
    out["copied"] = [group.frame_start, group.frame_end, group.output, group.file_format]
    out["drawn_output_panel"] = draw("BRENDER_PT_output_submit")
    out["submit_again"] = call(bpy.ops.brender.submit_job)
    addon_utils.disable(ADDON, default_set=True)
    out["end"] = state()
    return out


def scenario_stopped(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    install(args["zip"])
    set_farm(args["address"])
    bpy.ops.wm.open_mainfile(filepath=args["blend"])
    out["submit"] = call(bpy.ops.brender.submit_job)
    out["test_connection"] = call(bpy.ops.brender.test_connection)
    out["refresh"] = call(bpy.ops.brender.refresh_jobs)
    out["board_error"] = module("farm").board.error
    out["drawn_jobs"] = draw("BRENDER_PT_jobs")
    set_farm("")
    out["no_address"] = call(bpy.ops.brender.submit_job)
    set_farm(args["address"])
    bpy.ops.wm.read_homefile(use_empty=True)
    out["unsaved"] = call(bpy.ops.brender.submit_job)
    out["after_errors"] = state()
    addon_utils.disable(ADDON, default_set=True)
    out["end"] = state()

    # The timer never waits for the network, not even for a farm that never answers, and
    # disabling the add-on with that request still out leaves Blender free to exit (the thread
    # is a daemon; its late reply is dropped).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        addon_utils.enable(ADDON, default_set=True)
        set_farm(f"127.0.0.1:{silent.getsockname()[1]}")
        farm = module("farm")
        farm.board.seen(time.monotonic())
        started = time.monotonic()
        farm.tick()
        out["tick_seconds"] = time.monotonic() - started  # printed by the test, not judged
        # Had the timer waited for the network, the reply (the client's timeout error) would
        # be here: take every reply that has come, and the refresh must still be out.
        farm.pump()
        out["refresh_pending"] = bool(farm.board.pending)
        silent.settimeout(10)
        connection, _ = silent.accept()  # the worker is now inside its request
        with connection:
            started = time.monotonic()
            addon_utils.disable(ADDON, default_set=True)
            out["disable_seconds"] = time.monotonic() - started
            # Still unanswered: the worker thread must still be inside its request here.
            out["disabled_in_flight"] = state()
    return out


def scenario_follow(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    install(args["zip"])
    set_farm(args["address"])
    bpy.ops.wm.open_mainfile(filepath=args["blend"])
    out["dirty"] = bpy.data.is_dirty
    out["submit"] = call(bpy.ops.brender.submit_job)
    started = time.monotonic()
    board = refresh_until(lambda b: b.snapshot.jobs and b.snapshot.jobs[0].status in
                          ("completed", "failed", "canceled"), args.get("timeout", 150))  # fmt: skip
    out["seconds"] = time.monotonic() - started
    out["jobs"] = jobs_of(board)
    out["drawn_jobs"] = draw("BRENDER_PT_jobs")
    addon_utils.disable(ADDON, default_set=True)
    out["end"] = state()
    return out


def scenario_versions(args: dict[str, Any]) -> dict[str, Any]:
    """A file saved by this Blender (4.5), with a Python driver, sent to a farm whose only node
    has an older Blender: the add-on says so first, then sends it when told to."""
    out: dict[str, Any] = {}
    install(args["zip"])
    set_farm(args["address"])
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 2
    driver = bpy.data.objects["Cube"].driver_add("location", 2).driver
    driver.type = "SCRIPTED"
    driver.expression = "(lambda f: f * 0.0 + 1.5)(frame)"  # not a simple expression
    bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
    farm = module("farm")
    out["held"] = call(bpy.ops.brender.submit_job)
    out["held_text"] = farm.board.held
    read = {"item": "job", "action": "read", "filters": {"blend_file": args["blend"]}}
    out["jobs_when_held"] = farm.client().call(read)
    out["drawn_submit"] = draw("BRENDER_PT_submit")
    out["anyway"] = call(bpy.ops.brender.submit_job, anyway=True)
    out["held_after"] = farm.board.held
    board = refresh_until(lambda b: b.snapshot.jobs and b.snapshot.jobs[0].waiting, 60)
    out["jobs"] = jobs_of(board)
    out["drawn_jobs"] = draw("BRENDER_PT_jobs")
    out["drawn_submit_after"] = draw("BRENDER_PT_submit")
    addon_utils.disable(ADDON, default_set=True)
    out["end"] = state()
    # bpy hangs at exit while a file with a Python driver is open (node/bpy_render.py unloads
    # it too): close it.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return out


if __name__ == "__main__":
    scenario, raw = sys.argv[1], sys.argv[2]
    result = globals()[f"scenario_{scenario}"](json.loads(raw))
    print("RESULT " + json.dumps(result), flush=True)
