"""`python -m bench --list` | `python -m bench NAME [--quick] [--profile] [--keep DIR]`.

Runs one scenario, prints a readable table, and prints as its last line one JSON object:
`{"scenario", "metric", "value", "unit", "target", "better", "meets", …details}`.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.scenario import Context
from bench.scenarios import SCENARIOS
from brender.server.main import GC_THRESHOLDS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", help="the scenario to run (see --list)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--quick", action="store_true", help="a smaller size, well under a minute")
    # The test suite's size: every step of the scenario, at the smallest size that runs them.
    p.add_argument("--toy", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--profile", action="store_true", help="sample the server with py-spy (to stderr)"
    )
    p.add_argument(
        "--no-brender",
        dest="brender",
        action="store_false",
        help="peers: measure the peers only, without brender's throughput beside them",
    )
    p.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, databases)")
    return p


def tracebacks(workdir: Path) -> int:
    """Tracebacks in the servers' logs: a figure from a server that failed is not a figure."""
    return sum(
        log.read_text(errors="replace").count("Traceback (most recent call last)")
        for log in workdir.rglob("server.log")
    )


def server_loops(workdir: Path) -> list[str]:
    """The event loops the servers of the run said they ran on (`event loop: …` at start)."""
    found = set()
    for log in workdir.rglob("server.log"):
        found.update(re.findall(r"event loop: (\w+)", log.read_text(errors="replace")))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list or not args.name:
        width = max(len(n) for n in SCENARIOS)
        for name, scenario in SCENARIOS.items():
            print(f"{name.ljust(width)}  {scenario.summary}")
        return 0 if args.list else 2
    scenario = SCENARIOS.get(args.name)
    if scenario is None:
        print(f"unknown scenario {args.name!r}; see --list", file=sys.stderr)
        return 2
    size = "toy" if args.toy else "quick" if args.quick else "full"
    # The harness holds 1,000 simulated nodes: tuned as the server is, so that its own full
    # collections do not stall the nodes it simulates (and count in the latencies it measures).
    gc.set_threshold(*GC_THRESHOLDS)
    keep = bool(args.keep or args.profile)
    if args.keep:
        workdir = Path(args.keep).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix=f"brender-bench-{scenario.name}-"))
    ctx = Context(
        size=size,
        workdir=workdir,
        profile=args.profile,
        started=time.perf_counter(),
        brender=args.brender,
    )
    ctx.say(f"{scenario.name} ({size}) in {workdir}")
    try:
        result = scenario.run(ctx)
        result.details["server_tracebacks"] = tracebacks(workdir)
        result.details["server_loops"] = server_loops(workdir)
    except Exception as exc:
        traceback.print_exc()
        print(
            json.dumps(
                {
                    "scenario": scenario.name,
                    "metric": None,
                    "value": None,
                    "unit": None,
                    "target": None,
                    "better": None,
                    "meets": False,
                    "size": size,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
        )
        return 1
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            ctx.say(f"kept {workdir}")
    result.details.setdefault("seconds", round(time.perf_counter() - ctx.started, 1))
    if result.details["server_tracebacks"]:
        result.notes.append("the server logged tracebacks during the run: see its log (--keep)")
    print(result.text())
    print(result.json_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
