"""A pure parser of `blender -b` output: which frame started, which was saved, what went wrong.

No I/O and no clock: the caller passes each line and the time it was read, so the whole thing
is testable with a recorded log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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

_FRA = re.compile(r"^Fra:(-?\d+)\b")
_FRA_TIME = re.compile(r"\|\s*Time:\s*(\d[\d:.]*)\s*\|")
_SAVED = re.compile(r"""^Saved:\s+(['"])(.*)\1\s*$""")
# Blender 3.x indents this line by one space, 4.x does not.
_TIME = re.compile(r"^\s*Time:\s*(\d[\d:.]*)(?:\s+\(Saving:\s*(\d[\d:.]*)\))?\s*$")
_ERROR = re.compile(r"^Error:\s")


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


@dataclass(frozen=True)
class FraLine:
    """A render-progress line, `Fra:5 Mem:… | Time:00:01.20 | …`."""

    frame: int
    elapsed: float | None


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
class ErrorLine:
    """An `Error: …` line; `fatal` when Blender is known to give up after it."""

    message: str
    fatal: bool


LineEvent = FraLine | SavedLine | TimeLine | ErrorLine


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


def parse_line(line: str) -> LineEvent | None:
    """Classify one output line; None for everything the node does not care about."""
    text = line.rstrip("\r\n")
    match = _FRA.match(text)
    if match:
        time_match = _FRA_TIME.search(text)
        elapsed = parse_duration(time_match.group(1)) if time_match else None
        return FraLine(int(match.group(1)), elapsed)
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


Event = FrameStarted | FrameSaved


@dataclass
class _Pending:
    frame: int
    path: str
    saved_at: float


class LogTracker:
    """Turns a chunk's output lines into frame events and remembers the first error.

    A `FrameSaved` is held back until Blender prints the frame's `Time:` line (or anything that
    shows it will not: the next frame, another save, the end), so it can carry Blender's own
    render time.
    """

    def __init__(self, frames: Sequence[int] = (), start: float = 0.0) -> None:
        self._ordered = list(frames)
        self._mark = start
        self._current: int | None = None
        self._started: dict[int, float] = {}
        self._saved: list[int] = []
        self._pending: _Pending | None = None
        self.first_error: str | None = None
        self.fatal_error: str | None = None

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
        if isinstance(event, ErrorLine):
            if self.first_error is None:
                self.first_error = event.message
            if event.fatal and self.fatal_error is None:
                self.fatal_error = event.message
            return []
        if isinstance(event, FraLine):
            events = self._flush(now, None) if event.frame != self._current else []
            self._current = event.frame
            if event.frame not in self._started:
                self._started[event.frame] = now
                events.append(FrameStarted(event.frame))
            return events
        frame = self._current if self._current is not None else self._next_unsaved()
        # A second `Saved:` for the same frame is another view of it (stereo, multi-view).
        if frame is None or frame in self._saved:
            return []
        events = self._flush(now, None)
        self._saved.append(frame)
        self._pending = _Pending(frame, event.path, now)
        return events

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
