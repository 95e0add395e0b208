"""The statements run for every chunk handed out and every frame reported, as fixed SQL.

Building them with peewee's query builder each time cost more than SQLite running them (see
bench/RESULTS.md). The text is the same on SQLite and PostgreSQL but for the placeholder.
"""

from __future__ import annotations

from typing import Any

from brender.server.models import database

BEST_JOBS_SQL = (
    "SELECT * FROM job WHERE status IN ({p}, {p})"
    " AND id NOT IN (SELECT job_id FROM blocklist WHERE client_id = {p} AND failures >= {p})"
    " AND EXISTS (SELECT 1 FROM chunk WHERE chunk.job_id = job.id AND chunk.status = {p})"
    " ORDER BY priority DESC, id LIMIT 8"
)
NEXT_CHUNKS_SQL = (
    "SELECT * FROM chunk WHERE job_id = {p} AND status = {p} ORDER BY frame_start LIMIT 8"
)
TAKE_CHUNK_SQL = (
    "UPDATE chunk SET status = {p}, client_id = {p}, started_at = {p}, attempts = attempts + 1,"
    " exit_code = NULL WHERE id = {p} AND status = {p}"
)
SEND_FRAMES_SQL = (
    "UPDATE frame SET status = {p}, client_id = {p}, started_at = {p}, attempts = attempts + 1"
    " WHERE chunk_id = {p} AND status = {p}"
)
SENT_FRAMES_SQL = "SELECT number FROM frame WHERE chunk_id = {p} AND status = {p} ORDER BY number"
CHUNK_SQL = "SELECT * FROM chunk WHERE id = {p}"
CHUNK_LEFT_SQL = (
    "SELECT status, COUNT(*) FROM frame WHERE chunk_id = {p} AND status IN ({p}, {p})"
    " GROUP BY status"
)
JOB_LEFT_SQL = "SELECT 1 FROM frame WHERE job_id = {p} AND status IN ({p}, {p}) LIMIT 1"
FRAME_DONE_SQL = (
    "UPDATE frame SET status = {p}, client_id = {p}, output_file = {p}, render_time = {p},"
    " finished_at = {p}, error = '' WHERE chunk_id = {p} AND number = {p} AND status IN ({p}, {p})"
)


def sql(template: str) -> str:
    return template.format(p=database.obj.param)


def run(template: str, *params: Any) -> Any:
    """Run one of the statements above; answers the cursor (rowcount, fetchall)."""
    return database.execute_sql(sql(template), params)
