"""Opening databases: pragmas, versioned migrations applied at start."""

from __future__ import annotations

from pathlib import Path

from playhouse.migrate import SqliteMigrator, migrate

from brender.server import db as dbmod
from brender.server.models import Chunk, Client, Frame, Job, SchemaVersion


def test_new_database_is_at_the_latest_version(tmp_path: Path) -> None:
    database = dbmod.open_database(f"sqlite:///{tmp_path / 'a.db'}")
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert [v.version for v in SchemaVersion.select()] == [len(dbmod.MIGRATIONS)]
    database.close()
    # Opening again changes nothing.
    database = dbmod.open_database(f"sqlite:///{tmp_path / 'a.db'}")
    assert SchemaVersion.select().count() == 1
    database.close()


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    database = dbmod.open_database(url)
    # Turn it back into what version 1 made.
    database.execute_sql("DROP INDEX job_request_id")
    migrate(
        SqliteMigrator(database).drop_column(Job._meta.table_name, "request_id"),
        *(SqliteMigrator(database).drop_column(Job._meta.table_name, c)
          for c in ("movie", "movie_status", "movie_file")),
        SqliteMigrator(database).drop_column(Job._meta.table_name, "storage"),
        SqliteMigrator(database).drop_column(Job._meta.table_name, "manifest"),
        SqliteMigrator(database).drop_column(Job._meta.table_name, "timeout"),
        SqliteMigrator(database).drop_column(Frame._meta.table_name, "log_tail"),
        SqliteMigrator(database).drop_column(Chunk._meta.table_name, "failed_client"),
        *(SqliteMigrator(database).drop_column(Job._meta.table_name, c)
          for c in ("file_version", "blender", "autoexec")),
        *(SqliteMigrator(database).drop_column(Client._meta.table_name, c)
          for c in ("blenders", "allow_autoexec")),
    )  # fmt: skip
    database.execute_sql("DROP TABLE blocklist")
    database.execute_sql("DROP TABLE attempt")
    database.execute_sql("DROP INDEX frame_finished_at")
    database.execute_sql("DROP INDEX chunk_job_id_status_frame_start")
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=1)
    database.close()

    database = dbmod.open_database(url)
    columns = {c.name for c in database.get_columns(Job._meta.table_name)}
    assert "timeout" in columns
    assert "log_tail" in {c.name for c in database.get_columns(Frame._meta.table_name)}
    assert "failed_client" in {c.name for c in database.get_columns(Chunk._meta.table_name)}
    assert database.table_exists("blocklist")
    assert {"file_version", "blender", "autoexec"} <= columns
    assert "blenders" in {c.name for c in database.get_columns(Client._meta.table_name)}
    assert {"request_id", "storage", "manifest"} <= columns
    assert {"movie", "movie_status", "movie_file"} <= columns
    assert database.table_exists("attempt")
    attempt_columns = {c.name for c in database.get_columns("attempt")}
    assert {"job_id", "number", "client_id", "exit_code", "log_tail"} <= attempt_columns
    assert "attempt_job_id_number" in {i.name for i in database.get_indexes("attempt")}
    cascade = [fk for fk in database.get_foreign_keys("attempt") if fk.column == "job_id"]
    assert cascade and cascade[0].dest_table == "job"
    assert sorted(v.version for v in SchemaVersion.select()) == [1, 2, 3, 4, 5, 6]
    database.close()
