"""Scenarios run inside Blender-as-a-module (the `bpy` wheel) by test_addon_in_blender.py.

    python bpy_session.py SCENARIO '{"zip": ..., "address": ...}'

Run only as a child process, with BLENDER_USER_RESOURCES set to a scratch folder before bpy is
imported. Each scenario installs the built zip as an extension, does its work through
`bpy.ops.brender.*`, disables the add-on, and prints one `RESULT {json}` line for the test.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import bpy

addon_utils = importlib.import_module("addon_utils")  # Blender's, on sys.path once bpy is in

ADDON = "bl_ext.user_default.brender"
CLASSES = {
    "BRENDER_OT_submit_job": "Operator", "BRENDER_OT_test_connection": "Operator",
    "BRENDER_OT_refresh_jobs": "Operator", "BRENDER_OT_job_action": "Operator",
    "BRENDER_OT_download_frames": "Operator", "BRENDER_OT_notify": "Operator",
    "BRENDER_OT_open_folder": "Operator", "BRENDER_OT_open_last_frame": "Operator",
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


def set_farm(address: str, token: str = "") -> None:
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.address = address
    prefs.token = token


def shared_storage() -> None:
    """The scene's submit form in shared-storage mode: the job is the .blend's path."""
    bpy.context.scene.brender.use_upload = False


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
    out["use_upload_default"] = scene.brender.use_upload
    shared_storage()
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
    # Stereo saved view by view cannot travel as one file a frame: said before the farm is
    # asked (it is down) and before the file is saved.
    bpy.context.scene.brender.use_upload = True
    render = bpy.context.scene.render
    render.use_multiview = True
    render.image_settings.views_format = "INDIVIDUAL"
    saved = os.stat(args["blend"]).st_mtime_ns
    out["stereo_upload"] = call(bpy.ops.brender.submit_job)
    out["stereo_upload_saved"] = os.stat(args["blend"]).st_mtime_ns != saved
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
    shared_storage()
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


def scenario_word(args: dict[str, Any]) -> dict[str, Any]:
    """Submit, then only the add-on's timer runs (no jobs panel on screen): the artist is told
    when the job ends, and opens its last frame."""
    out: dict[str, Any] = {}
    install(args["zip"])
    set_farm(args["address"])
    bpy.context.preferences.addons[ADDON].preferences.refresh_every = 1.0
    bpy.ops.wm.open_mainfile(filepath=args["blend"])
    shared_storage()
    out["submit"] = call(bpy.ops.brender.submit_job)
    farm = module("farm")
    out["watched"] = sorted(farm.mine.jobs)
    deadline = time.monotonic() + args.get("timeout", 150)
    while not farm.mine.notices and time.monotonic() < deadline:
        farm.tick()  # the bpy.app.timers callback, as Blender calls it
        time.sleep(0.25)
    out["notices"] = [dict(vars(n)) for n in farm.mine.notices]
    out["board_refreshed"] = farm.board.refreshed_at != float("-inf")
    out["drawn_jobs"] = draw("BRENDER_PT_jobs")
    if farm.mine.notices:
        job_id = farm.mine.notices[0].job_id
        out["last_frame"] = call(bpy.ops.brender.open_last_frame, job_id=job_id)
        out["images"] = [img.filepath for img in bpy.data.images]
    out["unknown"] = call(bpy.ops.brender.open_folder, job_id=999)
    addon_utils.disable(ADDON, default_set=True)
    out["end"] = state()
    bpy.ops.wm.read_factory_settings(use_empty=True)
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
    shared_storage()
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


class Progress:
    """Records the worker's progress replies as the add-on's own pump takes them."""

    def __init__(self) -> None:
        self.seen: list[list[Any]] = []
        farm = module("farm")
        comms = module("comms")
        drain = farm._worker.drain

        def recording() -> list[Any]:
            replies = drain()
            self.seen += [[r.data.text, r.data.fraction] for r in replies
                          if r.kind == comms.PROGRESS]  # fmt: skip
            return replies

        farm._worker.drain = recording


def wheel_check() -> dict[str, Any]:
    """The bundled blender-asset-tracer, as Blender installed it for the extension: on
    sys.path from the user resources, and importable from there. (This Python may have its
    own copy too, as the test machine's does: the extension's is put first to import it.)"""
    home = os.environ["BLENDER_USER_RESOURCES"]
    sites = [p for p in sys.path if p.startswith(home) and Path(p, "blender_asset_tracer").is_dir()]
    if sites:
        sys.path.remove(sites[0])
        sys.path.insert(0, sites[0])
        for name in [n for n in sys.modules if n.split(".")[0] == "blender_asset_tracer"]:
            del sys.modules[name]
    pack = importlib.import_module("blender_asset_tracer.pack")
    return {"sites": sites, "file": pack.__file__,
            "version": importlib.import_module("blender_asset_tracer").__version__}  # fmt: skip


def scenario_upload(args: dict[str, Any]) -> dict[str, Any]:
    """A scene linking a library and a texture from other folders: packed, uploaded, rendered
    by a node that never sees the artist's folders, and its frames downloaded back."""
    out: dict[str, Any] = {}
    install(args["zip"])
    out["installed"] = state()
    out["wheel"] = wheel_check()
    set_farm(args["address"], args["token"])
    bpy.ops.wm.open_mainfile(filepath=args["blend"])
    out["use_upload"] = bpy.context.scene.brender.use_upload
    out["drawn_submit"] = draw("BRENDER_PT_submit")
    progress = Progress()
    started = time.monotonic()
    out["submit"] = call(bpy.ops.brender.submit_job)
    out["submit_seconds"] = time.monotonic() - started
    out["progress"] = progress.seen
    for folder in args["move_away"]:  # only the farm has the files now
        Path(folder).rename(Path(folder).with_name(Path(folder).name + "-away"))
    board = refresh_until(lambda b: b.snapshot.jobs and b.snapshot.jobs[0].status in
                          ("completed", "failed", "canceled"), args.get("timeout", 150))  # fmt: skip
    out["jobs"] = jobs_of(board)
    out["drawn_jobs"] = draw("BRENDER_PT_jobs")
    bpy.context.scene.render.filepath = args["download"] + "/####"
    job_id = board.snapshot.jobs[0].id
    out["download"] = call(bpy.ops.brender.download_frames, job_id=job_id)
    out["download_again"] = call(bpy.ops.brender.download_frames, job_id=job_id)
    addon_utils.disable(ADDON, default_set=True)
    out["end"] = state()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return out


def scenario_missing(args: dict[str, Any]) -> dict[str, Any]:
    """A scene whose texture is not on disk: named and held, then sent when confirmed."""
    out: dict[str, Any] = {}
    install(args["zip"])
    set_farm(args["address"], args["token"])
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 1
    image = bpy.data.images.load(args["texture"], check_existing=False)
    material = bpy.data.materials.new("tex")
    material.use_nodes = True
    node = material.node_tree.nodes.new("ShaderNodeTexImage")
    node.image = image
    bpy.data.objects["Cube"].data.materials.append(material)
    bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
    Path(args["texture"]).unlink()  # gone before the artist submits
    farm = module("farm")
    out["held"] = call(bpy.ops.brender.submit_job)
    out["held_text"] = farm.board.held
    out["drawn_submit"] = draw("BRENDER_PT_submit")
    out["anyway"] = call(bpy.ops.brender.submit_job, anyway=True)
    out["held_after"] = farm.board.held
    addon_utils.disable(ADDON, default_set=True)
    out["end"] = state()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return out


if __name__ == "__main__":
    scenario, raw = sys.argv[1], sys.argv[2]
    result = globals()[f"scenario_{scenario}"](json.loads(raw))
    print("RESULT " + json.dumps(result), flush=True)
