"""The Blender process runner: run these frames of this file, tell me as each one is saved.

`BlenderRunner` starts one `blender -b` per chunk in its own process group. It is the one
replaceable piece of the node (see `brender.node.chunk.Runner`): a warm-Blender runner that
keeps a file loaded can take its place without the rest of the node noticing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from brender import framepath
from brender.node.blender_log import MAX_REFUSED, Event, FrameSaved, LineSplitter, LogTracker
from brender.node.chunk import ChunkResult, EventCallback, RenderOrder, is_contiguous
from brender.node.engines import Engine
from brender.node.spawn import READ_SIZE, spawn

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 50
MAX_TAIL_LINE = 2000
"""Characters kept of one log-tail line, so a `chunk_done` always fits in one wire line."""


def build_command(
    blender: str | Sequence[str],
    order: RenderOrder,
    threads: int | None = None,
    *,
    background: bool = True,
    autoexec: bool = False,
) -> list[str]:
    """The `blender -b` command line for an order (see docs/protocol.md). `blender` is the
    executable, or the start of a command (the `bpy` engine's child Python, which takes the
    same arguments without `-b`). Auto-exec is always explicit, before the file is loaded."""
    cmd = [blender] if isinstance(blender, str) else list(blender)
    if background:
        cmd.append("-b")
    cmd += ["-y" if autoexec else "--disable-autoexec", order.blend_file]
    if order.output:
        cmd += ["-o", order.output]
    if order.format:
        cmd += ["-F", order.format]
    cmd += ["-x", "1", "-j", "1"]  # -j 1: every frame, whatever the scene's frame step
    if threads is not None:
        cmd += ["-t", str(threads)]
    frames = order.frames
    if is_contiguous(frames):
        cmd += ["-s", str(frames[0]), "-e", str(frames[-1]), "-a"]
    else:
        cmd += ["-f", ",".join(str(f) for f in frames)]
    return cmd


def short(line: str) -> str:
    return line if len(line) <= MAX_TAIL_LINE else line[:MAX_TAIL_LINE] + "…"


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"Blender was killed by {name}"
    return f"Blender exited with code {code}"


class BlenderRunner:
    """Runs `blender -b` for one chunk at a time, in its own process group."""

    def __init__(
        self,
        blender: str,
        *,
        threads: int | None = None,
        cwd: Path | None = None,
        silence_timeout: float | None = None,
        kill_grace: float = 2.0,
        engines: Sequence[Engine] = (),
        allow_autoexec: bool = False,
    ) -> None:
        self.blender = blender
        self.engines = list(engines)
        """The node's Blenders: an order runs with the one whose version it names."""
        self.allow_autoexec = allow_autoexec
        self.threads = threads
        self.cwd = cwd
        self.silence_timeout = silence_timeout
        self.kill_grace = kill_grace
        self._proc: asyncio.subprocess.Process | None = None
        self._busy = False
        self._canceled = False
        self._hung = False
        self._silence: float | None = None
        self._killer: asyncio.Task[None] | None = None

    def engine(self, order: RenderOrder) -> Engine | None:
        """The Blender this order names (`blender`), else the node's first one."""
        for engine in self.engines:
            if engine.version == order.blender:
                return engine
        return self.engines[0] if self.engines else None

    def command(self, order: RenderOrder) -> list[str]:
        autoexec = order.autoexec and self.allow_autoexec
        engine = self.engine(order)
        if engine is None:
            return build_command(self.blender, order, self.threads, autoexec=autoexec)
        return build_command(
            engine.command(),
            order,
            self.threads,
            background=engine.kind == "binary",
            autoexec=autoexec,
        )

    async def close(self) -> None:
        """Nothing outlives a chunk here."""

    @property
    def pid(self) -> int | None:
        """The running Blender's pid (also its process group id), or None."""
        return self._proc.pid if self._proc is not None else None

    def cancel(self) -> None:
        """Kill the running Blender's process group: SIGTERM, then SIGKILL after the grace.

        A cancel that comes while `run` is still starting Blender stops it as soon as it runs.
        """
        self._canceled = True
        if self._proc is not None and self._proc.returncode is None:
            self._terminate()

    async def run(self, order: RenderOrder, on_event: EventCallback) -> ChunkResult:
        """Render the order's frames, calling `on_event` as each frame starts and is saved."""
        if self._busy:
            raise RuntimeError("BlenderRunner runs one chunk at a time")
        self._busy = True
        try:
            return await self._run(order, on_event)
        finally:
            self._busy = self._canceled = self._hung = False

    async def _run(self, order: RenderOrder, on_event: EventCallback) -> ChunkResult:
        if self._canceled:
            return ChunkResult(False, None, canceled=True, error="canceled")
        # The job's own hang timeout, when the master sent one, beats the node's default.
        self._silence = order.timeout if order.timeout is not None else self.silence_timeout
        cmd = self.command(order)
        log.info("chunk %d: %s", order.chunk_id, shlex.join(cmd))
        try:
            proc = await spawn(cmd, self.cwd)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return ChunkResult(
                False, None, error=f"cannot run Blender at {self.blender!r}: {reason}"
            )
        self._proc = proc
        if self._canceled:  # canceled while Blender was starting
            self._terminate()
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        tracker = LogTracker(order.frames, start=time.monotonic(), check=saved_check(order))
        done: list[int] = []
        problems: list[str] = []

        def handle(events: list[Event]) -> None:
            for event in events:
                if isinstance(event, FrameSaved):
                    problem = check_output(event.path, self.cwd)
                    if problem:
                        log.warning("chunk %d frame %d: %s", order.chunk_id, event.frame, problem)
                        problems.append(problem)
                        continue
                    done.append(event.frame)
                on_event(event)

        def on_line(line: str) -> None:
            log.debug("blender: %s", line)
            tail.append(short(line))
            handle(tracker.feed(line, time.monotonic()))

        try:
            exit_code = await self._watch(proc, on_line)
        finally:
            if proc.returncode is None:  # we were cancelled ourselves: leave nothing behind
                self._killpg(proc, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await asyncio.shield(proc.wait())
            if self._killer is not None:
                await self._killer
                self._killer = None
            self._proc = None
        handle(tracker.finish(time.monotonic()))
        return chunk_result(
            order,
            exit_code,
            done,
            tracker,
            problems,
            list(tail),
            canceled=self._canceled,
            hung=self._hung,
            silence=self._silence,
        )

    async def _watch(self, proc: asyncio.subprocess.Process, on_line: Callable[[str], None]) -> int:
        assert proc.stdout is not None
        pump = asyncio.create_task(self._pump(proc.stdout, on_line))
        try:
            exit_code = await proc.wait()
            # Blender is gone; a straggler of its group may still hold the pipe open.
            done, _ = await asyncio.wait({pump}, timeout=self.kill_grace)
            if not done:
                self._killpg(proc, signal.SIGKILL)
                done, _ = await asyncio.wait({pump}, timeout=1.0)
            if done:
                pump.result()
            return exit_code
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _pump(self, stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
        splitter = LineSplitter()
        while True:
            timeout = None if self._hung or self._canceled else self._silence
            try:
                async with asyncio.timeout(timeout):  # not wait_for: see connection._read_loop
                    data = await stream.read(READ_SIZE)
            except TimeoutError:
                log.warning("Blender printed nothing for %g s: killing it", timeout)
                self._hung = True
                self._terminate()
                continue
            if not data:
                break
            for line in splitter.feed(data):
                self._deliver(on_line, line)
        for line in splitter.finish():
            self._deliver(on_line, line)

    @staticmethod
    def _deliver(on_line: Callable[[str], None], line: str) -> None:
        # A failing report must not stop the reading: Blender would block on a full pipe.
        try:
            on_line(line)
        except Exception:
            log.exception("handling Blender's line %r failed", line[:200])

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or (self._killer is not None and not self._killer.done()):
            return
        self._killer = asyncio.create_task(self._terminate_group(proc))

    async def _terminate_group(self, proc: asyncio.subprocess.Process) -> None:
        self._killpg(proc, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.kill_grace):
                await asyncio.shield(proc.wait())
        # SIGKILL the group either way: the leader may be gone and a child not.
        self._killpg(proc, signal.SIGKILL)

    @staticmethod
    def _killpg(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def saved_check(order: RenderOrder) -> Callable[[int, str], str | None] | None:
    """What a `Saved:` line must name: the file the order's output pattern names for the
    frame, as Blender resolves it (brender.framepath), or on shared storage one view's file of
    it (stereo saved view by view); None for an order without an output (the scene's own,
    which the node cannot know)."""
    output = order.output
    if not output:
        return None
    logged = 0
    # On shared storage every view's file is where the output names it, so the frame's first
    # one stands for the frame; an uploaded job brings back one file a frame, so the others
    # would be lost.
    shared = not order.uploaded

    def check(frame: int, path: str) -> str | None:
        nonlocal logged
        blend = order.blend_file
        if framepath.names_frame(output, frame, order.format, path, blend, views=shared):
            return None
        if not shared and framepath.names_view(output, frame, order.format, path, blend):
            return (
                f"Blender saved frame {frame} view by view ({path!r}): an uploaded job brings"
                " back one file a frame, so multi-view (stereo) output must be one image; in"
                " Output Properties > Views choose 'Stereo 3D', not 'Individual', or submit"
                " it on shared storage"
            )
        expected = framepath.expected_file(output, frame, order.format, blend)
        logged += 1
        if logged <= MAX_REFUSED:  # a scene's script could print millions
            log.warning(
                "chunk %d: ignored a `Saved:` line for frame %d naming %r, not %r",
                order.chunk_id,
                frame,
                path,
                expected,
            )
        return (
            f"Blender's output said frame {frame} was saved to {path!r}, which is not the"
            f" file the job's output names ({expected})"
        )

    return check


def check_output(path: str, cwd: Path | None) -> str | None:
    """Why Blender's `Saved:` file is no good (missing or empty), or None."""
    full = Path(path)
    if not full.is_absolute() and cwd is not None:
        full = cwd / full
    try:
        size = full.stat().st_size
    except OSError as exc:
        return f"Blender said it saved {path!r}, but it is missing: {exc.strerror}"
    return None if size > 0 else f"Blender said it saved {path!r}, but the file is empty"


def chunk_result(
    order: RenderOrder,
    exit_code: int,
    done: list[int],
    tracker: LogTracker,
    problems: list[str],
    tail: list[str],
    *,
    canceled: bool,
    hung: bool,
    silence: float | None,
) -> ChunkResult:
    """How a chunk ended, from what Blender printed and how it exited (0 for a warm Blender
    that finished the order and lives on)."""
    missing = [f for f in order.frames if f not in done]
    ok = exit_code == 0 and not missing and not canceled and not hung
    if ok:
        if tracker.first_error:
            log.warning("chunk %d succeeded despite %s", order.chunk_id, tracker.first_error)
        return ChunkResult(True, exit_code, frames_done=done)
    if canceled:
        error = "canceled"
    elif hung:
        error = f"Blender printed nothing for {silence:g} s"
    elif tracker.first_error:
        error = short(tracker.first_error)
    elif problems or tracker.refused:
        error = [*problems, *tracker.refused][0]
    else:
        missing_text = ", ".join(str(f) for f in missing)
        if exit_code != 0:
            error = describe_exit(exit_code)
            if missing:
                error += f" without saving frames {missing_text}"
        else:
            error = f"Blender exited without saving frames {missing_text}"
    log.warning("chunk %d failed (exit code %d): %s", order.chunk_id, exit_code, error)
    return ChunkResult(False, exit_code, canceled, done, error, tail)
