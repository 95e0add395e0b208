"""makespan: 50 simulated nodes of speeds 0.5x-2x, 2,000 frames whose cost varies ±50 % along
the shot. Efficiency = lower bound / makespan (chunkmodel.lower_bound).

Each policy runs for real against a fresh server: the job's default chunking (the headline;
automatic chunking since 3513dac), fixed chunks of 1, 5 and 10, and the default chunking for
warm nodes (they say so in their hello, and pay the start-up once per job, not per chunk). A chunk also pays
`STARTUP` x the mean frame cost: Blender's ~1.5 s start and file load against a 30 s frame.
The discrete-event model (bench/chunkmodel.py) runs the same policies with the dispatch delay
measured here (a check of the model), and policies the server does not have.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import chunkmodel, simnodes
from bench.client import AsyncApi, submit_request, verb_request
from bench.farmwork import wait_job
from bench.procs import Server, raise_fd_limit
from bench.report import Check, Result, percentile
from bench.scenario import Context, Scenario, Sizes
from bench.simnodes import CostModel, SimulatedNodes

TARGET = 0.97  # issue 11
STARTUP = 0.05  # per chunk, as a share of the mean frame cost (1.5 s against 30 s)


@dataclass(frozen=True)
class Size:
    nodes: int
    frames: int
    mean_cost: float  # seconds per frame at speed 1, on average over the shot


SIZES = Sizes(full=Size(50, 2000, 1.0), quick=Size(20, 400, 0.15), toy=Size(4, 40, 0.02))


def frame_cost(size: Size) -> Callable[[int], float]:
    """Cost along the shot: ±50 % around the mean, two heavy stretches and two light ones."""
    return lambda n: size.mean_cost * (1 + 0.5 * math.sin(4 * math.pi * (n - 1) / size.frames))


def node_speeds(count: int) -> list[float]:
    """0.5x to 2x, evenly spread, in a fixed shuffled order."""
    if count == 1:
        return [1.0]
    speeds = [0.5 + 1.5 * i / (count - 1) for i in range(count)]
    random.Random(7).shuffle(speeds)
    return speeds


async def _run_policy(
    ctx: Context, server: Server, size: Size, chunk: int | None, name: str, warm: bool = False
) -> dict[str, Any]:
    api = await AsyncApi.connect(server.tcp_port)
    job = await api.ok(submit_request("makespan", size.frames, chunk_size=chunk, paused=True))
    cost = CostModel(frame_cost(size), startup=STARTUP * size.mean_cost)
    nodes = SimulatedNodes(
        server.tcp_port, size.nodes, cost, speeds=node_speeds(size.nodes), warm=warm
    )
    await nodes.connect()
    resumed = time.time()
    with ctx.profiled(server, f"makespan-{name}"):
        await api.ok(verb_request([job["id"]], "resume"))
        row = await wait_job(api, job["id"], timeout=3600, every=0.05)
    latencies = [lat for _, lat in nodes.stats.latencies]
    await nodes.close()
    await api.close()
    return {
        "chunk_size": job["chunk_size"],
        "makespan": row["finished_at"] - resumed,
        "chunks": nodes.stats.chunks,
        "dispatch_p50_ms": percentile(latencies, 50) * 1000,
        "status": row["status"],
    }


def run(ctx: Context) -> Result:
    size = SIZES.pick(ctx.size)
    raise_fd_limit(size.nodes * 2 + 256)
    costs = [frame_cost(size)(n) for n in range(1, size.frames + 1)]
    speeds = node_speeds(size.nodes)
    bound = chunkmodel.lower_bound(costs, speeds)
    startup = STARTUP * size.mean_cost
    table: list[dict[str, Any]] = []
    policies = (("default", None, False), ("fixed 1", 1, False), ("fixed 5", 5, False),
                ("fixed 10", 10, False), ("default, warm nodes", None, True))  # fmt: skip
    for name, chunk, warm in policies:
        with Server(ctx.workdir / f"server-{len(table)}").start() as server:
            got = simnodes.run(_run_policy(ctx, server, size, chunk, name, warm))
            server.stop()
        if chunk is None:
            auto = "automatic" if got["chunk_size"] == 0 else str(got["chunk_size"])
            name = f"default ({auto}{', warm nodes: start-up once per job' if warm else ''})"
        efficiency = bound / got["makespan"]
        ctx.say(f"{name}: makespan {got['makespan']:.2f} s, efficiency {efficiency:.3f}")
        table.append({"policy": name, **got, "efficiency": efficiency})
    # The model, with the dispatch delay these runs measured (the median over the runs).
    dispatch = sorted(r["dispatch_p50_ms"] for r in table if not math.isnan(r["dispatch_p50_ms"]))
    delay = dispatch[len(dispatch) // 2] / 1000 if dispatch else 0.0
    farm = chunkmodel.Farm(speeds, startup, delay)
    auto = chunkmodel.server_auto()
    for row in table:
        if "warm" in row["policy"]:
            continue  # the model pays the start-up on every chunk
        policy = chunkmodel.fixed(row["chunk_size"]) if row["chunk_size"] else auto
        if policy is not None:
            span, _ = chunkmodel.makespan(costs, farm, policy)
            row["model makespan"], row["model efficiency"] = span, bound / span
    endgame = chunkmodel.server_endgame()
    endgame_efficiency = math.nan
    if auto is not None and endgame is not None:
        span, chunks = chunkmodel.makespan(costs, farm, auto, endgame=endgame)
        endgame_efficiency = bound / span
        table.append(
            {
                "policy": "model only: automatic + end-game rule",
                "chunks": chunks,
                "model makespan": span,
                "model efficiency": endgame_efficiency,
            }
        )
    for factor in (1.0, 2.0, 3.0):
        span, chunks = chunkmodel.makespan(costs, farm, chunkmodel.shrinking(factor))
        table.append(
            {
                "policy": f"model only: speeds known, shrinking /{factor:g}",
                "chunks": chunks,
                "model makespan": span,
                "model efficiency": bound / span,
            }
        )
    head = table[0]
    return Result(
        "makespan",
        ctx.size,
        [Check("efficiency_default_chunking", head["efficiency"], "ratio", TARGET, "higher")],
        table=table,
        details={
            "nodes": size.nodes,
            "frames": size.frames,
            "mean_frame_cost_s": size.mean_cost,
            "startup_per_chunk_s": startup,
            "lower_bound_s": bound,
            "default_chunk_size": head["chunk_size"],
            "efficiency": {r["policy"]: r["efficiency"] for r in table if "efficiency" in r},
            "model_dispatch_delay_ms": delay * 1000,
            "model_efficiency": {
                r["policy"]: r["model efficiency"] for r in table if "model efficiency" in r
            },
            "model_efficiency_automatic_endgame": endgame_efficiency,
        },
        notes=[
            f"lower bound {bound:.2f} s: max(total work / total speed, longest frame / fastest)",
            "efficiency = lower bound / makespan; model columns: bench/chunkmodel.py",
            "chunk_size 0 is the server's automatic chunking (server/chunking.py)",
            "end-game rule: chunking.should_take_frame; the server's rows include it (the"
            " scheduler asks it before each claim), the model-only row shows it alone",
        ],
    )


SCENARIO = Scenario(
    "makespan",
    "50 nodes 0.5x-2x, 2,000 frames ±50 %: makespan vs lower bound, default and fixed chunks",
    run,
)
