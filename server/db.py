"""Opening the database from a URL and bringing its schema up to date."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import peewee as pw
from playhouse.db_url import connect

from brender.server.errors import FarmError
from brender.server.models import ALL_MODELS, SchemaVersion, database

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",  # with WAL: durable at each checkpoint, never corrupt
    "cache_size": -64 * 1024,  # 64 MiB
    "busy_timeout": 5000,
}


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'brender.db').resolve()}"


def _create_v1(db: pw.Database) -> None:
    db.create_tables(ALL_MODELS)


# Schema changes are appended here, never edited: index + 1 is the version they bring.
MIGRATIONS: list[Callable[[pw.Database], None]] = [_create_v1]


def open_database(url: str) -> pw.Database:
    """Connect to `url` (sqlite:///…, postgresql://…), bind the models, migrate to the latest."""
    kwargs = {}
    if url.startswith("sqlite"):
        kwargs["pragmas"] = SQLITE_PRAGMAS
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        db = connect(url, **kwargs)
        db.connect(reuse_if_open=True)
    except (pw.PeeweeException, RuntimeError, ValueError) as exc:
        raise FarmError(f"cannot open database {url}: {exc}") from exc
    except Exception as exc:  # driver errors (psycopg2.OperationalError, …) share no base
        raise FarmError(f"cannot open database {url}: {exc}") from exc
    database.initialize(db)
    migrate(db)
    return db


def migrate(db: pw.Database) -> int:
    """Apply the migrations this database has not seen; answers the schema version."""
    with db.atomic():
        db.create_tables([SchemaVersion])
        row = SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar()
        current = int(row or 0)
        for version in range(current + 1, len(MIGRATIONS) + 1):
            log.info("applying schema migration %d", version)
            MIGRATIONS[version - 1](db)
            SchemaVersion.create(version=version)
    return len(MIGRATIONS)
