"""Many rows with one statement: SQLite's multi-row form writes what executemany would."""

from __future__ import annotations

import peewee as pw
import pytest

from brender.server import bulk
from brender.server.bulk import Bulk

ONE = "UPDATE t SET v = COALESCE({p}, v), w = {p} WHERE k = {p}"
MANY = (
    "UPDATE t SET v = COALESCE(x.column1, t.v), w = x.column2"
    " FROM (VALUES {values}) AS x WHERE t.k = x.column3"
)


def table(db: pw.Database, n: int) -> None:
    db.execute_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, w INTEGER)")
    db.cursor().executemany("INSERT INTO t VALUES (?, 'old', 0)", [(k,) for k in range(n)])


def rows_of(db: pw.Database) -> list[tuple[object, ...]]:
    return list(db.execute_sql("SELECT k, v, w FROM t ORDER BY k").fetchall())


@pytest.mark.parametrize("many", [MANY, None])
def test_multi_row_writes_equal_one_statement_per_row(
    db: pw.Database, many: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "MAX_PARAMS", 30)  # groups of 10 rows: 103 rows in 11 statements
    table(db, 120)
    writer = Bulk(db)
    assert writer.multi
    rows = [(None if k % 3 else f"new{k}", k * 2, k) for k in range(103)]
    with db.atomic():
        writer.write(ONE, many, rows)
    expect = [(k, "old" if k % 3 else f"new{k}", k * 2) for k in range(103)]
    expect += [(k, "old", 0) for k in range(103, 120)]
    assert rows_of(db) == expect


def test_no_rows_writes_nothing(db: pw.Database) -> None:
    table(db, 2)
    Bulk(db).write(ONE, MANY, [])
    assert rows_of(db) == [(0, "old", 0), (1, "old", 0)]
