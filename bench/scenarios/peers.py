"""peers: huey's SqliteHuey on this machine beside brender, in the same run.

huey drains as many no-op tasks as the throughput scenario has one-frame chunks (100,000; 2,000
with --quick), from a full queue in a real SQLite file, run by huey's own consumer process at
each worker model and count tried; the best drain is run again at huey's default durability
(SQLite `synchronous=FULL`), with `fsync=False` (OFF) and with tight polling. The headline
figures are at brender's own durability (WAL, `synchronous=NORMAL`). The rate is taken as
brender's: the middle 80 % of the completion times. Then tasks go one at a time into an idle
consumer at each polling setting tried: pickup = enqueue to the start of its execution.

brender's figure comes from its throughput scenario, run first in the same command (skip it
with --no-brender). huey: `pip install 'brender[bench]'`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import random
from dataclasses import dataclass
from typing import Any

from bench.report import Check, Result
from bench.scenario import Context, Scenario, Sizes
from bench.scenarios import throughput


@dataclass(frozen=True)
class Size:
    budget: float  # seconds a drain may take before its consumer is stopped
    workers: tuple[int, ...]  # worker counts tried for each worker model in the drains
    samples: int  # tasks per idle-pickup run
    max_gap: float  # idle seconds before each of them, drawn uniformly up to this
    idle_configs: int  # how many of idle_configs()'s settings to try, in its order


SIZES = Sizes(
    full=Size(240.0, (1, 4, 16, 32), 100, 0.5, 5),
    quick=Size(10.0, (1, 4, 16, 32), 8, 0.3, 5),
    toy=Size(10.0, (1, 2), 3, 0.05, 2),
)
OVER_HUEY = 1.5
"""Issue 11's target: brender's throughput at least 1.5x huey-SQLite's best drain."""
WORKER_TYPES = ("thread", "process")
"""huey's `greenlet` workers need gevent, and SQLite calls would block its one hub anyway."""


TIGHT = {"delay": 0.001, "max_delay": 0.001, "backoff": 1.0}
"""Polling that never backs off: an idle worker polls every millisecond."""


def idle_configs(size: Size, best_drain: Any) -> list[Any]:
    """The polling settings tried for pickup, thread workers unless the best drain says else."""
    from bench.hueypeer import Config

    configs = [
        Config(),  # huey's defaults: -d 0.1 -m 10 -b 1.15
        dataclasses.replace(Config(), **TIGHT),
        Config(delay=0.01, max_delay=0.1),
        dataclasses.replace(Config(workers=4), **TIGHT),
        dataclasses.replace(best_drain, delay=0.1, max_delay=10.0, backoff=1.15),
    ][: size.idle_configs]
    return list(dict.fromkeys(configs))


@dataclass
class HueyRuns:
    rows: list[dict[str, Any]]  # every run, in order
    fastest: dict[str, Any]  # the best drain at brender's durability
    by_sync: dict[str, float]  # the best drain's worker model at each durability
    quickest: dict[str, Any]  # the idle run with the lowest pickup p99
    default: dict[str, Any]  # the idle run at huey's default polling


def run_huey(ctx: Context, size: Size, tasks: int) -> HueyRuns:
    from bench import hueypeer
    from bench.hueypeer import Config

    folder = ctx.workdir / "huey"
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "full-queue.db"
    seconds = hueypeer.fill(template, tasks)
    ctx.say(f"huey: {tasks} tasks enqueued in {seconds:.1f} s ({tasks / seconds:.0f}/s)")
    rows: list[dict[str, Any]] = []

    def drain(config: Config) -> dict[str, Any]:
        row = hueypeer.drain(config, template, tasks, size.budget, folder / f"run-{len(rows)}")
        ctx.say(f"huey drain {config.label}: {row['tasks/s']:.0f} tasks/s, {row['completed']} done")
        rows.append(row)
        return row

    tried = {
        config: drain(config)
        for config in (Config(kind, count) for kind in WORKER_TYPES for count in size.workers)
    }
    best = max(tried, key=lambda c: _num(tried[c]["tasks/s"], -math.inf))
    by_sync = {best.sync: tried[best]["tasks/s"]}
    for sync in ("full", "off"):
        by_sync[sync] = drain(dataclasses.replace(best, sync=sync))["tasks/s"]
    drain(dataclasses.replace(best, **TIGHT))  # polling, when the queue is never empty

    gaps = random.Random(11)
    idles = []
    for config in idle_configs(size, best):
        pauses = [gaps.uniform(0.01, size.max_gap) for _ in range(size.samples)]
        row = hueypeer.idle(config, pauses, folder / f"run-{len(rows)}")
        ctx.say(
            f"huey idle {config.label}: pickup p50 {row['pickup p50 ms']:.2f} ms,"
            f" p99 {row['pickup p99 ms']:.2f} ms, consumer cpu {row['consumer cpu %']:.0f} %"
        )
        rows.append(row)
        idles.append(row)
    quickest = min(idles, key=lambda r: _num(r["pickup p99 ms"], math.inf))
    return HueyRuns(rows, tried[best], by_sync, quickest, idles[0])


def _num(value: Any, missing: float) -> float:
    """A figure to rank by, `missing` for NaN (no figure): it must rank last."""
    return value if isinstance(value, float) and not math.isnan(value) else missing


def run(ctx: Context) -> Result:
    if importlib.util.find_spec("huey") is None:
        raise RuntimeError("peers needs huey: pip install 'brender[bench]'")
    size = SIZES.pick(ctx.size)
    tasks = throughput.pick_size(ctx.size).frames
    brender: Result | None = None
    if ctx.brender:
        sub = dataclasses.replace(ctx, workdir=ctx.workdir / "brender", profile=False)
        sub.workdir.mkdir(parents=True, exist_ok=True)
        brender = throughput.run(sub)
        ctx.say(f"brender throughput: {brender.checks[0].value:.0f} frames/s")
    huey = run_huey(ctx, size, tasks)

    fastest, quickest = huey.fastest, huey.quickest
    details: dict[str, Any] = {
        "tasks": tasks,
        "huey_version": _huey_version(),
        "huey_tasks_per_second": fastest["tasks/s"],
        "huey_tasks_per_second_overall": fastest["tasks/s overall"],
        "huey_best_drain": fastest["config"],
        "huey_tasks_per_second_by_sync": huey.by_sync,
        "huey_pickup_p50_ms": quickest["pickup p50 ms"],
        "huey_pickup_p99_ms": quickest["pickup p99 ms"],
        "huey_best_pickup": quickest["config"],
        "huey_best_pickup_cpu_share": quickest["consumer cpu %"] / 100,
        "huey_default_polling_pickup_p50_ms": huey.default["pickup p50 ms"],
        "huey_default_polling_pickup_p99_ms": huey.default["pickup p99 ms"],
        "huey_runs": huey.rows,
    }
    checks = [
        Check("huey_tasks_per_second", fastest["tasks/s"], "tasks/s", throughput.TARGET, "higher")
    ]
    notes = [
        "huey_tasks_per_second: the best drain at brender's durability (synchronous=NORMAL)",
        "huey_pickup_*: the idle run with the lowest p99 (see its consumer cpu %)",
        "the headline's target is the one brender's throughput is held to",
    ]
    table = [{k: v for k, v in r.items() if k != "command"} for r in huey.rows]
    if brender is not None:
        fps = brender.checks[0].value
        details["frames_per_second"] = fps
        details["brender_frames_per_second_overall"] = brender.details.get(
            "frames_per_second_overall"
        )
        details["brender_every_frame_persisted"] = brender.details.get(
            "every_reported_frame_persisted"
        )
        details["brender_over_huey"] = fps / fastest["tasks/s"]
        target = round(OVER_HUEY * fastest["tasks/s"], 1)
        checks.append(Check("frames_per_second", fps, "frames/s", target, "higher"))
        notes.append(
            f"frames_per_second: brender's throughput scenario, against {OVER_HUEY:g}x huey's best"
        )
        table.insert(0, {"mode": "brender", "config": "throughput scenario", "tasks/s": fps})
    else:
        notes.append("brender was not run (--no-brender)")
    return Result("peers", ctx.size, checks, table=table, details=details, notes=notes)


def _huey_version() -> str:
    import huey

    return str(getattr(huey, "__version__", "?"))


SCENARIO = Scenario(
    "peers",
    "huey's SqliteHuey on this machine, drained and idle, beside brender's throughput",
    run,
)
