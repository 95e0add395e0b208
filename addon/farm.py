"""Blender's side of the network thread: posting tasks, draining replies, refreshing jobs.

Everything here runs on Blender's main thread. `tick` is a `bpy.app.timers` callback: it
drains the worker's replies (`pump`), keeps the jobs `board` up to date while a jobs panel is
on screen, and asks the panels to redraw when something changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import bpy

from . import comms, jobs, watch
from .client import DEFAULT_TIMEOUT, FarmClient
from .errors import FarmError
from .preferences import ADDON_ID

if TYPE_CHECKING:
    from .preferences import BrenderPreferences

log = logging.getLogger(__name__)

TICK = 0.25  # seconds between two drains of the reply queue
REPLY_GRACE = 2.0  # seconds to wait for a reply beyond the client's own timeout
REDRAW_AREAS = {"VIEW_3D", "PROPERTIES"}
LONG_IDLE = 600.0  # seconds a long task (pack, upload, download) may go without news

board = jobs.Board()
mine = watch.Watch()
"""The jobs submitted from this Blender, watched until they end (the artist is told then)."""
_worker = comms.Worker()
_replies: dict[int, comms.Reply] = {}
progress: dict[int, tuple[float, Any]] = {}
"""The latest progress of each long task still out: (when it came, its data)."""


def preferences() -> BrenderPreferences:
    addon = bpy.context.preferences.addons.get(ADDON_ID) if bpy.context.preferences else None
    if addon is None or addon.preferences is None:
        raise FarmError("The brender add-on is not enabled")
    return cast("BrenderPreferences", addon.preferences)


def client() -> FarmClient:
    """A client for the farm in the preferences (raises `SettingsError` for a bad address)."""
    prefs = preferences()
    return FarmClient(
        prefs.address, prefs.token, DEFAULT_TIMEOUT, prefs.tls_ca, prefs.tls_fingerprint
    )


def post(kind: str, task: comms.Task | comms.WithProgress) -> int:
    return _worker.post(kind, task)


def news(ticket: int) -> tuple[float, Any] | None:
    """The last progress of `ticket`, while it is out."""
    return progress.get(ticket)


def latest(kind_of: type) -> Any:
    """The newest progress data of type `kind_of` of any task still out (for the panels)."""
    found = [(at, data) for at, data in progress.values() if isinstance(data, kind_of)]
    return max(found, key=lambda f: f[0])[1] if found else None


def deadline(ticket: int, started: float, long: bool) -> float:
    """When to give up on `ticket`: the client's timeout, or for a long task that long after
    its last news (it sends some while it packs, uploads or downloads)."""
    if not long:
        return started + DEFAULT_TIMEOUT + REPLY_GRACE
    last = news(ticket)
    return max(started, last[0] if last else started) + LONG_IDLE


def pump() -> None:
    """Take every reply that has arrived: refreshes go to the board, the rest wait in `take`."""
    changed = False
    for reply in _worker.drain():
        if reply.kind == comms.PROGRESS:
            progress[reply.ticket] = (time.monotonic(), reply.data)
            changed = True
            continue
        if progress.pop(reply.ticket, None) is not None:
            changed = True
        if reply.kind == "refresh":
            if reply.ticket == board.pending:
                board.apply(time.monotonic(), reply.data if reply.ok else None, reply.error)
                changed = True
        elif reply.kind == "watch":
            if reply.ticket == mine.pending:
                changed |= _watched(reply)
        else:
            _replies[reply.ticket] = reply
            if reply.kind in ("submit", "job", "download"):
                board.stale = True
    if changed:
        redraw()


def take(ticket: int) -> comms.Reply | None:
    return _replies.pop(ticket, None)


def wait(ticket: int, long: bool = False) -> comms.Reply | None:
    """Block until the reply to `ticket` arrives: only for scripts and background mode. A
    long task is waited for as long as it sends news."""
    started = time.monotonic()
    found: list[comms.Reply] = []

    def arrived() -> bool:
        reply = take(ticket)
        if reply is not None:
            found.append(reply)
        return reply is not None or time.monotonic() > deadline(ticket, started, long)

    wait_until(arrived, LONG_IDLE * 10 if long else DEFAULT_TIMEOUT + REPLY_GRACE)
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


def poll_mine() -> int:
    """Ask the farm how the jobs submitted from here are doing; answers the ticket (0: none)."""
    try:
        farm = client()
    except FarmError:
        mine.gone(time.monotonic())
        return 0
    request = mine.poll_request()
    mine.pending = post("watch", lambda: farm.call(request, "your jobs"))
    return mine.pending


def _watched(reply: comms.Reply) -> bool:
    if not reply.ok:
        mine.gone(time.monotonic())
        return False
    notices = mine.observe(reply.data, time.monotonic())
    for notice in notices:
        announce(notice)
    if notices:
        board.stale = True
    return bool(notices)


def announce(notice: watch.Notice) -> None:
    """Tell the artist in the status bar and the Info log (an operator's report, no dialog)."""
    log.info("brender: %s", notice.text)
    try:
        bpy.ops.brender.notify(message=notice.text, level=notice.level)  # type: ignore[attr-defined]
    except (RuntimeError, AttributeError):  # no window to report in (or the add-on is going)
        log.warning("brender: could not report: %s", notice.text)


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
        every = preferences().refresh_every
        if board.wants_refresh(time.monotonic(), every):
            refresh()
        if mine.wants_poll(time.monotonic(), every):
            poll_mine()
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
    progress.clear()
    board.reset()
    mine.reset()
