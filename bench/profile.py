"""Sampling the server with py-spy while a scenario runs (`python -m bench NAME --profile`).

py-spy's raw output (collapsed stacks) is summarised here as the functions that are on the
stack in the most samples (inclusive) and the ones that are on top (self), so a report can
name the bottleneck without a flame graph viewer. The raw file stays for a closer look.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from bench.report import format_table


class Profiler:
    """`py-spy record` on one process, from `start()` to `stop()`."""

    def __init__(self, pid: int, out_dir: Path, name: str, rate: int = 200) -> None:
        self.pid = pid
        self.raw = out_dir / f"{name}.pyspy.txt"
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("py-spy") is not None

    def start(self) -> Profiler:
        cmd = ["py-spy", "record", "--pid", str(self.pid), "--format", "raw", "--nolineno"]
        cmd += ["--idle", "--nonblocking", "--rate", str(self.rate), "--output", str(self.raw)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self) -> Path:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.raw


def summarize(raw: Path, top: int = 25) -> str:
    """The busiest functions of a py-spy raw file, as text tables (inclusive and self)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    if not total:
        return "no samples (is py-spy allowed to attach? run as root or with ptrace rights)"

    def rows(counter: Counter[str]) -> list[dict[str, object]]:
        return [
            {"share %": round(100 * n / total, 1), "function (file)": frame[:110]}
            for frame, n in counter.most_common(top)
        ]

    return "\n".join(
        [
            f"{total} samples of the server (idle time included: epoll waits show as such)",
            "-- on the stack (inclusive) --",
            format_table(rows(inclusive)),
            "-- on top (self) --",
            format_table(rows(own)),
        ]
    )
