"""The add-on's one network thread: tasks in, small `Reply` messages out. No `bpy` here.

Blender's main thread posts a task (a closure over plain data, e.g. a `FarmClient` and a
request) and gets a ticket back; the daemon thread runs the task and puts a `Reply` on a
`queue.SimpleQueue`, which a `bpy.app.timers` callback drains on the main thread
(`farm.pump`). The thread never touches `bpy`, so Blender never waits for the network.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import FarmError

log = logging.getLogger(__name__)

Task = Callable[[], Any]
Notify = Callable[[Any], None]
PROGRESS = "progress"
"""The kind of the replies a `WithProgress` task sends on its way (its final one keeps its
own kind)."""
BUG_MESSAGE = "The brender add-on hit a bug talking to the farm (details in Blender's console)"


@dataclass(frozen=True)
class Reply:
    """What became of one posted task: its `data`, or an artist-facing `error`."""

    ticket: int
    kind: str
    data: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class WithProgress:
    """A long task (pack, upload, download) that tells how far it is: `run(notify)` may call
    `notify(data)` as often as it likes; each call becomes a `PROGRESS` reply. Once the worker
    is stopping, `notify` raises `Stopped`, so a long task ends at its next step."""

    run: Callable[[Notify], Any]


class Stopped(FarmError):
    """The add-on is being disabled: the long task stops where it is."""


class Worker:
    """A daemon thread running posted tasks one at a time, in order.

    The thread starts with the first `post` and ends with `stop`; a stopped worker can be
    started again (enable, disable, enable the add-on).
    """

    def __init__(self, name: str = "brender-farm") -> None:
        self.name = name
        self._inbox: queue.SimpleQueue[tuple[int, str, Task] | None] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[Reply] = queue.SimpleQueue()
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def post(self, kind: str, task: Task | WithProgress) -> int:
        """Queue `task`; its `Reply` (and its `PROGRESS` replies) will carry the returned
        ticket."""
        ticket = next(self._tickets)
        with self._lock:
            if not self.alive:
                self._start()
            if isinstance(task, WithProgress):
                task = self._reporting(ticket, task, self._stopping)
            self._inbox.put((ticket, kind, task))
        return ticket

    def _reporting(self, ticket: int, task: WithProgress, stopping: threading.Event) -> Task:
        outbox = self._outbox

        def notify(data: Any) -> None:
            if stopping.is_set():
                raise Stopped("The brender add-on was disabled")
            outbox.put(Reply(ticket, PROGRESS, data))

        return lambda: task.run(notify)

    def drain(self) -> list[Reply]:
        """Every reply that has arrived, oldest first; never waits."""
        replies = []
        while True:
            try:
                replies.append(self._outbox.get_nowait())
            except queue.Empty:
                return replies

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the thread to end and wait up to `timeout` s; True when it has ended.

        A thread stuck in a slow request is a daemon: it ends with Blender, and its late
        reply is dropped.
        """
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
            self._inbox.put(None)
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _start(self) -> None:
        # A fresh inbox and stop flag, so a thread left over from a stop cannot take new tasks.
        self._inbox = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._inbox, self._stopping), name=self.name, daemon=True
        )
        self._thread.start()

    def _run(
        self, inbox: queue.SimpleQueue[tuple[int, str, Task] | None], stopping: threading.Event
    ) -> None:
        while True:
            item = inbox.get()
            if item is None or stopping.is_set():
                return
            ticket, kind, task = item
            try:
                reply = Reply(ticket, kind, data=task())
            except FarmError as exc:
                reply = Reply(ticket, kind, error=str(exc))
            except Exception:
                log.exception("brender: %s task failed", kind)
                reply = Reply(ticket, kind, error=BUG_MESSAGE)
            if stopping.is_set():
                return
            self._outbox.put(reply)
