"""throughput: 1,000 simulated nodes, 100,000 zero-cost frames, chunks of one frame.

The figure is frames persisted per second in the steady state (the middle 80 % of the frames'
`finished_at`, the server's own clock), after checking that every frame a node reported is
`done` in the database. Anchors: Tractor claims "over 500 tasks per second"; an OpenCue
scheduler stress run shows 975 frames/s.

A run has a time budget: when the farm is too slow to finish the job in it, the job is paused,
the chunks in flight end, and the figure is the rate over the frames done so far (the details
say how many). At the target rate the full job takes 10 s, far inside the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import simnodes
from bench.client import AsyncApi, job_request, submit_request, verb_request
from bench.farmwork import finish_times, latency_figures, sustained_rate, wait_job
from bench.procs import Server, raise_fd_limit
from bench.report import Check, Result
from bench.scenario import Context, Scenario, Sizes
from bench.simnodes import CostModel, SimulatedNodes

TARGET = 10_000.0  # frames/s


@dataclass(frozen=True)
class Size:
    nodes: int
    frames: int
    budget: float  # seconds the job may run before it is paused and the rate taken


SIZES = Sizes(
    full=Size(1000, 100_000, 300.0), quick=Size(200, 2_000, 20.0), toy=Size(10, 100, 10.0)
)
SIZE_ENV = "BENCH_THROUGHPUT_SIZE"
"""`NODES,FRAMES` in the environment replaces the size's nodes and frames (a run between quick
and full, when measuring the harness or the server; budget as the size's)."""


def pick_size(size: str) -> Size:
    picked = SIZES.pick(size)
    given = os.environ.get(SIZE_ENV, "").strip()
    if not given:
        return picked
    nodes, frames = (int(part) for part in given.split(","))
    return Size(nodes, frames, max(picked.budget, frames / 1000.0))


async def pause_and_settle(api: AsyncApi, job_id: int, timeout: float = 300.0) -> Any:
    """Pause the job and wait until no frame of it is rendering; answers its row."""
    await api.ok(verb_request([job_id], "pause"))
    deadline = time.monotonic() + timeout
    while True:
        row = (await api.ok(job_request(job_id)))[0]
        if not row["frames"]["rendering"]:
            return row
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still rendering {timeout:g} s after its pause")
        await asyncio.sleep(0.2)


class WalWatch:
    """The peak size of the SQLite WAL (`brender.db-wal`) while the job runs, sampled every
    50 ms: under sustained load checkpoints must keep it bounded."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "brender.db-wal"
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, self.path.stat().st_size)
            await asyncio.sleep(0.05)

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.peak / 2**20


async def _measure(ctx: Context, server: Server, size: Size) -> Result:
    api = await AsyncApi.connect(server.tcp_port)
    start = time.perf_counter()
    job = await api.ok(submit_request("throughput", size.frames, chunk_size=1, paused=True))
    submit_s = time.perf_counter() - start
    ctx.say(f"job {job['id']}: {size.frames} frames in chunks of 1, submitted in {submit_s:.2f} s")
    nodes = SimulatedNodes(server.tcp_port, size.nodes, CostModel())
    connect_s = await nodes.connect()
    ctx.say(f"{size.nodes} simulated nodes connected in {connect_s:.2f} s ({simnodes.LOOP})")
    cpu_harness = time.process_time()
    kernel_harness = os.times().system
    cpu_server = server.cpu_seconds()
    cpu_loop = server.loop_cpu_seconds()
    wall = time.perf_counter()
    wal = WalWatch(server.data_dir)
    wal.start()
    with ctx.profiled(server, "throughput"):
        await api.ok(verb_request([job["id"]], "resume"))
        try:
            await nodes.wait_frames(size.frames, timeout=size.budget)
            finished = True
        except TimeoutError:
            finished = False
        wall = time.perf_counter() - wall
    cpu_harness = time.process_time() - cpu_harness
    kernel_harness = os.times().system - kernel_harness
    cpu_server = server.cpu_seconds() - cpu_server
    cpu_loop = server.loop_cpu_seconds() - cpu_loop
    if finished:
        ctx.say(f"the nodes reported {size.frames} frames in {wall:.1f} s; waiting for the job")
        row = await wait_job(api, job["id"], timeout=600)
    else:
        ctx.say(f"budget of {size.budget:g} s spent at {nodes.stats.frames} frames: pausing")
        row = await pause_and_settle(api, job["id"])
    wal_peak_mb = await wal.stop()
    reported = nodes.stats.frames
    times = await finish_times(api, job["id"])
    await nodes.close()
    await api.close()

    done = row["frames"]["done"]
    span = (max(times) - row["started_at"]) if times else 0.0
    overall = done / span if span > 0 else 0.0
    sustained = sustained_rate(times)
    lat = latency_figures([lat for _, lat in nodes.stats.latencies])
    loop_us = 1e6 * cpu_loop / reported if reported else 0.0
    other_us = 1e6 * (cpu_server - cpu_loop) / reported if reported else 0.0
    harness_us = 1e6 * cpu_harness / reported if reported else 0.0
    kernel_us = 1e6 * kernel_harness / reported if reported else 0.0
    table = [
        {
            "nodes": size.nodes,
            "frames": size.frames,
            "done in db": done,
            "reported": reported,
            "job status": row["status"],
            "frames/s sustained": sustained,
            "frames/s overall": overall,
            "job seconds": span,
            "server cpu %": 100 * cpu_server / wall,
            "harness cpu %": 100 * cpu_harness / wall,
            "harness µs/frame": harness_us,
            "harness loop": simnodes.LOOP,
            "loop µs/frame": loop_us,
            "writer µs/frame": other_us,
            "drops": nodes.stats.lost,
            "idle->order p50 ms": lat["p50_ms"],
            "p99 ms": lat["p99_ms"],
            "WAL peak MiB": wal_peak_mb,
        }
    ]
    return Result(
        "throughput",
        ctx.size,
        [
            Check("frames_per_second_sustained", sustained, "frames/s", TARGET, "higher"),
            Check("reported_frames_not_done", float(reported - done), "frames", 0, "lower"),
        ],
        table=table,
        details={
            "nodes": size.nodes,
            "frames": size.frames,
            "chunk_size": 1,
            "frames_done_in_db": done,
            "frames_reported_by_nodes": reported,
            "every_reported_frame_persisted": done == reported,
            "finished_within_budget": finished,
            "budget_seconds": size.budget,
            "frames_per_second_overall": overall,
            "job_seconds": span,
            "submit_seconds": submit_s,
            "connect_seconds": connect_s,
            "server_cpu_share": cpu_server / wall,
            "harness_cpu_share": cpu_harness / wall,
            "harness_cpu_us_per_frame": harness_us,
            "harness_kernel_cpu_us_per_frame": kernel_us,
            "harness_loop": simnodes.LOOP,
            "loop_cpu_us_per_frame": loop_us,
            "other_threads_cpu_us_per_frame": other_us,
            "dispatch_latency_under_load": lat,
            "wal_peak_mib": wal_peak_mb,
            "rejected": nodes.stats.rejected,
            "connections_dropped_by_server": nodes.stats.lost,
            "anchors": {"tractor_tasks_per_s": 500, "opencue_stress_frames_per_s": 975},
        },
        notes=[
            "sustained = the middle 80 % of the frames by their finished_at in the database",
            "server cpu % near 100 means the server's one event loop is the limit",
            "loop µs/frame: CPU of the event loop's thread per reported frame; writer µs/frame:"
            " the other threads (the writer, mostly)",
            "harness µs/frame: CPU of the bench process (the simulated nodes, mostly) per"
            " reported frame; harness_kernel_cpu_us_per_frame: the part in the kernel (the"
            " sockets)",
            "reported_frames_not_done: reports the server never read (it dropped their node)",
        ],
    )


def run(ctx: Context) -> Result:
    size = pick_size(ctx.size)
    raise_fd_limit(size.nodes * 2 + 256)
    with Server(ctx.workdir / "server").start() as server:
        result = simnodes.run(_measure(ctx, server, size))
        server.stop()
    return result


SCENARIO = Scenario(
    "throughput",
    "1,000 simulated nodes, 100,000 zero-cost frames, chunk size 1: frames persisted/s",
    run,
)
