"""The database as the farm is given it, and the farm's one writer.

The scheduler keeps what is live in memory; the database is its journal. Every change the loop
makes in a tick is put here as a row for one of a few fixed statements (`put`), merged by row
so that a frame that moves twice in a tick is written once, and one thread writes the tick's
rows in one transaction. `after_commit` callbacks (pongs, acks, API answers) run on the loop
once that transaction is durable: whatever brender acknowledged survives a `kill -9`.

While the thread writes one batch, the loop goes on filling the next (group commit: under load
a batch holds many ticks). Larger writes (`run`: a submit's rows) go through the same queue, so
everything reaches the database in the order the loop made it, from one connection, and the
loop itself never waits for SQLite or PostgreSQL. SQLite's WAL checkpoints happen on that
thread too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import peewee as pw

from brender.server.bulk import Bulk

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = tuple[Any, ...]
Merge = Callable[[Params, Params], Params]


@dataclass(frozen=True, eq=False)  # one object per statement: hashed by identity, cheaply
class Statement:
    """One fixed SQL statement (`{p}` for the placeholder), how two rows for the same key combine
    when a row changes twice before it is written (default: the later one wins), and its place
    in a batch: rows are written by `order`, so a chunk is there before frames point at it."""

    name: str
    sql: str
    merge: Merge | None = None
    order: int = 5
    many: str | None = None
    """The same statement for many rows at once (`{values}` for `(…), (…)`), used on SQLite:
    its driver releases and retakes the GIL for every row of an `executemany`, and each retake
    may wait for the loop's switch interval (5 ms), so one statement per row starves the writer."""


@dataclass
class _Rows:
    """A run of merged rows, per statement (written in the statements' `order`)."""

    by_statement: dict[Statement, dict[Hashable, Params]] = field(default_factory=dict)


@dataclass
class _Exec:
    statement: Statement
    rows: list[Params]


@dataclass
class _Call:
    fn: Callable[[], Any]
    future: asyncio.Future[Any]


@dataclass
class _Batch:
    parts: list[_Rows | _Exec | _Call] = field(default_factory=list)
    callbacks: list[Callable[[], None]] = field(default_factory=list)
    rows: int = 0

    def empty(self) -> bool:
        return not self.parts and not self.callbacks


_STOP = object()


class Store:
    """The database handle every part is given, and the one writer of its changes."""

    def __init__(self, db: pw.Database) -> None:
        self.db = db
        self.param: str = db.param
        self.bulk = Bulk(db)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch = _Batch()
        self._busy = False
        self._scheduled = False
        self._idle = asyncio.Event()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batch_no = 0
        """The batch being filled; it goes up each time one is handed to the writer."""
        self.batches = 0
        self.rows_written = 0

    # -- the loop's side -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (call on the loop that will use this store)."""
        self._loop = asyncio.get_running_loop()
        self._idle.set()
        self._thread = threading.Thread(target=self._write_loop, name="brender-writer", daemon=True)
        self._thread.start()

    def sql(self, template: str) -> str:
        return template.format(p=self.param)

    def put(self, statement: Statement, key: Hashable, params: Params) -> None:
        """Write `params` with `statement` in this tick's transaction (merged with an earlier
        row for the same `key` in the same batch)."""
        batch = self._batch
        parts = batch.parts
        last = parts[-1] if parts else None
        if not isinstance(last, _Rows):
            last = _Rows()
            parts.append(last)
        rows = last.by_statement.get(statement)
        if rows is None:
            rows = last.by_statement[statement] = {}
        if statement.merge is not None:
            old = rows.get(key)
            if old is not None:
                params = statement.merge(old, params)
        rows[key] = params
        batch.rows += 1
        if not self._scheduled:
            self._soon()

    def execute(self, statement: Statement, params: Params) -> None:
        """One statement for many rows (`UPDATE … WHERE job_id = …`), in order with the rows
        put before and after it."""
        self.execute_many(statement, [params])

    def execute_many(self, statement: Statement, rows: list[Params]) -> None:
        """`statement` for each of `rows`, in order with what was put before and after it (not
        merged into the rows of `put`)."""
        self._batch.parts.append(_Exec(statement, rows))
        self._batch.rows += len(rows)
        self._soon()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the loop once everything put so far is durable."""
        self._batch.callbacks.append(callback)
        self._soon()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` (peewee calls) on the writer's connection, in order after what was put so
        far, in its own transaction; answers its result once committed."""
        assert self._loop is not None
        future: asyncio.Future[T] = self._loop.create_future()
        self._batch.parts.append(_Call(fn, future))
        self._soon()
        return await future

    async def committed(self) -> None:
        """Wait until everything put so far is committed (later puts do not delay it)."""
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()

        def done() -> None:
            if not future.done():
                future.set_result(None)

        self.after_commit(done)
        await future

    async def drain(self) -> None:
        """Wait until everything put so far is written (and nothing is being written)."""
        while not self._batch.empty() or self._busy:
            self._submit()
            self._idle.clear()
            await self._idle.wait()

    def _soon(self) -> None:
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._tick_end)

    def _tick_end(self) -> None:
        self._scheduled = False
        self._submit()

    def _submit(self) -> None:
        """Hand the batch to the writer, unless it is busy (then it goes when it is done)."""
        if self._busy or self._batch.empty():
            return
        batch, self._batch = self._batch, _Batch()
        self.batch_no += 1
        self._busy = True
        self._queue.put(batch)

    def _written(self, batch: _Batch, error: BaseException | None) -> None:
        self._busy = False
        self.batches += 1
        if error is None:
            self.rows_written += batch.rows
            for callback in batch.callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("an after-commit callback failed")
        self._submit()
        if not self._busy:
            self._idle.set()

    def close(self) -> None:
        """Write what is left, stop the writer thread (after the loop has stopped using it)."""
        if self._thread is None:
            return
        if not self._batch.empty() and not self._busy:
            batch, self._batch = self._batch, _Batch()
            self.batch_no += 1
            self._queue.put(batch)
        self._queue.put(_STOP)
        self._thread.join(timeout=30)
        self._thread = None

    # -- the writer thread ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while True:
                batch = self._queue.get()
                if batch is _STOP:
                    return
                error = self._write(batch)
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    # RuntimeError: the loop closed meanwhile, and nobody waits for the batch.
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(self._written, batch, error)
        finally:
            self.db.close()  # this thread's connection

    def _write(self, batch: _Batch) -> BaseException | None:
        results: list[tuple[_Call, Any, BaseException | None]] = []
        try:
            with self.db.atomic():
                for part in batch.parts:
                    if isinstance(part, _Rows):
                        by_order = sorted(part.by_statement.items(), key=lambda s: s[0].order)
                        for statement, rows in by_order:
                            self.bulk.write(statement.sql, statement.many, list(rows.values()))
                    elif isinstance(part, _Exec):
                        self.bulk.write(part.statement.sql, part.statement.many, part.rows)
                    else:
                        # A call that fails rolls back only itself (a savepoint), not the rows.
                        try:
                            with self.db.atomic():
                                results.append((part, part.fn(), None))
                        except Exception as exc:
                            results.append((part, None, exc))
        except Exception as exc:
            log.exception("writing %d rows to the database failed; rolled back", batch.rows)
            for part in batch.parts:
                if isinstance(part, _Call):
                    self._resolve(part, None, exc)
            return exc
        for call, value, error in results:
            self._resolve(call, value, error)
        return None

    def _resolve(self, call: _Call, value: Any, error: BaseException | None) -> None:
        future = call.future

        def settle() -> None:
            if future.done():
                return
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(settle)
