"""Steps several scenarios share: waiting for a job to end, reading its frames' timestamps."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.client import AsyncApi, job_request
from bench.report import percentile

FINAL = ("completed", "failed", "canceled")
PAGE = 2000
"""Frames per read: a 10,000-frame page (the API's maximum) is about 3 MB, past the 1 MiB line
cap `brender.wire` holds every TCP line to."""


async def wait_job(api: AsyncApi, job_id: int, timeout: float, every: float = 0.1) -> Any:
    """Poll the job until it is final; answers its row (with `frames` counts)."""
    deadline = time.monotonic() + timeout
    while True:
        job = (await api.ok(job_request(job_id)))[0]
        if job["status"] in FINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:g} s: {job}")
        await asyncio.sleep(every)


async def finish_times(api: AsyncApi, job_id: int) -> list[float]:
    """Every done frame's `finished_at` (server clock), in order: when it was persisted."""
    times: list[float] = []
    offset = 0
    while True:
        page = await api.request(
            {
                "item": "frame",
                "action": "read",
                "filters": {"job_id": job_id, "status": "done"},
                "order_by": "id",
                "limit": PAGE,
                "offset": offset,
            }
        )
        rows = page["data"]
        times.extend(r["finished_at"] for r in rows if r["finished_at"] is not None)
        offset += len(rows)
        if not rows or offset >= page["total"]:
            break
    times.sort()
    return times


def sustained_rate(times: list[float], trim: float = 0.1) -> float:
    """Frames per second between the `trim` and `1 - trim` quantiles of the finish times: the
    steady state, without the start-up burst and the last stragglers."""
    if len(times) < 10:
        return float("nan")
    lo = int(len(times) * trim)
    hi = int(len(times) * (1 - trim)) - 1
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else float("inf")


def latency_figures(latencies: list[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds."""
    return {
        "samples": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
    }
