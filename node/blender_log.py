"""A pure parser of `blender -b` output: which frame started, which was saved, what went wrong.

No I/O and no clock: the caller passes each line and the time it was read, so the whole thing
is testable with a recorded log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

FATAL_ERRORS = (
    "Error: Cannot read file",
    "Error: File format is not supported",
    "Error: Cannot render, no camera",
    "Error: Build without OpenImageDenoiser",
)
"""Errors after which Blender renders nothing more (it exits 1 by itself)."""

MAX_OUTPUT_LINE = 64 * 1024
"""Longer output lines are cut here; Blender's interesting lines are short."""

MAX_REFUSED = 20
"""Refused `Saved:` lines a tracker remembers (a script could print millions)."""

_FRA = re.compile(r"^Fra:(-?\d+)\b")
_FRA_TIME = re.compile(r"\|\s*Time:\s*(\d[\d:.]*)\s*\|")
_FRA_REMAINING = re.compile(r"\|\s*Remaining:\s*(\d[\d:.]*)\s*\|")
# Cycles: `Sample 12/128`; Eevee: `Rendering 12 / 64 samples`.
_SAMPLES = re.compile(r"(?:^Sample\s+(\d+)\s*/\s*(\d+)|^Rendering\s+(\d+)\s*/\s*(\d+)\s+samples)")
_SAVED = re.compile(r"""^Saved:\s+(['"])(.*)\1\s*$""")
# Blender 3.x indents this line by one space, 4.x does not.
_TIME = re.compile(r"^\s*Time:\s*(\d[\d:.]*)(?:\s+\(Saving:\s*(\d[\d:.]*)\))?\s*$")
_ERROR = re.compile(r"^Error:\s")
_READ_BLEND = re.compile(r"^Read blend:\s")


class LineSplitter:
    """Bytes in, text lines out; a line longer than `max_line` bytes is cut, never fatal."""

    def __init__(self, max_line: int = MAX_OUTPUT_LINE) -> None:
        self._max = max_line
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        parts = self._buffer.split(b"\n")
        self._buffer = bytearray(parts.pop())
        lines: list[str] = []
        for raw in parts:
            if self._skipping:  # the end of a line already cut
                self._skipping = False
            else:
                lines.append(_decode(raw))
        if len(self._buffer) > self._max:
            if not self._skipping:
                lines.append(_decode(bytes(self._buffer[: self._max])) + " [line cut]")
            self._skipping = True
            self._buffer.clear()
        return lines

    def finish(self) -> list[str]:
        """The last line, when the output did not end with a newline."""
        rest = b"" if self._skipping else bytes(self._buffer)
        self._buffer.clear()
        return [_decode(rest)] if rest else []


def _decode(raw: bytes | bytearray) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


_PHASE_PREFIXES = (
    ("Loading", "loading"),
    ("Synchronizing", "synchronizing"),
    ("Initializing", "synchronizing"),
    ("Waiting for render", "synchronizing"),
    ("Updating", "synchronizing"),
    ("Sample", "rendering"),
    ("Rendering", "rendering"),
    ("Path Tracing", "rendering"),
    ("Denoising", "rendering"),
    ("Compositing", "compositing"),
    ("Finished", "saving"),
    ("Saving", "saving"),
)


@dataclass(frozen=True)
class FraLine:
    """A render-progress line, `Fra:5 Mem:… | Time:00:01.20 | Remaining:00:11.92 | … |
    Scene, ViewLayer | Sample 1/128`."""

    frame: int
    elapsed: float | None
    remaining: float | None = None
    phase: str | None = None
    samples: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class SavedLine:
    """`Saved: '/renders/0005.png'`."""

    path: str


@dataclass(frozen=True)
class TimeLine:
    """The frame's total time, printed right after `Saved:`."""

    seconds: float
    saving: float | None


@dataclass(frozen=True)
class ReadLine:
    """`Read blend: /projects/a.blend`: Blender is loading the file."""


@dataclass(frozen=True)
class ErrorLine:
    """An `Error: …` line; `fatal` when Blender is known to give up after it."""

    message: str
    fatal: bool


LineEvent = FraLine | SavedLine | TimeLine | ErrorLine | ReadLine


def parse_duration(text: str) -> float | None:
    """Blender's time codes: `SS.ss`, `MM:SS.ss` or `H:MM:SS.ss`, in seconds."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3:
        return None
    try:
        seconds = float(parts[-1])
        whole = [int(p) for p in parts[:-1]]
    except ValueError:
        return None
    if seconds < 0 or any(value < 0 for value in whole):
        return None
    multiplier = 60
    for value in reversed(whole):
        seconds += value * multiplier
        multiplier *= 60
    return seconds


def _status(text: str) -> tuple[str | None, int | None, int | None]:
    """The phase and the samples of a `Fra:` line, from the fields after `Scene, ViewLayer`:
    Blender's last `|` fields say what it is doing (`Sample 12/128`, `Updating Shaders`)."""
    fields = [f.strip() for f in text.split("|")]
    phase: str | None = None
    # The first field that names a phase: `Updating Objects | Copying …` is synchronizing.
    for part in fields[1:]:
        found = next((name for prefix, name in _PHASE_PREFIXES if part.startswith(prefix)), None)
        if found is not None:
            phase = found
            break
    for part in fields[1:]:
        match = _SAMPLES.match(part)
        if match:
            done, total = match.group(1) or match.group(3), match.group(2) or match.group(4)
            return "rendering", int(done), int(total)
    return phase, None, None


def parse_line(line: str) -> LineEvent | None:
    """Classify one output line; None for everything the node does not care about."""
    text = line.rstrip("\r\n")
    match = _FRA.match(text)
    if match:
        time_match = _FRA_TIME.search(text)
        elapsed = parse_duration(time_match.group(1)) if time_match else None
        left = _FRA_REMAINING.search(text)
        remaining = parse_duration(left.group(1)) if left else None
        phase, samples, total = _status(text)
        return FraLine(int(match.group(1)), elapsed, remaining, phase, samples, total)
    match = _SAVED.match(text)
    if match:
        return SavedLine(match.group(2))
    match = _TIME.match(text)
    if match:
        seconds = parse_duration(match.group(1))
        if seconds is None:
            return None
        saving = parse_duration(match.group(2)) if match.group(2) else None
        return TimeLine(seconds, saving)
    if _READ_BLEND.match(text):
        return ReadLine()
    if _ERROR.match(text):
        message = text.strip()
        return ErrorLine(message, message.startswith(FATAL_ERRORS))
    return None


@dataclass(frozen=True)
class FrameStarted:
    """Blender began rendering `frame` (its first `Fra:` line)."""

    frame: int


@dataclass(frozen=True)
class FrameSaved:
    """Blender saved `frame` to `path`; `render_time` in seconds."""

    frame: int
    path: str
    render_time: float


@dataclass(frozen=True)
class FrameProgress:
    """How far Blender is with `frame`: its phase, samples done of `total`, and its own
    estimate of the seconds left (`Remaining:`), each None when Blender did not say."""

    frame: int
    phase: str
    samples: int | None = None
    total: int | None = None
    remaining: float | None = None


Event = FrameStarted | FrameSaved | FrameProgress


@dataclass
class _Pending:
    frame: int
    path: str
    saved_at: float


class LogTracker:
    """Turns a chunk's output lines into frame events and remembers the first error.

    A `FrameSaved` is held back until Blender prints the frame's `Time:` line (or anything that
    shows it will not: the next frame, another save, the end), so it can carry Blender's own
    render time. `check(frame, path)` says why a `Saved:` line is not the frame's file (None
    when it is): such a line is not taken (a scene's script can print one), only noted in
    `refused`, and the frame's real `Saved:` line still counts.
    """

    def __init__(
        self,
        frames: Sequence[int] = (),
        start: float = 0.0,
        check: Callable[[int, str], str | None] | None = None,
    ) -> None:
        self._ordered = list(frames)
        self._mark = start
        self._current: int | None = None
        self._started: dict[int, float] = {}
        self._saved: list[int] = []
        self._pending: _Pending | None = None
        self._last: FrameProgress | None = None
        self._check = check
        self.first_error: str | None = None
        self.fatal_error: str | None = None
        self.refused: list[str] = []
        """Why `Saved:` lines were not taken (a file the order does not name)."""

    @property
    def frames_saved(self) -> list[int]:
        """Frames whose `Saved:` line was seen, in order."""
        return list(self._saved)

    def feed(self, line: str, now: float) -> list[Event]:
        """One output line, read at `now` (seconds, any monotonic clock)."""
        event = parse_line(line)
        if event is None:
            return []
        if isinstance(event, TimeLine):
            return self._flush(now, event.seconds)
        if isinstance(event, ReadLine):
            frame = self._next_unsaved()
            if frame is None:
                return []
            self._last = FrameProgress(frame, "loading")
            return [self._last]
        if isinstance(event, ErrorLine):
            if self.first_error is None:
                self.first_error = event.message
            if event.fatal and self.fatal_error is None:
                self.fatal_error = event.message
            return []
        if isinstance(event, FraLine):
            events: list[Event] = self._flush(now, None) if event.frame != self._current else []
            new_frame = event.frame != self._current
            self._current = event.frame
            if event.frame not in self._started:
                self._started[event.frame] = now
                events.append(FrameStarted(event.frame))
            events.append(self._progress(event, new_frame))
            return events
        frame = self._current if self._current is not None else self._next_unsaved()
        # A second `Saved:` for the same frame is another view of it (stereo, multi-view).
        if frame is None or frame in self._saved:
            return []
        problem = self._check(frame, event.path) if self._check is not None else None
        if problem is not None:
            if len(self.refused) < MAX_REFUSED:
                self.refused.append(problem)
            return []
        events = self._flush(now, None)
        self._saved.append(frame)
        self._pending = _Pending(frame, event.path, now)
        return events

    def _progress(self, line: FraLine, new_frame: bool) -> FrameProgress:
        """The frame's progress after this line: a line that names no phase keeps the last one,
        and samples stay until another line gives them (`Remaining:` likewise)."""
        last = None if new_frame else self._last
        phase = line.phase or (last.phase if last is not None else "synchronizing")
        samples, total = line.samples, line.total
        same = last is not None and phase == last.phase
        # Cycles prints `Sample 0/N` once more as it stops: the count does not go back.
        if (
            last is not None
            and same
            and last.samples is not None
            and (samples is None or samples < last.samples)
        ):
            samples, total = last.samples, last.total
        remaining = line.remaining
        if remaining is None and last is not None and same:
            remaining = last.remaining
        self._last = FrameProgress(line.frame, phase, samples, total, remaining)
        return self._last

    def finish(self, now: float) -> list[Event]:
        """Blender's output ended: release a save still waiting for its `Time:` line."""
        return self._flush(now, None)

    def _next_unsaved(self) -> int | None:
        return next((f for f in self._ordered if f not in self._saved), None)

    def _flush(self, now: float, blender_time: float | None) -> list[Event]:
        pending, self._pending = self._pending, None
        if pending is None:
            return []
        # Blender rounds to 10 ms and prints 00:00.00 for very fast frames: the wall clock
        # from the first `Fra:` line to `Saved:` says more than zero does.
        if blender_time is not None and blender_time > 0:
            render_time = blender_time
        else:
            render_time = max(pending.saved_at - self._started.get(pending.frame, self._mark), 0.0)
        self._mark = now
        if render_time >= 0.001:
            render_time = round(render_time, 3)
        return [FrameSaved(pending.frame, pending.path, render_time)]


PROGRESS_INTERVAL = 0.25
"""Seconds between two progress reports of one frame in the same phase (4 a second at most)."""


class ProgressThrottle:
    """Which `FrameProgress` events go to the master: the first of each frame and of each
    phase at once, then at most one every `interval` seconds (the latest one)."""

    def __init__(self, interval: float = PROGRESS_INTERVAL) -> None:
        self._interval = interval
        self._sent: FrameProgress | None = None
        self._sent_at = 0.0

    def offer(self, event: FrameProgress, now: float) -> FrameProgress | None:
        """The event to send now, or None to drop it (a later one will say more)."""
        last = self._sent
        changed = last is None or (event.frame, event.phase) != (last.frame, last.phase)
        if not changed and (event == last or now - self._sent_at < self._interval):
            return None
        self._sent, self._sent_at = event, now
        return event
