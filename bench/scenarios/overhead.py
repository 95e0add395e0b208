"""overhead: one real local node rendering 24 frames of a real scene (about a second a frame
here) with the job's default chunking, against `blender -b … -a` on the same file.

Then, with the node's warm Blender (on by default): a round with one-frame chunks on the same
scene, and one on a heavy scene (a big hidden mesh, uncompressed: its load takes ≥ 1 s), where
a Blender per chunk would pay the load every frame.

Rounds of (plain, farm with the default chunking), then one farm run with the seed's old
default (about eight chunks). The figure is the median over the rounds of farm / plain, each
pair run back to back so that other load on the machine hits both alike. Farm time runs from
the `job submit` request to the job's `finished_at` (the server's clock, same host). Blender's
start and file load is paid once per chunk, which the old-default run shows.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.client import AsyncApi, submit_request
from bench.farmwork import wait_job
from bench.procs import Server
from bench.report import Check, Result
from bench.scenario import Context, Scenario, Sizes
from bench.scene import BLENDER, PlainRun, blender_available, make_scene, render_plain

TARGET = 1.05
TARGET_HEAVY = 1.10


@dataclass(frozen=True)
class Size:
    frames: int
    resolution: int
    samples: int
    rounds: int


SIZES = Sizes(full=Size(24, 256, 48, 3), quick=Size(6, 128, 32, 1), toy=Size(2, 32, 1, 1))
HEAVY = Sizes(full=2000, quick=1000, toy=50)
"""The heavy scene's hidden grid, faces a side."""


async def _wait_node(api: AsyncApi, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await api.ok({"item": "client", "action": "read", "filters": {"online": True}}):
        if time.monotonic() > deadline:
            raise TimeoutError("the local node did not connect")
        await asyncio.sleep(0.1)


async def _farm(
    ctx: Context, server: Server, blend: Path, out: Path, size: Size, chunk: int | None, tag: str
) -> dict[str, Any]:
    api = await AsyncApi.connect(server.tcp_port)
    await _wait_node(api)
    request = submit_request(
        f"overhead-{tag}",
        size.frames,
        blend_file=str(blend),
        chunk_size=chunk,
        output=str(out / "####"),
    )
    submitted = time.time()
    job = await api.ok(request)
    with ctx.profiled(server, f"overhead-{tag}"):
        row = await wait_job(api, job["id"], timeout=3600, every=0.1)
    chunks = await api.request(
        {"item": "chunk", "action": "read", "filters": {"job_id": job["id"]}, "limit": 1}
    )
    await api.close()
    if row["status"] != "completed":
        raise RuntimeError(f"the farm's job ended {row['status']}: {row.get('error')}")
    return {
        "seconds": row["finished_at"] - submitted,
        "chunk_size": row["chunk_size"],
        "chunks": chunks["total"],
    }


def _plain(ctx: Context, blend: Path, out: Path, size: Size) -> PlainRun:
    run = render_plain(blend, out, 1, size.frames)
    ctx.say(f"plain Blender: {run.seconds:.2f} s (start-up and load {run.startup:.2f} s)")
    return run


def old_default(frames: int) -> int:
    """The seed's default before automatic chunking: about eight chunks, at most 50 frames."""
    return max(1, min(50, -(-frames // 8)))


def _farm_run(ctx: Context, blend: Path, size: Size, chunk: int | None, tag: str) -> dict[str, Any]:
    extra = ["--local-node", "--blender", BLENDER]
    with Server(ctx.workdir / f"farm-{tag}", extra=extra).start() as server:
        got = asyncio.run(_farm(ctx, server, blend, ctx.workdir / f"out-{tag}", size, chunk, tag))
        server.stop()
    ctx.say(f"farm ({tag}): {got['seconds']:.2f} s, {got['chunks']} chunk(s)")
    return got


def run(ctx: Context) -> Result:
    if not blender_available():
        raise RuntimeError(f"no Blender at {BLENDER} (set BRENDER_BENCH_BLENDER)")
    size = SIZES.pick(ctx.size)
    blend = ctx.workdir / "scene.blend"
    make_scene(blend, 1, size.frames, samples=size.samples, resolution=size.resolution)
    rounds: list[tuple[PlainRun, dict[str, Any]]] = []
    for i in range(size.rounds):
        plain = _plain(ctx, blend, ctx.workdir / f"plain-{i}", size)
        rounds.append((plain, _farm_run(ctx, blend, size, None, f"default-{i}")))
    old = _farm_run(ctx, blend, size, old_default(size.frames), "old-default")
    one_plain = _plain(ctx, blend, ctx.workdir / "plain-chunk1", size)
    one = _farm_run(ctx, blend, size, 1, "chunk1")
    heavy = ctx.workdir / "heavy.blend"
    make_scene(
        heavy,
        1,
        size.frames,
        samples=size.samples,
        resolution=size.resolution,
        heavy=HEAVY.pick(ctx.size),
    )
    heavy_plain = _plain(ctx, heavy, ctx.workdir / "plain-heavy", size)
    heavy_one = _farm_run(ctx, heavy, size, 1, "heavy-chunk1")
    ratios = [farm["seconds"] / plain.seconds for plain, farm in rounds]
    ratio = statistics.median(ratios)
    plain_mean = statistics.mean(plain.seconds for plain, _ in rounds)
    startup = statistics.mean(plain.startup for plain, _ in rounds)
    frame_mean = statistics.mean(t for plain, _ in rounds for t in plain.frame_seconds)
    default = rounds[0][1]
    table: list[dict[str, Any]] = [
        {
            "run": f"round {i + 1}",
            "plain s": plain.seconds,
            "farm s": farm["seconds"],
            "chunking": "automatic" if farm["chunk_size"] == 0 else farm["chunk_size"],
            "chunks": farm["chunks"],
            "farm / plain": farm["seconds"] / plain.seconds,
        }
        for i, (plain, farm) in enumerate(rounds)
    ]
    table.append(
        {
            "run": "the old default",
            "plain s": plain_mean,
            "farm s": old["seconds"],
            "chunking": old["chunk_size"],
            "chunks": old["chunks"],
            "farm / plain": old["seconds"] / plain_mean,
        }
    )
    for label, plain, farm in (
        ("one-frame chunks", one_plain, one),
        ("heavy scene, one-frame chunks", heavy_plain, heavy_one),
    ):
        table.append(
            {
                "run": label,
                "plain s": plain.seconds,
                "farm s": farm["seconds"],
                "chunking": farm["chunk_size"],
                "chunks": farm["chunks"],
                "farm / plain": farm["seconds"] / plain.seconds,
            }
        )
    one_ratio = one["seconds"] / one_plain.seconds
    heavy_ratio = heavy_one["seconds"] / heavy_plain.seconds
    return Result(
        "overhead",
        ctx.size,
        [
            Check("farm_over_plain", ratio, "ratio", TARGET, "lower"),
            Check("chunk1_over_plain", one_ratio, "ratio", TARGET, "lower"),
            Check("heavy_chunk1_over_plain", heavy_ratio, "ratio", TARGET_HEAVY, "lower"),
        ],
        table=table,
        details={
            "frames": size.frames,
            "scene": {"resolution": size.resolution, "samples": size.samples},
            "rounds": size.rounds,
            "ratios": ratios,
            "plain_seconds": [plain.seconds for plain, _ in rounds],
            "farm_default_seconds": [farm["seconds"] for _, farm in rounds],
            "default_chunk_size": default["chunk_size"],
            "default_chunks": default["chunks"],
            "old_default_chunk_size": old["chunk_size"],
            "old_default_ratio": old["seconds"] / plain_mean,
            "blender_startup_s": startup,
            "mean_frame_s": frame_mean,
            "chunk1_ratio": one_ratio,
            "heavy_startup_s": heavy_plain.startup,
            "heavy_chunk1_ratio": heavy_ratio,
        },
        notes=[
            "figure = median over the rounds of farm / plain (each pair back to back)",
            f"Blender's start and load (~{startup:.2f} s here) is paid once per chunk",
        ],
    )


SCENARIO = Scenario(
    "overhead",
    "one real node, 24 frames of a real scene, default chunking, against plain blender -a",
    run,
)
