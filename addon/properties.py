"""The submit panel's settings, stored on the scene (`scene.brender`).

Project, sequence and shot show a name guessed from the file and the scene until the artist
types one; the farm's existing names are offered as suggestions from the last refresh. No
callback here does any I/O: the suggestions come from `farm.board`, filled by the worker.
"""

# mypy: disable-error-code="valid-type"
# (Blender property annotations are deferred property definitions, not types.)

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, PointerProperty, StringProperty

from . import farm, payload

FORMAT_ITEMS = [(f, f.replace("_", " ").title().replace("Open Exr", "OpenEXR"), "")
                for f in payload.IMAGE_FORMATS]  # fmt: skip


def guessed(group: BRENDER_PG_submit) -> payload.Names:
    scene = group.id_data
    return payload.default_names(bpy.data.filepath, getattr(scene, "name", ""))


def _name_property(key: str, label: str, suggest: Callable[[BRENDER_PG_submit], Iterable[str]],
                   ) -> Any:  # fmt: skip
    """A name that reads as the guess until set; an empty value goes back to the guess."""

    def get(self: BRENDER_PG_submit) -> str:
        return str(self.get(key, "")) or getattr(guessed(self), key)

    def set_(self: BRENDER_PG_submit, value: str) -> None:
        self[key] = "" if value == getattr(guessed(self), key) else value.strip()

    def search(self: BRENDER_PG_submit, _context: bpy.types.Context, text: str) -> list[str]:
        names = list(suggest(self))
        if text == get(self):  # the field was just opened: offer every name
            return names
        return [n for n in names if text.lower() in n.lower()]

    return StringProperty(
        name=label,
        description=f"The farm's {label.lower()} (created when new); empty: guessed from the file",
        get=get,
        set=set_,
        search=search,
        search_options={"SUGGESTION", "SORT"},
    )


def _copy_scene_range(self: BRENDER_PG_submit, context: bpy.types.Context) -> None:
    scene = self.id_data
    if not self.use_scene_range and isinstance(scene, bpy.types.Scene):
        self.frame_start, self.frame_end = scene.frame_start, scene.frame_end


def _copy_scene_output(self: BRENDER_PG_submit, context: bpy.types.Context) -> None:
    scene = self.id_data
    if not self.use_scene_output and isinstance(scene, bpy.types.Scene):
        self.output = scene.render.filepath
        fmt = scene.render.image_settings.file_format
        self.file_format = fmt if fmt in payload.IMAGE_FORMATS else "PNG"


class BRENDER_PG_submit(bpy.types.PropertyGroup):
    project: _name_property("project", "Project", lambda pg: farm.board.snapshot.names.projects)
    sequence: _name_property(
        "sequence", "Sequence", lambda pg: farm.board.snapshot.names.sequences_of(pg.project)
    )
    shot: _name_property(
        "shot", "Shot", lambda pg: farm.board.snapshot.names.shots_of(pg.project, pg.sequence)
    )
    job_name: StringProperty(
        name="Job name", description="Empty: the job is named after the .blend file"
    )
    use_scene_range: BoolProperty(
        name="Scene frame range", default=True, update=_copy_scene_range,
        description="Render the scene's frame range; off: the range below",
    )  # fmt: skip
    frame_start: IntProperty(name="Start", default=1, min=0, max=10_000_000)
    frame_end: IntProperty(name="End", default=250, min=0, max=10_000_000)
    chunk_size: IntProperty(
        name="Chunk size", default=0, min=0, max=100_000,
        description="Frames per task sent to one node; 0: the farm sizes each task by its nodes",
    )  # fmt: skip
    priority: IntProperty(
        name="Priority", default=50, min=0, max=100,
        description="Higher runs first (0-100)",
    )  # fmt: skip
    use_scene_output: BoolProperty(
        name="Scene output", default=True, update=_copy_scene_output,
        description="Write where the scene's Output Properties say, in its file format",
    )  # fmt: skip
    output: StringProperty(
        name="Output", subtype="FILE_PATH",
        description="Blender's output pattern (#### is the frame number); empty: the farm picks",
    )  # fmt: skip
    file_format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="PNG")
    paused: BoolProperty(name="Submit paused", description="The job waits until it is resumed")
    use_upload: BoolProperty(
        name="Send files (no shared storage)", default=True,
        description="Pack the file with the libraries and images it uses and upload what the "
        "farm lacks; frames come back to the farm (Download Frames). Off: every node opens "
        "this same path on shared storage and writes where the output says",
    )  # fmt: skip


def settings(scene: bpy.types.Scene) -> payload.SubmitSettings:
    """The scene and its `scene.brender` as the plain settings `payload` turns into a request."""
    group: BRENDER_PG_submit = scene.brender  # type: ignore[attr-defined]
    image = scene.render.image_settings
    return payload.SubmitSettings(
        blend_file=bpy.data.filepath,
        project=group.project,
        sequence=group.sequence,
        shot=group.shot,
        frame_start=scene.frame_start if group.use_scene_range else group.frame_start,
        frame_end=scene.frame_end if group.use_scene_range else group.frame_end,
        chunk_size=group.chunk_size,
        priority=group.priority,
        output=scene.render.filepath if group.use_scene_output else group.output,
        file_format=image.file_format if group.use_scene_output else group.file_format,
        movie=_movie(scene) if group.use_scene_output else None,
        paused=group.paused,
        job_name=group.job_name,
        # The version that saved the open file (what the farm's nodes must open).
        file_version=".".join(str(n) for n in bpy.data.version[:2]) if bpy.data.filepath else "",
        autoexec=_autoexec(),
    )


def _movie(scene: bpy.types.Scene) -> dict[str, Any] | None:
    """The scene's movie output, as the farm's `movie` (the AVI formats name only the rate)."""
    render = scene.render
    fmt = render.image_settings.file_format
    if fmt not in payload.MOVIE_FORMATS:
        return None
    fps = round(render.fps / render.fps_base, 3)
    ffmpeg = render.ffmpeg
    if fmt != "FFMPEG" or ffmpeg is None:
        return {"fps": fps}
    return {"container": ffmpeg.format, "codec": ffmpeg.codec, "fps": fps}


def _autoexec() -> bool:
    """The artist's "Auto Run Python Scripts" preference."""
    prefs = bpy.context.preferences
    return bool(prefs is not None and prefs.filepaths.use_scripts_auto_execute)


classes = (BRENDER_PG_submit,)
# The stubs say the factory returns None; it returns (register, unregister).
_register: Callable[[], None]
_unregister: Callable[[], None]
_register, _unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]


def register() -> None:
    _register()
    bpy.types.Scene.brender = PointerProperty(type=BRENDER_PG_submit)  # type: ignore[attr-defined, func-returns-value]


def unregister() -> None:
    del bpy.types.Scene.brender  # type: ignore[attr-defined]
    _unregister()
