"""dispatch-latency: from a node becoming idle to its next order arriving, at 1, 100 and 1,000
simulated nodes.

Measured in the simulated node: from writing its `chunk_done` to receiving its next `render`.
Every farm size gets the same offered load, `RATE` chunk ends per second (1,000 nodes with
100 s chunks, 1 node with 0.1 s chunks), so the figures show what the number of connected
nodes costs, not a saturated server (the throughput scenario shows that). Chunk costs are
spread uniformly (0.5-1.5 x the mean; the first round 0.02-1 x) so the ends do not bunch.

The burst when a job arrives at a farm of idle nodes (all of them need an order at once) is
reported apart: `burst_seconds` is how long the last node waited.

Anchors: Flamenco's idle workers poll every 20 s, brender 1's every 1-2 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import simnodes
from bench.client import AsyncApi, submit_request, verb_request
from bench.farmwork import latency_figures
from bench.procs import Server, raise_fd_limit
from bench.report import Check, Result
from bench.scenario import Context, Scenario, Sizes
from bench.simnodes import CostModel, SimulatedNodes

TARGET_MS = 5.0  # p99 at the largest farm
RATE = 10.0  # chunk ends per second, whatever the farm's size


@dataclass(frozen=True)
class Size:
    farms: tuple[int, ...]
    window: float  # seconds of steady state measured per farm size


SIZES = Sizes(full=Size((1, 100, 1000), 60.0), quick=Size((1, 50, 200), 6.0), toy=Size((1, 5), 1.5))


def unit_hash(n: int) -> float:
    """A fixed pseudo-random number in [0, 1) for frame n (Knuth's multiplicative hash)."""
    return ((n * 2654435761) % 2**32) / 2**32


def spread_cost(mean: float, first_round: int) -> Callable[[int], float]:
    """Frame costs around `mean`; the first round is shorter so the ends start at once."""

    def cost(n: int) -> float:
        if n <= first_round:
            return mean * (0.02 + 0.98 * unit_hash(n))
        return mean * (0.5 + unit_hash(n))

    return cost


async def _one_farm(ctx: Context, server: Server, count: int, window: float) -> dict[str, Any]:
    mean = count / RATE
    frames = count + int(RATE * (window + 30)) + 100
    api = await AsyncApi.connect(server.tcp_port)
    job = await api.ok(
        submit_request(f"latency-{count}", frames, chunk_size=1, paused=True, project="latency")
    )
    nodes = SimulatedNodes(
        server.tcp_port, count, CostModel(spread_cost(mean, count)), prefix=f"lat{count}"
    )
    connect_s = await nodes.connect()
    ctx.say(f"{count} nodes connected in {connect_s:.2f} s; mean chunk {mean:g} s")
    resumed = time.perf_counter()
    with ctx.profiled(server, f"latency-{count}"):
        await api.ok(verb_request([job["id"]], "resume"))
        start = await nodes.wait_all_busy(timeout=900)
        await asyncio.sleep(max(0.0, start + window - time.perf_counter()))
    stop = time.perf_counter()
    latencies = nodes.latencies_since(start, stop)
    burst = start - resumed
    await api.ok(verb_request([job["id"]], "cancel"))
    await nodes.close()
    await api.close()
    figures = latency_figures(latencies)
    return {
        "nodes": count,
        "mean chunk s": mean,
        **figures,
        "chunk ends/s": len(latencies) / (stop - start),
        "burst_seconds": burst,
        "drops": nodes.stats.lost,
    }


def run(ctx: Context) -> Result:
    size = SIZES.pick(ctx.size)
    raise_fd_limit(max(size.farms) * 2 + 256)
    rows: list[dict[str, Any]] = []
    for count in size.farms:
        with Server(ctx.workdir / f"server-{count}").start() as server:
            rows.append(simnodes.run(_one_farm(ctx, server, count, size.window)))
            server.stop()
        ctx.say(f"{count} nodes: p50 {rows[-1]['p50_ms']:.2f} ms, p99 {rows[-1]['p99_ms']:.2f} ms")
    largest = rows[-1]
    metric = f"p99_ms_at_{largest['nodes']}_nodes"
    checks = [Check(metric, float(largest["p99_ms"]), "ms", TARGET_MS, "lower")]
    return Result(
        "dispatch-latency",
        ctx.size,
        checks,
        table=rows,
        details={
            "offered_chunk_ends_per_second": RATE,
            "window_seconds": size.window,
            "farms": {str(r["nodes"]): r for r in rows},
            "anchors": {"flamenco_poll_s": 20, "brender1_poll_s": [1, 2]},
        },
        notes=[
            f"every farm size gets the same load: {RATE:g} chunk ends/s",
            "burst_seconds: a job arrives at a farm of idle nodes; how long the last one waits",
        ],
    )


SCENARIO = Scenario(
    "dispatch-latency",
    "idle node to its next order, p50/p99, with 1, 100 and 1,000 simulated nodes",
    run,
)
