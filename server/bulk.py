"""Writing many rows with one fixed statement, as cheaply as the database allows.

On SQLite a statement with a multi-row form (`Statement.many`) is sent once per group of rows
(up to SQLite's limit on parameters), so the driver steps once per group instead of once per
row. Elsewhere (PostgreSQL), and for statements without that form, `executemany`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import peewee as pw

MAX_PARAMS = 32_000
"""Parameters per statement: SQLite's limit is 32,766 since 3.32 (999 before)."""

MULTI_ROW_SQLITE = (3, 33, 0)
"""UPDATE … FROM (VALUES …) needs SQLite 3.33."""


class Bulk:
    def __init__(self, db: pw.Database) -> None:
        self.db = db
        self.param: str = db.param
        self.multi = isinstance(db, pw.SqliteDatabase) and (
            sqlite3.sqlite_version_info >= MULTI_ROW_SQLITE
        )
        self._sql: dict[tuple[str, int], str] = {}

    def write(self, sql: str, many: str | None, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if many is None or not self.multi or len(rows) == 1:
            self.db.cursor().executemany(sql.format(p=self.param), rows)
            return
        width = len(rows[0])
        step = max(1, MAX_PARAMS // width)
        cursor = self.db.cursor()
        for start in range(0, len(rows), step):
            group = rows[start : start + step]
            cursor.execute(self._multi(many, width, len(group)), [v for row in group for v in row])

    def _multi(self, many: str, width: int, count: int) -> str:
        key = (many, count)
        sql = self._sql.get(key)
        if sql is None:
            one = "(" + ", ".join([self.param] * width) + ")"
            sql = many.format(values=", ".join([one] * count))
            if len(self._sql) > 256:
                self._sql.clear()
            self._sql[key] = sql
        return sql
