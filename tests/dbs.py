"""Fresh databases for tests: an SQLite file, or a new database on a real PostgreSQL server.

PostgreSQL comes from `BRENDER_TEST_PG` (an admin URL, e.g.
postgresql://brender:brender@127.0.0.1:5432/postgres), which `.ci/run` sets after starting
Debian's PostgreSQL. Without it the PostgreSQL cases skip, except in CI where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

KINDS = ["sqlite", "postgresql"]


def pg_admin_url() -> str | None:
    url = os.environ.get("BRENDER_TEST_PG")
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail("BRENDER_TEST_PG is not set: .ci/run must start PostgreSQL for the tests")
    pytest.skip("PostgreSQL tests need BRENDER_TEST_PG (set by .ci/run)")
    return None


@contextmanager
def fresh_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """Answers the URL of an empty database of this kind, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'brender.db'}"
        return
    import psycopg2

    admin = pg_admin_url()
    assert admin is not None
    name = f"brender_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        base = admin.rsplit("/", 1)[0]
        yield f"{base}/{name}"
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows straight from the database (not through the server), with `?` placeholders."""
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.split("///", 1)[1]) as db:
            return list(db.execute(sql, params).fetchall())
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return list(cur.fetchall())
    finally:
        conn.close()
