"""submit: create one 100,000-frame job (`job submit`, default chunking) and read its first page
of frames, over the TCP API as the add-on or a pipeline script would.

The headline is the median of `repeats` creates (each a new job in the same database); the
details add a job cut into one-frame chunks (100,000 chunk rows, what `throughput` submits).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.client import job_request, submit_request
from bench.procs import Server
from bench.report import Check, Result
from bench.scenario import Context, Scenario, Sizes

TARGET = 1.0  # seconds for the create


@dataclass(frozen=True)
class Size:
    frames: int
    repeats: int
    one_frame_chunks: bool


SIZES = Sizes(full=Size(100_000, 3, True), quick=Size(100_000, 1, False), toy=Size(5_000, 1, False))


def _first_page(job_id: int) -> dict[str, Any]:
    return {
        "item": "frame",
        "action": "read",
        "filters": {"job_id": job_id},
        "order_by": "number",
        "limit": 1000,
    }


def run(ctx: Context) -> Result:
    size = SIZES.pick(ctx.size)
    table: list[dict[str, Any]] = []
    with Server(ctx.workdir / "server").start() as server, server.api() as api:
        rss_before = server.rss_mb()
        for i in range(size.repeats):
            with ctx.profiled(server, f"submit-{i}"):
                create, job = api.timed(submit_request(f"submit-{i}", size.frames, paused=True))
            page, frames = api.timed(_first_page(job["id"]))
            read, _ = api.timed(job_request(job["id"]))
            table.append(
                {
                    "job": job["id"],
                    "frames": size.frames,
                    "chunk_size": job["chunk_size"],
                    "create s": create,
                    "first page s": page,
                    "page rows": len(frames),
                    "job read s": read,
                }
            )
            ctx.say(f"job {job['id']}: created in {create:.3f} s, first page in {page:.3f} s")
        if size.one_frame_chunks:
            create, job = api.timed(
                submit_request("submit-chunks-of-1", size.frames, chunk_size=1, paused=True)
            )
            page, frames = api.timed(_first_page(job["id"]))
            table.append(
                {
                    "job": job["id"],
                    "frames": size.frames,
                    "chunk_size": 1,
                    "create s": create,
                    "first page s": page,
                    "page rows": len(frames),
                }
            )
        rss_after = server.rss_mb()
        server.stop()
    creates = [r["create s"] for r in table[: size.repeats]]
    median = statistics.median(creates)
    return Result(
        "submit",
        ctx.size,
        [Check("create_seconds", median, "s", TARGET, "lower")],
        table=table,
        details={
            "frames": size.frames,
            "repeats": size.repeats,
            "creates_s": creates,
            "first_page_s": table[0]["first page s"],
            "one_frame_chunks_create_s": table[-1]["create s"] if size.one_frame_chunks else None,
            "server_rss_mb": {"before": rss_before, "after": rss_after},
        },
        notes=["create = the `job submit` round trip, default chunking, median of the repeats"],
    )


SCENARIO = Scenario("submit", "create one 100,000-frame job and read its first page of frames", run)
