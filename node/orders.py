"""What the node does with each order from the master: render, cancel, system."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

from brender import blendfile, messages, roots
from brender.messages import Message
from brender.node import sysinfo
from brender.node.blender_log import Event, FrameProgress, FrameSaved, ProgressThrottle
from brender.node.chunk import ChunkResult, RenderOrder, Runner, is_contiguous
from brender.node.engines import Engine
from brender.node.errors import NodeError
from brender.node.outbox import Report
from brender.paths import path_problem

log = logging.getLogger(__name__)


class Outlet(Protocol):
    """Where responses go (the `Connection`)."""

    def send(self, message: Message) -> None: ...

    def queue(self, message: Report) -> None: ...


def parse_render(raw: dict[str, Any]) -> RenderOrder:
    """A `render` order's JSON as a `RenderOrder`; NodeError naming the first bad field."""
    try:
        return order_of(messages.Render.parse(raw))
    except messages.MessageError as exc:
        raise NodeError(str(exc)) from None


def order_of(render: messages.Render) -> RenderOrder:
    return RenderOrder(
        chunk_id=render.chunk_id,
        blend_file=render.blend_file,
        frames=render.frames,
        output=render.output,
        format=render.format,
        job_id=render.job_id,
        timeout=render.timeout,
        blender=render.blender,
        autoexec=render.autoexec,
        manifest=render.manifest,
        upload_key=render.upload_key,
    )


class OrderHandler:
    """Runs one chunk at a time and answers the master's orders."""

    def __init__(
        self,
        outlet: Outlet,
        runner: Runner,
        blender_version: str,
        engines: Sequence[Engine] = (),
        allow_autoexec: bool = False,
        roots: tuple[Sequence[str], bool] | None = None,
    ) -> None:
        self._outlet = outlet
        self._roots = roots
        """(folders it may write under, and whether beside a job's .blend too); None: anywhere."""
        self._runner = runner
        self._blender_version = blender_version
        self._engines = list(engines)
        self._allow_autoexec = allow_autoexec
        self._order: RenderOrder | None = None
        self._task: asyncio.Task[None] | None = None
        self._shutting_down = False

    @property
    def chunk_id(self) -> int | None:
        """The chunk being rendered, or None when idle."""
        return self._order.chunk_id if self._order is not None else None

    def handle(self, message: Message) -> None:
        if isinstance(message, messages.Render):
            self._render(message)
        elif isinstance(message, messages.Cancel):
            self._cancel(message)
        elif isinstance(message, messages.SystemRequest):
            self._system(message)
        else:
            log.warning("ignoring an order of type %r", message.TYPE)

    def _render(self, message: messages.Render) -> None:
        chunk_id = message.chunk_id
        if self._order is not None and chunk_id == self._order.chunk_id:
            # The master sent this chunk again (e.g. after a reconnect): we are on it already,
            # and "rejected" would make it requeue the chunk we are rendering.
            log.info("chunk %s: already rendering it", chunk_id)
            return
        if self._order is not None:
            reason = f"busy with chunk {self._order.chunk_id}"
            log.info("rejecting chunk %s: %s", chunk_id, reason)
            self._outlet.send(messages.Rejected(chunk_id, reason))
            return
        if self._shutting_down:
            self._outlet.send(messages.Rejected(chunk_id, "the node is shutting down"))
            return
        order = order_of(message)
        refusal = self._refusal(order)
        if refusal is not None:
            log.warning("rejecting chunk %s: %s", chunk_id, refusal.reason)
            self._outlet.send(refusal)
            return
        log.info("chunk %d: frames %s of %s", order.chunk_id, _frames(order), order.blend_file)
        self._order = order
        self._task = asyncio.create_task(self._run(order), name=f"chunk-{order.chunk_id}")

    def _refusal(self, order: RenderOrder) -> messages.Rejected | None:
        """Why this node must not start Blender on the order, if it must not: a job that runs
        the file's Python on a node that does not allow it, or a file none of the Blenders the
        order may use can open (it would crash, or render it wrongly)."""
        inside = order.uploaded  # paths in the job's tree (packed.py)
        for what, path in (("blend_file", order.blend_file), ("output", order.output or "")):
            if path and (problem := path_problem(path, absolute=not inside)) is not None:
                return messages.Rejected(order.chunk_id, f"the order's {what} {problem}")
        if not inside and order.output and self._roots is not None:
            allowed, beside = self._roots
            outside = roots.refusal(
                order.output, order.blend_file, allowed, beside, order.frames[0]
            )
            if outside is not None:
                return messages.Rejected(order.chunk_id, outside, outside_roots=True)
        if order.autoexec and not self._allow_autoexec:
            return messages.Rejected(
                order.chunk_id,
                "this node does not run files' Python scripts (start it with --allow-autoexec)",
            )
        if not self._engines or not os.path.isfile(order.blend_file):
            return None
        try:
            saved = blendfile.read_version(order.blend_file).series
        except blendfile.BlendFileError:
            return None  # Blender says what is wrong with it, in the chunk's log
        named = [e for e in self._engines if e.version == order.blender] or self._engines
        usable = [e for e in named if _opens(e.version, saved)]
        if usable:
            return None
        have = ", ".join(e.version for e in named)
        return messages.Rejected(
            order.chunk_id,
            f"cannot open a file saved by Blender {saved}: this node has {have}",
            file_version=str(saved),
        )

    async def _run(self, order: RenderOrder) -> None:
        throttle = ProgressThrottle()

        def progress(event: FrameProgress) -> None:
            sent = throttle.offer(event, time.monotonic())
            if sent is not None:
                self._outlet.send(
                    messages.Progress(
                        order.chunk_id,
                        sent.frame,
                        sent.phase,
                        sent.samples,
                        sent.total,
                        sent.remaining,
                    )
                )

        def on_event(event: Event) -> None:
            if isinstance(event, FrameProgress):
                progress(event)
            elif isinstance(event, FrameSaved):
                log.info(
                    "chunk %d: frame %d saved to %s in %.2f s",
                    order.chunk_id,
                    event.frame,
                    event.path,
                    event.render_time,
                )
                self._outlet.queue(
                    messages.FrameDone(order.chunk_id, event.frame, event.path, event.render_time)
                )

        try:
            result = await self._runner.run(order, on_event)
        except Exception as exc:
            log.exception("chunk %d: the runner failed", order.chunk_id)
            result = ChunkResult(False, None, error=f"the node failed to run Blender: {exc}")
        finally:
            self._order = self._task = None
        if self._shutting_down:
            # Say nothing: the master requeues the unfinished frames when we disconnect, and
            # "canceled" would wrongly tell it someone canceled the chunk.
            log.info("chunk %d: stopped because the node is shutting down", order.chunk_id)
            return
        if result.ok:
            log.info("chunk %d done: frames %s", order.chunk_id, _frames(order))
        self._outlet.queue(
            messages.ChunkDone(
                chunk_id=order.chunk_id,
                ok=result.ok,
                exit_code=result.exit_code,
                canceled=result.canceled,
                frames_done=tuple(result.frames_done),
                error=result.error,
                log_tail=tuple(result.log_tail) if not result.ok else _noted(result),
            )
        )

    def _cancel(self, message: messages.Cancel) -> None:
        chunk_id = message.chunk_id
        if self._order is None or chunk_id != self._order.chunk_id:
            log.info("ignoring cancel of chunk %s: not running it", chunk_id)
            return
        log.info("chunk %s: canceled by the master", chunk_id)
        self._runner.cancel()

    def _system(self, message: messages.SystemRequest) -> None:
        command, request = message.command, message.request
        if command == "mac_address":
            data: dict[str, Any] = {"mac_address": sysinfo.mac_address()}
        elif command == "memory":
            data = sysinfo.memory()
        elif command == "info":
            data = sysinfo.info(self._blender_version, self.chunk_id)
        else:
            error = f"unknown system command {command!r}"
            self._outlet.send(messages.SystemReply(command, request, None, error))
            return
        self._outlet.send(messages.SystemReply(command, request, data))

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop taking orders and kill the running Blender, if any."""
        self._shutting_down = True
        task = self._task
        if task is None:
            return
        self._runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(task)
        if not task.done():
            task.cancel()  # the runner's own cleanup SIGKILLs the process group
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _noted(result: ChunkResult) -> tuple[str, ...]:
    """A good chunk's log tail: empty, or the node's note about how it ran it."""
    return (f"brender-node: {result.note}",) if result.note else ()


def _frames(order: RenderOrder) -> str:
    frames = order.frames
    if len(frames) > 1 and is_contiguous(frames):
        return f"{frames[0]}-{frames[-1]}"
    return ",".join(str(f) for f in frames)


def _opens(version: str, saved: blendfile.Version) -> bool:
    try:
        return blendfile.can_open(blendfile.Version.parse(version), saved)
    except ValueError:
        return True  # a version we cannot read: let Blender try
