"""huey, the peer `python -m bench peers` measures beside brender: a real SqliteHuey file in the
run's folder, huey's own consumer (`huey_consumer`) in its own process, and a no-op task.

Each completed task appends one fixed-size record (enqueued, started, completed, all
`time.time()`) to a file of its worker process, from huey's `complete` signal: only completed
tasks count, the driver counts them by file size without touching the queue, and process workers
share nothing with it. Needs huey: `pip install 'brender[bench]'`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil
from huey import SqliteHuey
from huey.signals import SIGNAL_COMPLETE
from huey.storage import SqliteStorage

from bench.farmwork import latency_figures, sustained_rate

ROOT = Path(__file__).resolve().parents[1]
ENV_DB, ENV_SYNC, ENV_RECORDS = "BENCH_HUEY_DB", "BENCH_HUEY_SYNC", "BENCH_HUEY_RECORDS"
RECORD = struct.Struct("<ddd")  # enqueued, started, completed
SYNCS = ("full", "normal", "off")
"""SQLite `synchronous` of huey's connections: FULL is `fsync=True` (huey 3's default, which
leaves SQLite's), NORMAL is brender's (server/db.py; with WAL, no fsync per commit), OFF is
`fsync=False` (huey 2's default)."""


class NormalSyncStorage(SqliteStorage):
    """huey's SqliteStorage at brender's durability: its `fsync` option has FULL or OFF only."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn


class _Sink:
    """Appends records to `<pid>.rec` in a folder: one write each, atomic with O_APPEND."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pid = -1
        self.fd = -1
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        if self.pid != os.getpid():  # first record of this (possibly forked) process
            with self.lock:
                if self.pid != os.getpid():
                    path = self.folder / f"{os.getpid()}.rec"
                    self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    self.pid = os.getpid()
        os.write(self.fd, data)


def build(filename: str, sync: str, records: Path | None = None) -> tuple[SqliteHuey, Any]:
    """A SqliteHuey on `filename` and its no-op task; with `records`, completions are recorded."""
    if sync not in SYNCS:
        raise ValueError(f"sync must be one of {SYNCS}, not {sync!r}")
    options: dict[str, Any] = {
        "normal": {"storage_class": NormalSyncStorage},
        "full": {"fsync": True},
        "off": {"fsync": False},
    }[sync]
    huey = SqliteHuey("bench", filename=filename, **options)
    started: dict[str, float] = {}

    def noop(enqueued: float, task: Any = None) -> None:
        started[task.id] = time.time()

    task = huey.task(context=True, name="noop")(noop)
    if records is not None:
        sink = _Sink(records)

        @huey.signal(SIGNAL_COMPLETE)
        def completed(name: str, done: Any, *args: Any) -> None:
            began = started.pop(done.id, None)
            if began is not None:
                sink.write(RECORD.pack(done.args[0], began, time.time()))

    return huey, task


def from_environment() -> tuple[SqliteHuey, Any]:
    """The consumer's side (bench/hueyapp.py): file, durability and records from `Consumer`."""
    records = os.environ.get(ENV_RECORDS)
    return build(
        os.environ[ENV_DB], os.environ.get(ENV_SYNC, "full"), Path(records) if records else None
    )


def read_records(folder: Path) -> list[tuple[float, float, float]]:
    out: list[tuple[float, float, float]] = []
    for path in folder.glob("*.rec"):
        data = path.read_bytes()
        out.extend(RECORD.iter_unpack(data[: len(data) - len(data) % RECORD.size]))
    return out


@dataclass(frozen=True)
class Config:
    """One way to run huey's consumer: its worker model and polling options, and durability."""

    worker_type: str = "thread"
    workers: int = 1
    delay: float = 0.1  # -d: first sleep after an empty poll (huey's default)
    max_delay: float = 10.0  # -m: longest sleep between polls
    backoff: float = 1.15  # -b: each empty poll multiplies the sleep by this
    sync: str = "normal"

    def options(self) -> list[str]:
        return [
            *("-k", self.worker_type, "-w", str(self.workers)),
            *("-d", f"{self.delay:g}", "-m", f"{self.max_delay:g}", "-b", f"{self.backoff:g}"),
            *("-n", "-q"),  # no periodic tasks (there are none); warnings only
        ]

    @property
    def label(self) -> str:
        return (
            f"{self.worker_type} x{self.workers} -d {self.delay:g} -m {self.max_delay:g}"
            f" -b {self.backoff:g} sync={self.sync}"
        )


class Consumer:
    """`huey_consumer bench.hueyapp.huey OPTIONS` (huey.bin.huey_consumer) on `db`, in its own
    process group, stopped with SIGINT (huey's graceful stop: tasks in hand finish)."""

    def __init__(self, config: Config, db: Path, workdir: Path) -> None:
        self.config = config
        self.db = db
        self.records = workdir / "records"
        self.log_path = workdir / "consumer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            *("-m", "huey.bin.huey_consumer", "bench.hueyapp.huey"),
            *self.config.options(),
        ]

    def start(self) -> Consumer:
        self.records.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = {
            **os.environ,
            ENV_DB: str(self.db),
            ENV_SYNC: self.config.sync,
            ENV_RECORDS: str(self.records),
            "PYTHONPATH": path,
        }
        log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 (open for the process's life)
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def completed(self) -> int:
        """Tasks completed so far, from the size of the record files."""
        size = sum(p.stat().st_size for p in self.records.glob("*.rec"))
        return size // RECORD.size

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"huey_consumer exited with {self.proc.returncode}:\n{tail}")

    def wait_completed(self, count: int, timeout: float, every: float = 0.0005) -> None:
        deadline = time.monotonic() + timeout
        while self.completed() < count:
            if time.monotonic() > deadline:
                self.check_alive()
                raise TimeoutError(f"huey completed {self.completed()} of {count} tasks")
            time.sleep(every)

    def cpu_seconds(self) -> float:
        """CPU time of the consumer and its worker processes."""
        if self.proc is None:
            return 0.0
        total = 0.0
        try:
            main = psutil.Process(self.proc.pid)
            for p in (main, *main.children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = p.cpu_times()
                    total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
        return total

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group start() made: only ours
            self.proc.wait()

    def __enter__(self) -> Consumer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def fill(db: Path, tasks: int) -> float:
    """Enqueue `tasks` no-ops through huey's API into a new file (synchronous OFF: the filling
    is not what is measured); answers its seconds."""
    huey, noop = build(str(db), "off")
    start = time.perf_counter()
    for _ in range(tasks):
        noop(time.time())
    huey.storage.close()
    return time.perf_counter() - start


def copy_db(src: Path, dst: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(src)) as a,
        contextlib.closing(sqlite3.connect(dst)) as b,
    ):
        a.backup(b)


def queued(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("select count(*) from task").fetchone()[0])


def drain(
    config: Config, template: Path, tasks: int, budget: float, workdir: Path
) -> dict[str, Any]:
    """Start a consumer on a copy of a full queue; answers its rates once it has completed every
    task, or what it completed in `budget` seconds."""
    workdir.mkdir(parents=True)
    db = workdir / "huey.db"
    copy_db(template, db)
    with Consumer(config, db, workdir) as consumer:
        start = time.monotonic()
        while consumer.completed() == 0 and time.monotonic() - start < budget:
            consumer.check_alive()
            time.sleep(0.005)
        cpu, wall = consumer.cpu_seconds(), time.monotonic()  # from its first task on
        while consumer.completed() < tasks and time.monotonic() - start < budget:
            consumer.check_alive()
            time.sleep(0.02)
        cpu, wall = consumer.cpu_seconds() - cpu, time.monotonic() - wall
    records = read_records(consumer.records)
    ends = sorted(r[2] for r in records)
    span = ends[-1] - min(r[1] for r in records) if records else 0.0
    return {
        "mode": "drain",
        "config": config.label,
        "command": " ".join(["huey_consumer", "bench.hueyapp.huey", *config.options()]),
        "tasks": tasks,
        "completed": len(records),
        "left in queue": queued(db),
        "tasks/s": sustained_rate(ends),
        "tasks/s overall": len(records) / span if span > 0 else float("nan"),
        "consumer cpu %": 100 * cpu / wall if wall > 0 else float("nan"),
    }


def idle(config: Config, gaps: list[float], workdir: Path) -> dict[str, Any]:
    """One task at a time into an idle consumer, each after the previous has completed and a
    pause of `gaps[i]` seconds: pickup = enqueue to the start of its execution in a worker."""
    workdir.mkdir(parents=True)
    db = workdir / "huey.db"
    huey, noop = build(str(db), config.sync)  # the enqueuing side; creates the tables
    with Consumer(config, db, workdir) as consumer:
        noop(time.time())  # a first task: the consumer is up and polling
        consumer.wait_completed(1, timeout=60)
        cpu, wall = consumer.cpu_seconds(), time.monotonic()
        for i, gap in enumerate(gaps):
            time.sleep(gap)
            noop(time.time())
            consumer.wait_completed(i + 2, timeout=60)
        cpu, wall = consumer.cpu_seconds() - cpu, time.monotonic() - wall
    huey.storage.close()
    records = sorted(read_records(consumer.records))[1:]
    lat = latency_figures([started - enqueued for enqueued, started, _ in records])
    return {
        "mode": "idle",
        "config": config.label,
        "command": " ".join(["huey_consumer", "bench.hueyapp.huey", *config.options()]),
        "tasks": len(gaps),
        "completed": len(records),
        "pickup p50 ms": lat["p50_ms"],
        "pickup p99 ms": lat["p99_ms"],
        "pickup max ms": lat["max_ms"],
        "consumer cpu %": 100 * cpu / wall if wall > 0 else float("nan"),
    }
