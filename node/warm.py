"""The warm runner: one long-lived Blender per file, fed chunk after chunk.

`WarmRunner` implements `brender.node.chunk.Runner`. For a chunk it starts (or keeps) one
Blender with the job's file loaded and the control script `warm_blender.py` running in it,
writes the chunk's order on its stdin and reads its output as the cold runner reads a
`blender -b`'s: Blender's own `Fra:`/`Saved:`/`Time:`/`Error:` lines go to the same parser,
so frame reports, render times, the log tail and the silence (hang) timeout work unchanged;
the script's marked lines (`warm_protocol`) say when the file is loaded and the order done.

The Blender stays for the next chunk when it has the same file (unchanged on disk), Blender
and auto-exec; it is stopped after an idle timeout, when its process tree's memory passes the
limit, and after any chunk that did not end well (canceled, hung, crashed, failed): the next
chunk gets a fresh one. It dies with the node (PDEATHSIG). When it cannot start (the control
script fails before the file is ready: an old Blender, a broken script), the job is rendered
by the cold `BlenderRunner` on this node from then on, which the node says once.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from brender.node import warm_protocol
from brender.node.blender_log import Event, FrameSaved, LogTracker
from brender.node.chunk import ChunkResult, EventCallback, RenderOrder
from brender.node.engines import Engine
from brender.node.runner import (
    LOG_TAIL_LINES,
    BlenderRunner,
    check_output,
    chunk_result,
    describe_exit,
    saved_check,
    short,
)
from brender.node.spawn import spawn
from brender.node.warm_process import WarmBlender, WarmKey, file_stamp

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).with_name("warm_blender.py")
DEFAULT_IDLE = 60.0
"""Seconds a warm Blender waits for the next chunk before the node stops it."""

DEFAULT_MEMORY_SHARE = 0.75
"""Without --warm-memory, a warm Blender over this share of the machine's memory is stopped."""


@dataclass(frozen=True)
class StartFailed:
    """The warm Blender ended before it said its file was ready."""

    reason: str


class WarmRunner:
    """Renders chunks in a warm Blender per file; `cold` renders what cannot go warm."""

    def __init__(
        self,
        cold: BlenderRunner,
        *,
        idle_timeout: float | None = DEFAULT_IDLE,
        memory_limit: int | None = None,
        script: Path = SCRIPT,
    ) -> None:
        self.cold = cold
        self.idle_timeout = idle_timeout
        self.memory_limit = memory_limit
        """Bytes of resident memory (the Blender's whole process tree) above which a warm
        Blender is stopped after its chunk; None: no limit."""
        self.script = script
        self.starts = 0
        """Warm Blenders started so far."""
        self._warm: WarmBlender | None = None
        self._current: WarmBlender | None = None
        self._cold_jobs: set[int | str] = set()
        self._in_cold = False
        self._busy = False
        self._canceled = False
        self._hung = False
        self._idle: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def command(self, order: RenderOrder, engine: Engine | None) -> list[str]:
        """The warm Blender's command line for this order's file (no frames: those are
        orders). Auto-exec is explicit before the file, as for a cold Blender."""
        autoexec = order.autoexec and self.cold.allow_autoexec
        flag = "-y" if autoexec else "--disable-autoexec"
        threads = [] if self.cold.threads is None else ["-t", str(self.cold.threads)]
        if engine is not None and engine.kind == "bpy":
            module = [sys.executable, "-P", "-m", "brender.node.warm_blender"]
            return [*module, flag, *threads, order.blend_file]
        blender = engine.path if engine is not None else self.cold.blender
        script = ["--python-exit-code", "1", "--python", str(self.script)]
        return [blender, "-b", flag, order.blend_file, *threads, *script]

    def cancel(self) -> None:
        """Kill the chunk's Blender (warm: its process group at once; cold: as it does)."""
        self._canceled = True
        if self._in_cold:
            self.cold.cancel()
        elif self._current is not None:
            self._current.kill()

    async def run(self, order: RenderOrder, on_event: EventCallback) -> ChunkResult:
        if self._busy:
            raise RuntimeError("WarmRunner runs one chunk at a time")
        self._busy = True
        self._stop_idle_timer()
        try:
            return await self._run(order, on_event)
        finally:
            self._busy = self._canceled = self._hung = False
            self._current = None
            self._start_idle_timer()

    async def close(self) -> None:
        """Stop the warm Blender, if any (the node is stopping)."""
        self._stop_idle_timer()
        blender, self._warm = self._warm, None
        if blender is not None:
            log.info("warm Blender %d: stopping with the node", blender.number)
            await blender.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _run(self, order: RenderOrder, on_event: EventCallback) -> ChunkResult:
        if self._canceled:
            return ChunkResult(False, None, canceled=True, error="canceled")
        job = order.job_id if order.job_id is not None else order.blend_file
        if job in self._cold_jobs:
            return await self._run_cold(order, on_event)
        engine = self.cold.engine(order)
        key = WarmKey(tuple(self.command(order, engine)), file_stamp(order.blend_file))
        blender = await self._reuse(key)
        if blender is None:
            try:
                blender = await self._start(key, order)
            except OSError as exc:
                return await self._fall_back(order, on_event, job, exc.strerror or str(exc))
        self._current = blender
        if self._canceled:  # canceled while we were starting it
            blender.kill()
        try:
            outcome = await self._render(blender, order, on_event)
        except BaseException:  # we were cancelled ourselves: leave nothing behind
            blender.kill()
            raise
        if isinstance(outcome, StartFailed):
            await blender.close()
            return await self._fall_back(order, on_event, job, outcome.reason)
        if outcome.ok and not blender.ended:
            self._keep(blender)
        else:
            if not blender.ended:
                log.info("warm Blender %d: stopping it after a failed chunk", blender.number)
            await blender.close()
        return outcome

    async def _reuse(self, key: WarmKey) -> WarmBlender | None:
        """The warm Blender if it may render for `key`; else stop it (saying why)."""
        blender, self._warm = self._warm, None
        if blender is None:
            return None
        if not blender.idle_lines():
            why = "it exited while idle"
        elif blender.key.command != key.command:
            why = "the chunk is of another file, Blender or auto-exec"
        elif key.stamp is None or blender.key.stamp != key.stamp:
            why = "the file changed on disk"
        else:
            log.info("warm Blender %d: reused", blender.number)
            return blender
        log.info("warm Blender %d: replaced (%s)", blender.number, why)
        await blender.close()
        return None

    async def _start(self, key: WarmKey, order: RenderOrder) -> WarmBlender:
        proc = await spawn(key.command, self.cold.cwd, stdin=asyncio.subprocess.PIPE)
        self.starts += 1
        log.info(
            "warm Blender %d started (pid %d) for %s: %s",
            self.starts,
            proc.pid,
            order.blend_file,
            shlex.join(key.command),
        )
        return WarmBlender(proc, key, self.starts)

    def _keep(self, blender: WarmBlender) -> None:
        rss = blender.rss()
        if self.memory_limit is not None and rss > self.memory_limit:
            log.info(
                "warm Blender %d: uses %d MB, over the limit of %d MB: stopping it",
                blender.number,
                rss >> 20,
                self.memory_limit >> 20,
            )
            self._close_later(blender)
            return
        self._warm = blender

    async def _render(
        self, blender: WarmBlender, order: RenderOrder, on_event: EventCallback
    ) -> ChunkResult | StartFailed:
        silence = order.timeout if order.timeout is not None else self.cold.silence_timeout
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        tracker = LogTracker(order.frames, start=time.monotonic(), check=saved_check(order))
        done: list[int] = []
        problems: list[str] = []

        def handle(events: list[Event]) -> None:
            for event in events:
                if isinstance(event, FrameSaved):
                    problem = check_output(event.path, self.cold.cwd)
                    if problem:
                        log.warning("chunk %d frame %d: %s", order.chunk_id, event.frame, problem)
                        problems.append(problem)
                        continue
                    done.append(event.frame)
                on_event(event)

        blender.send(warm_protocol.Order(order.chunk_id, order.frames, order.output, order.format))
        finished = False
        while not finished:
            timeout = None if self._hung or self._canceled else silence
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that
                # comes as the line does, and this loop would then never stop.
                async with asyncio.timeout(timeout):
                    line = await blender.lines.get()
            except TimeoutError:
                log.warning("Blender printed nothing for %g s: killing it", timeout)
                self._hung = True
                blender.kill()
                continue
            if line is None:
                blender.ended = True
                break
            try:
                finished = self._line(blender, order, line, tail, tracker, handle)
            except warm_protocol.ProtocolError as exc:
                log.warning("warm Blender %d: %s; killing it", blender.number, exc)
                problems.append(str(exc))
                blender.kill()
            except Exception:  # a failing report must not stop the reading
                log.exception("handling Blender's line %r failed", line[:200])
        handle(tracker.finish(time.monotonic()))
        exit_code = 0 if finished else await blender.exit_code()
        started = finished or blender.ready or self._canceled or self._hung
        # A file Blender cannot read fails as it would cold; anything else is ours.
        if not started and tracker.fatal_error is None:
            first = tracker.first_error
            return StartFailed(short(first) if first else describe_exit(exit_code))
        return chunk_result(
            order,
            exit_code,
            done,
            tracker,
            problems,
            list(tail),
            canceled=self._canceled,
            hung=self._hung,
            silence=silence,
        )

    @staticmethod
    def _line(
        blender: WarmBlender,
        order: RenderOrder,
        line: str,
        tail: deque[str],
        tracker: LogTracker,
        handle: Callable[[list[Event]], None],
    ) -> bool:
        """One output line during a chunk; True when it ends the chunk."""
        reply = warm_protocol.parse_reply(line)
        if reply is None:
            log.debug("blender: %s", line)
            tail.append(short(line))
            handle(tracker.feed(line, time.monotonic()))
        elif isinstance(reply, warm_protocol.Ready):
            blender.ready = True
            log.info(
                "warm Blender %d: %s loaded (Blender %s)", blender.number, reply.file, reply.version
            )
        elif isinstance(reply, warm_protocol.Done):
            return reply.chunk_id == order.chunk_id
        return False

    async def _fall_back(
        self, order: RenderOrder, on_event: EventCallback, job: int | str, reason: str
    ) -> ChunkResult:
        self._cold_jobs.add(job)
        note = (
            f"the warm Blender could not start ({reason}); this node renders the job with a"
            " Blender per chunk"
        )
        log.warning("job %s: %s", job, note)
        result = await self._run_cold(order, on_event)
        result.log_tail.insert(0, f"brender-node: {note}")
        result.note = note
        return result

    async def _run_cold(self, order: RenderOrder, on_event: EventCallback) -> ChunkResult:
        if self._canceled:
            return ChunkResult(False, None, canceled=True, error="canceled")
        self._in_cold = True
        try:
            return await self.cold.run(order, on_event)
        finally:
            self._in_cold = False

    def _start_idle_timer(self) -> None:
        if self._warm is not None and self.idle_timeout is not None:
            loop = asyncio.get_running_loop()
            self._idle = loop.call_later(self.idle_timeout, self._idle_out)

    def _stop_idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_out(self) -> None:
        self._idle = None
        blender, self._warm = self._warm, None
        if blender is not None:
            log.info(
                "warm Blender %d: idle for %g s: stopping it", blender.number, self.idle_timeout
            )
            self._close_later(blender)

    def _close_later(self, blender: WarmBlender) -> None:
        task = asyncio.create_task(blender.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
