"""Every benchmark scenario runs to its end at a toy size and prints a valid JSON last line.

Benchmarks are not tests: nothing here looks at a figure or a timing, only at the shape of
what `python -m bench NAME --quick` prints (with the hidden `--toy`, the smallest size that
still runs every step of the scenario).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"scenario", "metric", "value", "unit", "target", "better", "meets"}


def bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def scenario_names() -> list[str]:
    listed = bench("--list", timeout=60)
    assert listed.returncode == 0, listed.stderr
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_prints_a_json_last_line(name: str, request: pytest.FixtureRequest) -> None:
    if name == "overhead":
        request.getfixturevalue("blender")  # skipped without Blender, as the e2e tests are
    if name == "peers":
        pytest.importorskip("huey")  # the bench extra; the test extra installs it too
    done = bench(name, "--quick", "--toy")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    result = json.loads(last)
    assert isinstance(result, dict)
    assert result.keys() >= KEYS, result
    assert result["scenario"] == name
    assert isinstance(result["value"], int | float)
    assert result["better"] in ("lower", "higher")
    assert isinstance(result["meets"], bool)


def test_the_cycle_bench_runs_every_frame_through_the_farm() -> None:
    """`python -m bench.cycle` (the loop's Python per frame, no sockets): every frame of its
    job is reported, and it says what it measured."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.cycle", "--nodes", "5", "--frames", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["frames"] == 60 and out["nodes"] == 5
    assert {"loop_us_per_frame", "writer_us_per_frame", "harness_us_per_frame"} <= set(out)
