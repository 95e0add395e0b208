"""The panels: submit (3D Viewport sidebar, tab "brender", and Output Properties) and jobs.

`draw()` only reads: the scene's settings and `farm.board`, the last jobs list the worker
fetched. Drawing the jobs panel marks the board as seen, which keeps the timer refreshing it.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable

import bpy

from . import farm, jobs, upload, watch

MAX_JOBS_SHOWN = 20
NAMES_MAX_AGE = 60.0  # seconds: older suggestions are fetched again while the panel shows
STATUS_ICONS = {
    "queued": "SORTTIME", "active": "RENDER_ANIMATION", "paused": "PAUSE",
    "completed": "CHECKMARK", "failed": "ERROR", "canceled": "CANCEL",
}  # fmt: skip


def draw_submit(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    scene = context.scene
    if scene is None:
        return
    group = scene.brender  # type: ignore[attr-defined]
    now = time.monotonic()
    if now - farm.board.refreshed_at > NAMES_MAX_AGE:
        farm.board.seen(now)  # the timer fetches the farm's names for the suggestions
    layout.use_property_split = True
    layout.use_property_decorate = False
    if not bpy.data.filepath:
        layout.label(text="Save the file to send it to the farm", icon="INFO")

    col = layout.column(align=True)
    col.prop(group, "project")
    col.prop(group, "sequence")
    col.prop(group, "shot")
    layout.prop(group, "job_name")

    col = layout.column()
    col.prop(group, "use_scene_range")
    sub = col.column(align=True)
    frames = scene if group.use_scene_range else group
    sub.prop(frames, "frame_start", text="Frame Start")
    sub.prop(frames, "frame_end", text="End")
    col.prop(group, "chunk_size")
    col.prop(group, "priority", slider=True)

    col = layout.column()
    col.prop(group, "use_scene_output")
    if group.use_scene_output:
        col.prop(scene.render, "filepath", text="Output")
        col.prop(scene.render.image_settings, "file_format", text="Format")
    else:
        col.prop(group, "output")
        col.prop(group, "file_format")
    col.prop(group, "paused")
    col = layout.column()
    col.prop(group, "use_upload")
    if group.use_upload:  # the output's folder is where Download Frames puts them
        col.label(text="Frames come back to the farm: Download Frames", icon="INFO")
    else:
        col.label(text="Nodes open this path: shared storage", icon="NETWORK_DRIVE")

    row = layout.row()
    row.scale_y = 1.4
    row.operator("brender.submit_job", icon="EXPORT")
    news = farm.latest(upload.Progress)
    if news is not None:  # a pack, upload or download on its way (the worker's news)
        layout.progress(factor=news.fraction, text=news.text)
    held = farm.board.held_for(bpy.data.filepath)
    if held:  # the last submit found no node that can render this file
        box = layout.box()
        wrapped(box.column(align=True), held, "ERROR")
        box.operator("brender.submit_job", text="Submit Anyway", icon="EXPORT").anyway = True


def wrapped(col: bpy.types.UILayout, text: str, icon: str, width: int = 40) -> None:
    """A long message as lines of a column; the icon on the first."""
    for i, line in enumerate(textwrap.wrap(text, width)):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")  # type: ignore[arg-type]


class BRENDER_PT_submit(bpy.types.Panel):
    bl_label = "Submit to Farm"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "brender"

    def draw(self, context: bpy.types.Context) -> None:
        assert self.layout is not None
        draw_submit(self.layout, context)


class BRENDER_PT_output_submit(bpy.types.Panel):
    bl_label = "brender Render Farm"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "output"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        assert self.layout is not None
        draw_submit(self.layout, context)


def _job_button(row: bpy.types.UILayout, job: jobs.JobView, action: str, icon: str) -> None:
    props = row.operator("brender.job_action", text=action.title(), icon=icon)  # type: ignore[arg-type]
    props.job_id = job.id
    props.action = action


def draw_job(layout: bpy.types.UILayout, job: jobs.JobView) -> None:
    box = layout.box()
    row = box.row()
    row.label(text=f"{job.id}  {job.name}", icon=STATUS_ICONS.get(job.status, "QUESTION"))  # type: ignore[arg-type]
    row.label(text=job.status.title())
    where = " / ".join(p for p in (job.project, job.sequence, job.shot) if p)
    box.label(text=f"{where}   frames {job.frame_start}-{job.frame_end}")
    if job.blender_text:
        box.label(text=job.blender_text, icon="BLENDER")
    box.progress(factor=job.progress, text=job.progress_text)
    if job.waiting:
        wrapped(box.column(align=True), f"Waiting: {job.waiting}", "TIME", 60)
    if job.error:
        box.label(text=job.error[:120], icon="ERROR")
    row = box.row(align=True)
    if job.can_pause:
        _job_button(row, job, "pause", "PAUSE")
    if job.can_resume:
        _job_button(row, job, "resume", "PLAY")
    if job.can_cancel:
        _job_button(row, job, "cancel", "CANCEL")
    # Frames back from the farm: a line of its own (the ETA work edits the lines above).
    if job.done:
        props = box.operator("brender.download_frames", text="Download Frames", icon="IMPORT")
        props.job_id = job.id


def draw_notice(layout: bpy.types.UILayout, notice: watch.Notice) -> None:
    """The last job of this Blender's that ended, with its folder and last frame a click away."""
    box = layout.box()
    wrapped(box.column(align=True), notice.text, "CHECKMARK" if notice.ok else "ERROR", 60)
    row = box.row(align=True)
    row.operator(
        "brender.open_folder", text="Open Folder", icon="FILE_FOLDER"
    ).job_id = notice.job_id
    row.operator(
        "brender.open_last_frame", text="Last Frame", icon="IMAGE_DATA"
    ).job_id = notice.job_id


class BRENDER_PT_jobs(bpy.types.Panel):
    bl_label = "Farm Jobs"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "brender"

    def draw(self, context: bpy.types.Context) -> None:
        board = farm.board
        board.seen(time.monotonic())
        layout = self.layout
        assert layout is not None
        row = layout.row()
        row.label(text=board.address or "The farm", icon="NETWORK_DRIVE")
        row.operator("brender.refresh_jobs", text="", icon="FILE_REFRESH")
        if board.error:
            wrapped(layout.box().column(align=True), board.error, "ERROR")
        if farm.mine.notices:
            draw_notice(layout, farm.mine.notices[0])
        shown = board.snapshot.jobs[:MAX_JOBS_SHOWN]
        if not shown:
            pending = board.refreshed_at == float("-inf")
            layout.label(text="Asking the farm…" if pending else "No jobs on the farm yet")
            return
        mine = [j for j in shown if jobs.same_file(j.blend_file, bpy.data.filepath)]
        others = [j for j in shown if j not in mine]
        for title, group in (("This file", mine), ("Other jobs", others)):
            if group:
                layout.label(text=title)
                for job in group:
                    draw_job(layout, job)


classes = (BRENDER_PT_submit, BRENDER_PT_output_submit, BRENDER_PT_jobs)
# The stubs say the factory returns None; it returns (register, unregister).
register: Callable[[], None]
unregister: Callable[[], None]
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
