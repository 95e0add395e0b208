"""Real brender processes for the benchmarks: a `brender-server` on free loopback ports, its
memory, its start-up and shutdown times. (A copy of what tests/farmctl.py does, without
pytest, plus the clocks the benchmarks need.)"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import psutil

from bench.client import CHEAP_REQUEST, HOST, Api

START_LINE = re.compile(r"^brender-server: tcp (\S+):(\d+) http (\S+) db (\S+)")


def clean_env() -> dict[str, str]:
    """This environment without any BRENDER_* setting, so a stray variable cannot bend a run;
    `BENCH_SERVER_LOOP=uvloop` runs the servers on uvloop (BRENDER_LOOP, said in the output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRENDER_")}
    if os.environ.get("BENCH_SERVER_LOOP"):
        env["BRENDER_LOOP"] = os.environ["BENCH_SERVER_LOOP"]
    return env


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted` (1,000 nodes = 1,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    """`python -m brender.server.main` on ports 0 (any free port), 127.0.0.1 only."""

    def __init__(
        self,
        data_dir: Path,
        *,
        db_url: str | None = None,
        extra: list[str] | None = None,
        log_level: str = "INFO",
    ) -> None:
        self.data_dir = data_dir
        self.db_url = db_url
        self.extra = extra or []
        self.log_level = log_level
        self.log_path = data_dir / "server.log"
        self.proc: subprocess.Popen[str] | None = None
        self.tcp_port = 0
        self.http_url = ""
        self.launched_at = 0.0  # perf_counter() just before the process was started
        self.listening_after = 0.0  # seconds from launch to its start-up line

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "brender.server.main", "--host", HOST]
        cmd += ["--tcp-port", "0", "--http-port", "0", "--data-dir", str(self.data_dir)]
        cmd += ["--log-level", self.log_level]
        # A scenario's API connection may wait out a whole run (a slow machine's 300 s budget)
        # without a request: the server's idle timeout must not close it under the harness.
        cmd += ["--idle-timeout", "86400", *self.extra]
        if self.db_url:
            cmd += ["--db", self.db_url]
        return cmd

    def start(self, timeout: float = 60.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log: IO[str] = open(self.log_path, "a")  # noqa: SIM115 (open for the process's life)
        self.launched_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env()
        )
        log.close()  # the child holds its own copy
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the server exited before listening; see {self.log_path}")
            match = START_LINE.match(line)
            if match:
                self.listening_after = time.perf_counter() - self.launched_at
                self.tcp_port = int(match.group(2))
                self.http_url = match.group(3)
                return self
        raise RuntimeError("the server did not print its start-up line")

    def wait_serving(self, timeout: float = 60.0) -> float:
        """Seconds from launch to the first successful API answer (a cheap `read`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with Api(self.tcp_port, timeout=timeout) as api:
                    api.ok(CHEAP_REQUEST)
                return time.perf_counter() - self.launched_at
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)

    def api(self) -> Api:
        return Api(self.tcp_port)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_mb(self) -> float:
        """The server's resident memory now, in MiB."""
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def loop_cpu_seconds(self) -> float:
        """CPU time of the server's main thread (its event loop) so far. Per frame, this is
        the figure a loaded machine moves least: CPU time, not wall time, of the one thread."""
        for thread in psutil.Process(self.pid).threads():
            if thread.id == self.pid:
                return float(thread.user_time + thread.system_time)
        return 0.0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> float:
        """Send `sig` and wait for the exit; answers the seconds that took (NaN on a hang)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        start = time.perf_counter()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return float("nan")
        return time.perf_counter() - start

    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(signal.SIGKILL, timeout=10)
