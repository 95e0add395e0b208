"""Opening the database from a URL and bringing its schema up to date."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import peewee as pw
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as apply_operations

from brender.server.errors import FarmError
from brender.server.models import (
    ALL_MODELS,
    Attempt,
    Blocklist,
    Chunk,
    Client,
    Frame,
    Job,
    SchemaVersion,
    database,
)

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


def _v1_baseline(db: pw.Database) -> None:
    """The first schema: applied only to databases made before versioning (none exist)."""
    db.create_tables([m for m in ALL_MODELS if m not in (Blocklist, Attempt)])


def _v2_faults(db: pw.Database) -> None:
    """Per-job hang timeout, a failed frame's log tail, the node a chunk last failed on,
    indexes for recent frames and for a job's next chunk, and the per-job node blocklist."""
    migrator = SchemaMigrator.from_database(db)
    apply_operations(
        migrator.add_column(Job._meta.table_name, "timeout", Job.timeout),
        migrator.add_column(Frame._meta.table_name, "log_tail", Frame.log_tail),
        migrator.add_column(Chunk._meta.table_name, "failed_client", Chunk.failed_client),
        migrator.add_index(Frame._meta.table_name, ("finished_at",), False),
        migrator.add_index(Chunk._meta.table_name, ("job_id", "status", "frame_start"), False),
    )
    db.create_tables([Blocklist])


def _v3_versions(db: pw.Database) -> None:
    """Blender versions: the file's and the job's requirement, auto-exec, a node's Blenders."""
    migrator = SchemaMigrator.from_database(db)
    apply_operations(
        migrator.add_column(Job._meta.table_name, "file_version", Job.file_version),
        migrator.add_column(Job._meta.table_name, "blender", Job.blender),
        migrator.add_column(Job._meta.table_name, "autoexec", Job.autoexec),
        migrator.add_column(Client._meta.table_name, "blenders", Client.blenders),
        migrator.add_column(Client._meta.table_name, "allow_autoexec", Client.allow_autoexec),
    )


def _v4_uploads(db: pw.Database) -> None:
    """Jobs without shared storage: where the job's files are, and its manifest's hash.
    The columns are spelt out here, as they were when this step was written."""
    migrator = SchemaMigrator.from_database(db)
    apply_operations(
        migrator.add_column(Job._meta.table_name, "storage", pw.CharField(default="shared")),
        migrator.add_column(Job._meta.table_name, "manifest", pw.CharField(default="")),
    )


def _v5_request_ids(db: pw.Database) -> None:
    """`job.request_id`: a submit sent again (its answer was lost) answers the first job."""
    migrator = SchemaMigrator.from_database(db)
    # Spelt out as it was when this step was written; the unique index comes with the column.
    field = pw.CharField(null=True, unique=True)
    apply_operations(migrator.add_column(Job._meta.table_name, "request_id", field))


def _v6_attempts(db: pw.Database) -> None:
    """`attempt`: one row per frame per try (node, start, end, exit, error, log tail), so a
    frame's retries stay visible after it is done; a job's movie (what the scene asked for,
    its status, its file). Frozen copies of the tables as this step
    made them, not today's models."""

    class Base(pw.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Job(Base):
        pass

    class Client(Base):
        pass

    class Attempt(Base):
        job = pw.ForeignKeyField(Job, on_delete="CASCADE")
        number = pw.IntegerField()
        chunk_id = pw.IntegerField()
        client = pw.ForeignKeyField(Client, null=True, on_delete="SET NULL")
        outcome = pw.CharField()
        exit_code = pw.IntegerField(null=True)
        error = pw.TextField(default="")
        log_tail = pw.TextField(default="")
        started_at = pw.DoubleField(null=True)
        finished_at = pw.DoubleField(null=True)

        class Meta:
            indexes = ((("job", "number"), False),)

    db.create_tables([Attempt])
    migrator = SchemaMigrator.from_database(db)
    apply_operations(
        migrator.add_column("job", "movie", pw.TextField(default="")),
        migrator.add_column("job", "movie_status", pw.CharField(default="")),
        migrator.add_column("job", "movie_file", pw.TextField(default="")),
    )


# Append-only: index + 1 is the version a step brings. A new database gets today's models
# and the latest version at once; an older one runs the steps it has not seen, in order.
MIGRATIONS: list[Callable[[pw.Database], None]] = [
    _v1_baseline,
    _v2_faults,
    _v3_versions,
    _v4_uploads,
    _v5_request_ids,
    _v6_attempts,
]


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
    except Exception as exc:  # driver errors (sqlite3, psycopg2) share no base class
        raise FarmError(f"cannot open database {url}: {exc}") from exc
    database.initialize(db)
    migrate(db)
    return db


def migrate(db: pw.Database) -> int:
    """Bring the schema to the latest version; answers that version."""
    latest = len(MIGRATIONS)
    with db.atomic():
        fresh = not db.table_exists(Job._meta.table_name)
        db.create_tables([SchemaVersion])
        current = int(SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar() or 0)
        if fresh:
            db.create_tables(ALL_MODELS)
            SchemaVersion.create(version=latest)
            return latest
        for version in range(current + 1, latest + 1):
            log.info("applying schema migration %d", version)
            MIGRATIONS[version - 1](db)
            SchemaVersion.create(version=version)
    return latest
