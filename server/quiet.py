"""The server's one rate limit on log lines a peer can cause: at most one line a minute per key.

A node (or any peer) that repeats a fault must not be able to write a log line each time: a
broken or hostile node sending a million bad lines would fill the disk. Each kind of fault of
each node is a key (`(client_id, "bad message")`); the first line of a key is logged, the next
ones within `LOG_EVERY` seconds are only counted, and the next line logged says how many were
held back. Frame reports (server/reports.py), bad messages (server/nodes.py), rejected orders
(server/farm.py) and refused connections (server/accept.py) all go through it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

LOG_EVERY = 60.0
"""Seconds between two log lines of one key."""


@dataclass
class _Held:
    logged_at: float
    held_back: int = 0


@dataclass
class QuietLog:
    """Logs at most one line per key every `every` seconds, saying how many it held back."""

    every: float = LOG_EVERY
    clock: Callable[[], float] = time.monotonic
    _held: dict[Hashable, _Held] = field(default_factory=dict)

    def note(
        self, key: Hashable, logger: logging.Logger, level: int, text: str, *args: object
    ) -> bool:
        """Log `text % args` unless `key` was logged less than `every` seconds ago; answers
        whether it was logged."""
        now = self.clock()
        held = self._held.get(key)
        if held is not None and now - held.logged_at < self.every:
            held.held_back += 1
            return False
        if held is not None and held.held_back:
            text += " (and %d more like it in the last %.0f s, not logged)"
            args = (*args, held.held_back, now - held.logged_at)
        logger.log(level, text, *args)
        self._held[key] = _Held(now)
        return True
