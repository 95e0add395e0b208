"""memory: the server's resident memory with 1,000 connected nodes and 1,000,000 frames in the
database.

Steps: fill 1,000,000 frames through the API and stop (the filling server's peak is reported
apart: it measures `job submit`, not a farm at rest); start a fresh server on that database;
connect 1,000 simulated nodes, each holding a chunk (their frames take an hour); read what the
dashboard reads (server status, every job with its progress, a page of frames, every client);
then sample the server's RSS for a few seconds. The headline is the largest sample.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench import simnodes
from bench.client import AsyncApi
from bench.dbfill import fill_frames
from bench.procs import Server, raise_fd_limit
from bench.report import Check, Result
from bench.scenario import Context, Scenario, Sizes
from bench.simnodes import CostModel, SimulatedNodes

TARGET_MB = 200.0


@dataclass(frozen=True)
class Size:
    frames: int
    nodes: int
    sample_seconds: float


SIZES = Sizes(
    full=Size(1_000_000, 1000, 5.0), quick=Size(100_000, 200, 2.0), toy=Size(5_000, 5, 0.5)
)

READS: list[dict[str, Any]] = [
    {"item": "server", "action": "status"},
    {"item": "job", "action": "read", "limit": 100},
    {"item": "frame", "action": "read", "limit": 1000, "order_by": "number"},
    {"item": "client", "action": "read", "limit": 1000},
]


async def _at_rest(ctx: Context, server: Server, size: Size) -> tuple[dict[str, float], int]:
    rss: dict[str, float] = {"fresh server": server.rss_mb()}
    nodes = SimulatedNodes(server.tcp_port, size.nodes, CostModel(lambda n: 3600.0), prefix="mem")
    await nodes.connect()
    await nodes.wait_all_busy(timeout=900)
    rss["nodes connected and busy"] = server.rss_mb()
    ctx.say(f"{size.nodes} nodes busy; RSS {rss['nodes connected and busy']:.1f} MiB")
    api = await AsyncApi.connect(server.tcp_port)
    for request in READS:
        await api.ok(request)
    rss["after dashboard reads"] = server.rss_mb()
    samples = []
    deadline = time.perf_counter() + size.sample_seconds
    while time.perf_counter() < deadline:
        samples.append(server.rss_mb())
        await asyncio.sleep(0.1)
    rss["at rest (max of samples)"] = max(samples)
    await api.close()
    await nodes.close()
    return rss, nodes.stats.lost


def run(ctx: Context) -> Result:
    size = SIZES.pick(ctx.size)
    raise_fd_limit(size.nodes * 2 + 256)
    data = ctx.workdir / "server"
    with Server(data).start() as filler:
        fill = fill_frames(filler, size.frames)
        after_fill = filler.rss_mb()
        filler.stop()
    ctx.say(
        f"{fill.frames} frames in {fill.seconds:.1f} s; filling server peaked at "
        f"{fill.peak_rss_mb:.1f} MiB"
    )
    with Server(data).start() as server:
        server.wait_serving()
        rss, dropped = simnodes.run(_at_rest(ctx, server, size))
        server.stop()
    peak = max(rss.values())
    table = [{"moment": k, "rss MiB": v} for k, v in rss.items()]
    table.append({"moment": "(the filling server, after its last submit)", "rss MiB": after_fill})
    table.append(
        {"moment": "(the filling server, peak while submitting)", "rss MiB": fill.peak_rss_mb}
    )
    return Result(
        "memory",
        ctx.size,
        [Check("server_rss_mb", peak, "MiB", TARGET_MB, "lower")],
        table=table,
        details={
            "frames": fill.frames,
            "nodes": size.nodes,
            "rss_mb": rss,
            "filling_server_peak_rss_mb": fill.peak_rss_mb,
            "fill_seconds": fill.seconds,
            "connections_dropped_by_server": dropped,
        },
        notes=["RSS of a fresh server on the filled database; the filler's peak is a detail"],
    )


SCENARIO = Scenario(
    "memory",
    "server RSS with 1,000 connected nodes and 1,000,000 frames in the database",
    run,
)
