"""Blender's side of the network thread: posting tasks, draining replies, refreshing jobs.

Everything here runs on Blender's main thread. `tick` is a `bpy.app.timers` callback: it
drains the worker's replies (`pump`), keeps the jobs `board` up to date while a jobs panel is
on screen, and asks the panels to redraw when something changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import bpy

from . import comms, jobs
from .client import DEFAULT_TIMEOUT, FarmClient
from .errors import FarmError
from .preferences import ADDON_ID

if TYPE_CHECKING:
    from .preferences import BrenderPreferences

log = logging.getLogger(__name__)

TICK = 0.25  # seconds between two drains of the reply queue
REPLY_GRACE = 2.0  # seconds to wait for a reply beyond the client's own timeout
REDRAW_AREAS = {"VIEW_3D", "PROPERTIES"}

board = jobs.Board()
_worker = comms.Worker()
_replies: dict[int, comms.Reply] = {}


def preferences() -> BrenderPreferences:
    addon = bpy.context.preferences.addons.get(ADDON_ID) if bpy.context.preferences else None
    if addon is None or addon.preferences is None:
        raise FarmError("The brender add-on is not enabled")
    return cast("BrenderPreferences", addon.preferences)


def client() -> FarmClient:
    """A client for the farm in the preferences (raises `SettingsError` for a bad address)."""
    prefs = preferences()
    return FarmClient(prefs.address, prefs.token, DEFAULT_TIMEOUT)


def post(kind: str, task: comms.Task) -> int:
    return _worker.post(kind, task)


def pump() -> None:
    """Take every reply that has arrived: refreshes go to the board, the rest wait in `take`."""
    changed = False
    for reply in _worker.drain():
        if reply.kind == "refresh":
            if reply.ticket == board.pending:
                board.apply(time.monotonic(), reply.data if reply.ok else None, reply.error)
                changed = True
        else:
            _replies[reply.ticket] = reply
            if reply.kind in ("submit", "job"):
                board.stale = True
    if changed:
        redraw()


def take(ticket: int) -> comms.Reply | None:
    return _replies.pop(ticket, None)


def wait(ticket: int, timeout: float = DEFAULT_TIMEOUT + REPLY_GRACE) -> comms.Reply | None:
    """Block until the reply to `ticket` arrives: only for scripts and background mode."""
    found: list[comms.Reply] = []

    def arrived() -> bool:
        reply = take(ticket)
        if reply is not None:
            found.append(reply)
        return reply is not None

    wait_until(arrived, timeout)
    return found[0] if found else None


def wait_until(done: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT + REPLY_GRACE) -> bool:
    """Pump replies until `done()` or the deadline; True if it got done."""
    deadline = time.monotonic() + timeout
    while True:
        pump()
        if done():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def refresh() -> int:
    """Ask for a fresh jobs list now; answers the ticket (0 when the settings are incomplete)."""
    blend_file = bpy.data.filepath
    try:
        farm = client()
    except FarmError as exc:
        board.apply(time.monotonic(), None, str(exc))
        return 0
    requests = jobs.refresh_requests(blend_file)

    def task() -> jobs.Snapshot:
        return jobs.parse_snapshot(farm.batch(requests, "the jobs list"), blend_file)

    board.address = farm.address
    board.pending = post("refresh", task)
    return board.pending


def redraw() -> None:
    wm = bpy.context.window_manager
    for window in wm.windows if wm else ():
        for area in window.screen.areas if window.screen else ():
            if area.type in REDRAW_AREAS:
                area.tag_redraw()


def tick() -> float | None:
    """The timer: drain replies, refresh the jobs while they are on screen."""
    try:
        pump()
        if board.wants_refresh(time.monotonic(), preferences().refresh_every):
            refresh()
    except Exception:  # a timer that raises is unregistered by Blender: log and keep going
        log.exception("brender: timer failed")
    return TICK


def start() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK, persistent=True)


def stop() -> None:
    """Unregister the timer, end the thread, forget everything (the add-on is being disabled)."""
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    if not _worker.stop(timeout=1.0):
        log.info("brender: a farm request is still out; it will be dropped")
    _replies.clear()
    board.reset()
