"""When a job submitted from here ends: the report in the status bar, and opening its folder or
its last frame. The paths come from `watch` (no `bpy` there)."""

# mypy: disable-error-code="valid-type"
# (Blender property annotations are deferred property definitions, not types.)

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import bpy
from bpy.props import IntProperty, StringProperty

from . import comms, farm, payload, watch
from .errors import FarmError, SettingsError
from .operators import FarmOperator, Result


class BRENDER_OT_notify(bpy.types.Operator):
    """Say that a farm job ended (the status bar and the Info log; no dialog)"""

    bl_idname = "brender.notify"
    bl_label = "brender Notice"
    bl_options = {"INTERNAL"}

    message: StringProperty()
    level: StringProperty(default="INFO")

    def execute(self, context: bpy.types.Context) -> Result:
        level = self.level if self.level in ("INFO", "WARNING", "ERROR") else "INFO"
        self.report({level}, self.message)  # type: ignore[arg-type]
        return {"FINISHED"}


def _notice(job_id: int) -> watch.Notice:
    notice = farm.mine.notice(job_id)
    if notice is None:
        raise SettingsError(f"Farm job {job_id} has not ended since this Blender submitted it")
    return notice


def _download_folder(context: bpy.types.Context) -> str:
    scene = context.scene
    assert scene is not None
    return payload.output_folder(scene.render.filepath, bpy.data.filepath)


class BRENDER_OT_open_folder(bpy.types.Operator):
    """Open the folder with this job's frames (for an uploaded job: where Download Frames puts
    them)"""

    bl_idname = "brender.open_folder"
    bl_label = "Open Folder"

    job_id: IntProperty(name="Job", min=1)

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            folder = watch.where_to_look(_notice(self.job_id), _download_folder(context))
        except FarmError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not folder or not os.path.isdir(folder):
            self.report({"ERROR"}, f"The folder {folder or '(none)'} is not on this computer")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=folder)
        self.report({"INFO"}, f"Opened {folder}")
        return {"FINISHED"}


class BRENDER_OT_open_last_frame(FarmOperator):
    """Open this job's last rendered frame in Blender (an Image Editor shows it if one is open)"""

    bl_idname = "brender.open_last_frame"
    bl_label = "Open Last Frame"
    kind = "frame"

    job_id: IntProperty(name="Job", min=1)

    def prepare(self, context: bpy.types.Context) -> comms.Task | comms.WithProgress:
        self._notice = _notice(self.job_id)
        self._folder = _download_folder(context) if self._notice.storage == "upload" else ""
        client, request = farm.client(), watch.last_frame_request(self.job_id)
        return lambda: client.call(request, f"the frames of job {self.job_id}")

    def done(self, context: bpy.types.Context, data: Any) -> Result | None:
        if not isinstance(data, list) or not data:
            self.report({"ERROR"}, f"Farm job {self.job_id} has no finished frame")
            return {"CANCELLED"}
        path = watch.last_frame_path(self._notice, data[0], self._folder)
        if not os.path.isfile(path):
            hint = " (Download Frames first)" if self._notice.storage == "upload" else ""
            self.report({"ERROR"}, f"The frame {path} is not on this computer{hint}")
            return {"CANCELLED"}
        image = bpy.data.images.load(path, check_existing=True)
        shown = False
        for area in context.screen.areas if context.screen else ():
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image  # type: ignore[union-attr]
                shown = True
        self.report({"INFO"}, f"Opened {path}" + ("" if shown else f" as the image '{image.name}'"))
        return None


classes = (BRENDER_OT_notify, BRENDER_OT_open_folder, BRENDER_OT_open_last_frame)
register: Callable[[], None]
unregister: Callable[[], None]
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
