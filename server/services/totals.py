"""The farm's totals for `server status`: jobs and frames by status, and the client rows.

Counting 1,000,000 frames by status takes the database about 0.4 s, too long for the event
loop, so the counting runs on a worker thread of its own (peewee gives it its own
connection). Callers that ask while a count is still waiting to start share it; a count that
has already started is never shared with a later caller, so every answer includes each change
committed before its request arrived.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import peewee as pw

from brender.server.models import Client, Frame, Job, database, tuples
from brender.server.states import ClientStatus


@dataclass(frozen=True)
class Totals:
    jobs: dict[str, int]
    frames: dict[str, int]
    clients: int
    enabled: int


def _by_status(model: Any) -> dict[str, int]:
    query = model.select(model.status, pw.fn.COUNT(model.id)).group_by(model.status)
    return {status: n for status, n in tuples(query)}


def count() -> Totals:
    """Every total, in one transaction (on SQLite, one snapshot: they agree with each other)."""
    with database.atomic():
        return Totals(
            jobs=_by_status(Job),
            frames=_by_status(Frame),
            clients=Client.select().count(),
            enabled=Client.select().where(Client.status == ClientStatus.ENABLED.value).count(),
        )


class Counter:
    """Runs `count` on one worker thread, at most one count at a time plus one waiting."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="brender-totals")
        self._next: Future[Totals] | None = None

    async def totals(self) -> Totals:
        """Fresh totals, counted after this call began; the loop only waits for them."""
        upcoming = self._next
        # A pending future's count has not begun (the worker marks it running first), so it
        # will see everything committed so far.
        if upcoming is None or upcoming.running() or upcoming.done():
            upcoming = self._next = self._pool.submit(count)
        return await asyncio.shield(asyncio.wrap_future(upcoming))

    def close(self) -> None:
        """Close the worker's database connection and stop the worker (once is enough)."""
        if self._next is not None:
            self._next = None
            self._pool.submit(database.close)
        self._pool.shutdown(wait=True)
