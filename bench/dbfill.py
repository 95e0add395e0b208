"""Filling a farm's database to a size: frames through the API, client rows with sqlite3.

Frames go in as big `job submit`s (the server creates their rows in bulk), so filling is
itself a measurement. Clients cannot be made through the API (a client is a node that said
hello), and 10,000 real connections would measure something else: their rows are inserted
straight into the SQLite file while the server is stopped, as a farm that has seen that many
nodes would have them.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import submit_request
from bench.procs import Server

JOB_FRAMES = 100_000


@dataclass
class Fill:
    frames: int = 0
    jobs: list[int] = field(default_factory=list)
    seconds: float = 0.0
    creates: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0


def fill_frames(server: Server, frames: int, *, paused: bool = False) -> Fill:
    """Submit jobs of up to 100,000 frames (default chunking) until `frames` exist."""
    fill = Fill()
    start = time.perf_counter()
    with server.api() as api:
        while fill.frames < frames:
            count = min(JOB_FRAMES, frames - fill.frames)
            seconds, job = api.timed(
                submit_request(f"fill-{len(fill.jobs)}", count, paused=paused, project="fill")
            )
            fill.jobs.append(job["id"])
            fill.creates.append(seconds)
            fill.frames += count
            fill.peak_rss_mb = max(fill.peak_rss_mb, server.rss_mb())
    fill.seconds = time.perf_counter() - start
    return fill


def insert_clients(db_path: Path, count: int, prefix: str, online: bool = True) -> float:
    """Insert `count` client rows (node ids `{prefix}-000000`…, as the simulated nodes use) into
    a stopped server's SQLite database; answers the seconds it took. `online` leaves them as a
    killed server would, for the next start to clean up."""
    start = time.perf_counter()
    now = time.time()
    rows = [
        (
            f"{prefix}-{i:06d}",
            f"{prefix}-{i:04d}",
            f"{prefix}-{i:04d}",
            f"02:c0:{(i >> 24) & 255:02x}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}",
            "enabled",
            int(online),
            "3.4.1",
            2,
            8 * 2**30,
            now,
            now,
        )
        for i in range(count)
    ]
    con = sqlite3.connect(db_path)
    try:
        with con:
            con.executemany(
                "INSERT INTO client (node_id, name, hostname, mac_address, status, online, "
                "blender_version, blenders, allow_autoexec, cpus, memory, last_seen, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, '[]', 0, ?, ?, ?, ?)",
                rows,
            )
    finally:
        con.close()
    return time.perf_counter() - start


def database_file(server: Server) -> Path:
    """The SQLite file a server started without --db uses."""
    return server.data_dir / "brender.db"
