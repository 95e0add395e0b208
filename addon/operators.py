"""Operators: submit the open file, test the connection, refresh, pause/resume/cancel a job,
download a job's frames.

Each operator prepares its request on the main thread and posts it to the worker thread.
From a button (`invoke`) it then waits as a modal operator, so Blender stays responsive and
the answer lands in the status bar. From a script (`execute`, e.g. `bpy.ops.brender.submit_job()`
in background mode) it waits for the answer, at most the client's timeout, and returns it.
"""

# mypy: disable-error-code="valid-type"
# (Blender property annotations are deferred property definitions, not types.)

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty

from . import comms, download, farm, payload, properties, python_use, upload
from .client import Submitted
from .errors import FarmError

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems

    Result = set[OperatorReturnItems]
else:
    Result = set

NO_ANSWER = "The farm did not answer in time — is brender-server running?"


class FarmOperator(bpy.types.Operator):
    """A request to the farm: `prepare` on the main thread, `done` with the worker's reply."""

    kind = "request"
    _ticket = 0
    _started = 0.0
    _long = False  # a pack, upload or download: waited for while it sends news
    _shown: Any = None
    _timer: bpy.types.Timer | None = None

    def prepare(self, context: bpy.types.Context) -> comms.Task | comms.WithProgress:
        """Read what the request needs from Blender; answer the task the worker runs."""
        raise NotImplementedError

    def done(self, context: bpy.types.Context, data: Any) -> Result | None:
        """Report the answer; None means {"FINISHED"}."""
        raise NotImplementedError

    def _post(self, context: bpy.types.Context) -> bool:
        try:
            task = self.prepare(context)
        except FarmError as exc:
            self.report({"ERROR"}, str(exc))
            return False
        self._long = isinstance(task, comms.WithProgress)
        self._ticket = farm.post(self.kind, task)
        self._started = time.monotonic()
        return True

    def _finish(self, context: bpy.types.Context, reply: comms.Reply | None) -> Result:
        if reply is None:
            self.report({"ERROR"}, NO_ANSWER)
            return {"CANCELLED"}
        if not reply.ok:
            self.report({"ERROR"}, reply.error)
            return {"CANCELLED"}
        return self.done(context, reply.data) or {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> Result:
        if not self._post(context):
            return {"CANCELLED"}
        return self._finish(context, farm.wait(self._ticket, self._long))

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        wm = context.window_manager
        if wm is None or context.window is None:
            return self.execute(context)
        if not self._post(context):
            return {"CANCELLED"}
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        farm.pump()
        reply = farm.take(self._ticket)
        if reply is None and time.monotonic() < farm.deadline(
            self._ticket, self._started, self._long
        ):
            self._show_news(context)
            return {"PASS_THROUGH"}
        if self._timer is not None and context.window_manager is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if self._shown is not None and context.workspace is not None:
            context.workspace.status_text_set(None)
        return self._finish(context, reply)

    def _show_news(self, context: bpy.types.Context) -> None:
        """A long task's progress in the status bar (the panel draws it too)."""
        news = farm.news(self._ticket)
        if news is None or news[1] is self._shown or context.workspace is None:
            return
        self._shown = news[1]
        context.workspace.status_text_set(f"brender: {getattr(news[1], 'text', news[1])}")


def views_one_by_one(scene: bpy.types.Scene) -> bool:
    """Whether the scene renders several views (stereo) and saves each in a file of its own."""
    render = scene.render
    return bool(render.use_multiview and render.image_settings.views_format == "INDIVIDUAL")


class BRENDER_OT_submit_job(FarmOperator):
    """Save the file if needed and send it to the farm as one job"""

    bl_idname = "brender.submit_job"
    bl_label = "Submit to Farm"
    bl_options = {"REGISTER"}
    kind = "submit"
    _file = ""
    _python_note = ""

    anyway: BoolProperty(
        name="Submit Anyway",
        description="Send the job even though no online node can render it now (it waits), "
        "or files it uses are missing (it renders without them)",
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None

    def prepare(self, context: bpy.types.Context) -> comms.Task | comms.WithProgress:
        scene = context.scene
        assert scene is not None
        if not bpy.data.filepath:
            raise FarmError("Save the file first: the farm renders a saved .blend file")
        upload_files = bool(scene.brender.use_upload)  # type: ignore[attr-defined]
        if upload_files and views_one_by_one(scene):
            raise FarmError(
                "This scene saves its stereo views as separate files, and a job that sends its"
                " files brings back one file a frame. In Output Properties > Views choose"
                " 'Stereo 3D', or untick 'Send files' to render on shared storage"
            )
        settings = properties.settings(scene)
        request = payload.submit_request(settings)
        # One per press: were the answer lost and the request sent again, no second job.
        request["values"]["request_id"] = uuid.uuid4().hex
        client, anyway = farm.client(), bool(self.anyway)
        self._file = bpy.data.filepath
        self._python_note = "" if settings.autoexec else python_use.warning(bpy.data)
        if bpy.data.is_dirty:
            try:
                bpy.ops.wm.save_mainfile()
            except RuntimeError as exc:
                raise FarmError(f"The file was not sent: saving it failed ({exc})") from exc
        if upload_files:
            blend = self._file  # packing can take a while: on the worker, with news
            return comms.WithProgress(
                lambda notify: upload.submit_with_files(client, request, blend, anyway, notify)
            )
        return lambda: client.submit_checked(request, anyway)

    def done(self, context: bpy.types.Context, data: Any) -> Result | None:
        assert isinstance(data, Submitted)
        if data.job is None:  # nodes are online, none can render it: the artist decides
            farm.board.hold(self._file, data.warning)
            self.report({"WARNING"}, f"Not submitted: {data.warning} Or press Submit Anyway.")
            return {"CANCELLED"}
        farm.board.hold(self._file, "")
        job = data.job
        farm.mine.submitted(job)  # the artist hears when it ends
        frames = job.get("frames", {}).get("total", "?")
        state = " (paused)" if job.get("status") == "paused" else ""
        said = f"Farm job {job['id']} submitted{state}: {frames} frames"
        left_out = f"Left out {len(data.missing)} missing file(s)." if data.missing else ""
        notes = [n for n in (data.note, left_out, data.warning, self._python_note) if n]
        self.report(
            {"WARNING"} if notes else {"INFO"}, " ".join([f"{said}.", *notes]) if notes else said
        )
        return None


class BRENDER_OT_test_connection(FarmOperator):
    """Ask the farm in the preferences how it is"""

    bl_idname = "brender.test_connection"
    bl_label = "Test Connection"
    kind = "status"

    def prepare(self, context: bpy.types.Context) -> comms.Task | comms.WithProgress:
        client = farm.client()
        self._address = client.address
        return client.status

    def done(self, context: bpy.types.Context, data: Any) -> None:
        clients = data.get("clients", {}) if isinstance(data.get("clients"), dict) else {}
        self.report(
            {"INFO"},
            f"Connected to brender {data.get('version', '?')} at {self._address}: "
            f"{clients.get('online', 0)} of {clients.get('total', 0)} nodes online",
        )


class BRENDER_OT_refresh_jobs(bpy.types.Operator):
    """Fetch the farm's jobs now"""

    bl_idname = "brender.refresh_jobs"
    bl_label = "Refresh Jobs"

    def execute(self, context: bpy.types.Context) -> Result:
        ticket = farm.refresh()
        if ticket and not bpy.app.background:
            return {"FINISHED"}  # the timer brings the answer to the panel
        # No timer runs in background mode: wait here, as a script expects.
        if ticket and not farm.wait_until(lambda: farm.board.pending != ticket):
            self.report({"ERROR"}, NO_ANSWER)
            return {"CANCELLED"}
        if farm.board.error:
            self.report({"ERROR"}, farm.board.error)
            return {"CANCELLED"}
        return {"FINISHED"}


class BRENDER_OT_job_action(FarmOperator):
    """Pause, resume or cancel this job on the farm"""

    bl_idname = "brender.job_action"
    bl_label = "Job Action"
    kind = "job"

    job_id: IntProperty(name="Job", min=1)
    action: EnumProperty(
        name="Action",
        items=[
            ("pause", "Pause", "Send no more of its frames to nodes"),
            ("resume", "Resume", "Go on rendering it"),
            ("cancel", "Cancel", "Stop rendering it for good"),
        ],
    )

    @classmethod
    def description(cls, context: bpy.types.Context, props: Any) -> str:
        texts = {"pause": "Pause job %d: running frames finish, no new ones start",
                 "resume": "Resume job %d", "cancel": "Cancel job %d: stop its renders now"}  # fmt: skip
        return texts.get(str(props.action), "%d") % int(props.job_id)

    def prepare(self, context: bpy.types.Context) -> comms.Task | comms.WithProgress:
        client, job_id, action = farm.client(), self.job_id, self.action
        return lambda: client.job_verb(job_id, action)

    def done(self, context: bpy.types.Context, data: Any) -> None:
        done = {"pause": "paused", "resume": "resumed", "cancel": "canceled"}[self.action]
        self.report({"INFO"}, f"Farm job {self.job_id} {done}")


class BRENDER_OT_download_frames(FarmOperator):
    """Download this job's finished frames into the scene's output folder (only those missing
    or changed there)"""

    bl_idname = "brender.download_frames"
    bl_label = "Download Frames"
    kind = "download"

    job_id: IntProperty(name="Job", min=1)

    def prepare(self, context: bpy.types.Context) -> comms.Task | comms.WithProgress:
        scene = context.scene
        assert scene is not None
        folder = payload.output_folder(scene.render.filepath, bpy.data.filepath)
        client, job_id = farm.client(), int(self.job_id)
        return comms.WithProgress(
            lambda notify: download.fetch_frames(client, job_id, folder, notify)
        )

    def done(self, context: bpy.types.Context, data: Any) -> None:
        assert isinstance(data, download.Fetched)
        self.report(
            {"INFO"},
            f"Farm job {data.job_id}: {data.fetched} frame(s) downloaded "
            f"({upload.human(data.size)}), {data.kept} already there, into {data.folder}",
        )


classes = (
    BRENDER_OT_submit_job,
    BRENDER_OT_test_connection,
    BRENDER_OT_refresh_jobs,
    BRENDER_OT_job_action,
    BRENDER_OT_download_frames,
)
# The stubs say the factory returns None; it returns (register, unregister).
register: Callable[[], None]
unregister: Callable[[], None]
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
