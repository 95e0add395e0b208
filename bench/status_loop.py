"""What `server status` costs the event loop on a big farm: `python -m bench.status_loop`.

In one process: a database of 1,000,000 frames (made once in `--db`'s folder, 10 jobs of
100,000 with a third done and a seventh failed), then `server status` ten times through the
real dispatcher while a 1 ms ticker on the loop records how late it wakes. For comparison,
the same counts grouped on the loop, as the handler did before the scheduler kept them. Prints
the loop thread's CPU time per call (measured without the ticker), the answer's latency and the
longest stall of the loop; and how long the scheduler took to load the farm at start.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import peewee as pw

from brender.server import actions, api
from brender.server.db import open_database
from brender.server.farm import Farm, FarmSettings
from brender.server.models import Frame, Job, database
from brender.server.services import jobs
from brender.server.store import Store

JOB_FRAMES = 100_000
Call = Callable[[Farm], Awaitable[dict[str, Any]]]


def fill(frames: int, output_root: Path) -> None:
    ids = itertools.count(1)

    def chunk_ids(count: int) -> list[int]:
        return [next(ids) for _ in range(count)]

    for n in range(0, frames, JOB_FRAMES):
        values = {"project": "p", "sequence": "s", "shot": f"sh{n}", "blend_file": "/x.blend"}
        values |= {"frame_end": min(JOB_FRAMES, frames - n), "chunk_size": 10, "paused": True}
        with database.atomic():
            jobs.submit_rows(values, output_root, chunk_ids)
    database.execute_sql("UPDATE frame SET status = 'done' WHERE id % 3 = 0")
    database.execute_sql("UPDATE frame SET status = 'failed' WHERE id % 7 = 0")


async def grouped_on_the_loop(farm: Farm) -> dict[str, Any]:
    """The counting of the handler before services/totals.py: on the loop's own thread."""

    def by_status(model: Any) -> dict[str, int]:
        query = model.select(model.status, pw.fn.COUNT(model.id)).group_by(model.status)
        return dict(query.tuples())

    return {"jobs": by_status(Job), "frames": by_status(Frame)}


async def server_status(farm: Farm) -> dict[str, Any]:
    answer = await api.handle(farm, {"item": "server", "action": "status"}, api.Caller())
    return dict(answer["data"])


async def measure(name: str, call: Call, farm: Farm, rounds: int = 10) -> None:
    cpu = []
    for _ in range(rounds):
        started = time.thread_time()
        await call(farm)
        cpu.append(time.thread_time() - started)
    lags: list[float] = []
    walls = []
    running = True

    async def ticker() -> None:
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            lags.append(now - last - 0.001)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    for _ in range(rounds):
        started = time.perf_counter()
        await call(farm)
        walls.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    running = False
    await task
    cpu.sort()
    walls.sort()
    print(
        f"{name}: loop-thread CPU per call {cpu[rounds // 2] * 1000:.2f} ms (median), "
        f"answer in {walls[rounds // 2] * 1000:.0f} ms (median), "
        f"longest loop stall {max(lags) * 1000:.1f} ms"
    )


async def main(db: pw.Database) -> None:
    api.install(actions.routes())
    store = Store(db)
    store.start()
    farm = Farm(FarmSettings(output_root=Path("/nonexistent")), store)
    started = time.perf_counter()
    farm.start()
    print(f"the scheduler loaded the farm in {(time.perf_counter() - started) * 1000:.0f} ms")
    counted = (await server_status(farm))["frames"]
    print(f"{sum(counted.values())} frames: {counted}")
    await measure("grouped on the loop (before)", grouped_on_the_loop, farm)
    await measure("server status (now)         ", server_status, farm)
    started = time.perf_counter()
    await asyncio.gather(*(server_status(farm) for _ in range(20)))
    print(f"20 status requests at once answered in {(time.perf_counter() - started) * 1000:.0f} ms")
    farm.stop()
    await store.drain()
    store.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, default=Path("/tmp/brender-status-loop/brender.db"))
    p.add_argument("--frames", type=int, default=1_000_000)
    args = p.parse_args()
    fresh = not args.db.exists()
    database_ = open_database(f"sqlite:///{args.db.resolve()}")
    if fresh:
        fill(args.frames, args.db.parent)
    asyncio.run(main(database_))
