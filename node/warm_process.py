"""One warm Blender's process: a Blender with a file loaded, fed orders on its stdin, its
output read as lines (node/warm.py decides when one starts, serves and stops)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass

import psutil

from brender.node import warm_protocol
from brender.node.blender_log import LineSplitter
from brender.node.spawn import READ_SIZE

log = logging.getLogger("brender.node.warm")  # one log for the warm runner and its Blenders

EXIT_WAIT = 2.0
"""Seconds to wait for a Blender whose output ended to exit, before killing its group."""


@dataclass(frozen=True)
class WarmKey:
    """What a warm Blender was started for: it serves another chunk only with the same."""

    command: tuple[str, ...]
    """Its command line: the Blender, auto-exec, threads and the file."""
    stamp: tuple[int, int] | None
    """The file's (mtime in ns, size) when it was loaded; None: it could not be read."""


def file_stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 when gone)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
    return total


class WarmBlender:
    """One Blender with a file loaded: its process, and its output as lines."""

    def __init__(self, proc: asyncio.subprocess.Process, key: WarmKey, number: int) -> None:
        self.proc = proc
        self.key = key
        self.number = number
        """1 for the node's first warm Blender, and so on (the node's log counts them)."""
        self.ready = False
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        """Every output line, then None when the output ends (Blender exited)."""
        self.ended = False
        self._pump = asyncio.create_task(self._read(), name=f"warm-blender-{number}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        splitter = LineSplitter()
        try:
            while data := await self.proc.stdout.read(READ_SIZE):
                for line in splitter.feed(data):
                    self.lines.put_nowait(line)
            for line in splitter.finish():
                self.lines.put_nowait(line)
        finally:
            self.lines.put_nowait(None)

    def idle_lines(self) -> bool:
        """Log what it printed between chunks; False when its output has ended."""
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is None:
                self.ended = True
            else:
                log.debug("blender (idle): %s", line)
        return not self.ended and self.proc.returncode is None

    def send(self, order: warm_protocol.Order) -> None:
        """Write an order; a Blender that is gone shows it by ending its output."""
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.proc.stdin.write(order.encode())

    def kill(self) -> None:
        """SIGKILL the whole process group: a warm Blender has nothing to save."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def exit_code(self) -> int:
        """Its exit code, once its output has ended (killing its group if it lingers)."""
        try:
            async with asyncio.timeout(EXIT_WAIT):
                return await asyncio.shield(self.proc.wait())
        except TimeoutError:
            self.kill()
            return await self.proc.wait()

    async def close(self) -> None:
        """Kill it and reap it."""
        self.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(self.proc.wait())
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(EXIT_WAIT):
                await self._pump
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def rss(self) -> int:
        return tree_rss(self.proc.pid)
