"""What a scenario is, and what it is given to run: its size, a scratch folder, a profiler."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from bench.procs import Server
from bench.profile import Profiler, summarize
from bench.report import Result

SIZES = ("full", "quick", "toy")
"""full: the issue's figures. quick: the same thing smaller, well under a minute. toy: the
smallest size that still runs every step, for the test suite."""

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes(Generic[T]):
    """A scenario's parameters at each size."""

    full: T
    quick: T
    toy: T

    def pick(self, size: str) -> T:
        return {"full": self.full, "quick": self.quick, "toy": self.toy}[size]


@dataclass
class Context:
    size: str
    workdir: Path
    profile: bool = False
    started: float = 0.0
    brender: bool = True  # peers: measure brender beside its peers (--no-brender: peers only)

    def say(self, message: str) -> None:
        """Progress, on stderr: stdout is kept for the table and the JSON line."""
        print(f"[{time.perf_counter() - self.started:7.1f} s] {message}", file=sys.stderr)

    @contextlib.contextmanager
    def profiled(self, server: Server, name: str) -> Iterator[None]:
        """Sample the server with py-spy for the block, when `--profile` was given."""
        if not self.profile or not Profiler.available():
            yield
            return
        profiler = Profiler(server.pid, self.workdir, name).start()
        time.sleep(0.3)  # py-spy attaches
        try:
            yield
        finally:
            raw = profiler.stop()
            if raw.exists():
                print(f"-- profile of the server during {name} ({raw}) --", file=sys.stderr)
                print(summarize(raw), file=sys.stderr)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: Callable[[Context], Result]
