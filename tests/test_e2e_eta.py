"""The ETA of a job on a real server: 100 frames of 1 s on two simulated nodes (bench/simnode.py,
the real protocol over loopback TCP). Once 10 frames are done its `eta_seconds` is within 20 %
of when the job really ends, by this test's own clock."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from farmctl import ServerProcess

from bench.simnodes import CostModel, SimulatedNodes


def test_eta_of_100_one_second_frames_on_two_nodes(server: ServerProcess) -> None:
    async def main() -> tuple[float, float, list[Any]]:
        nodes = SimulatedNodes(server.tcp_port, 2, CostModel(frame_cost=lambda n: 1.0))
        await nodes.connect()
        loop = asyncio.get_running_loop()
        try:

            def read() -> dict[str, Any]:
                answer = server.http({"item": "job", "action": "read", "filters": {"id": job_id}})
                assert answer["ok"], answer
                return answer["data"][0]

            answer = await loop.run_in_executor(None, server.http, {
                "item": "job", "action": "submit", "values": {
                    "project": "p", "sequence": "s", "shot": "eta", "blend_file": "/eta.blend",
                    "frame_start": 1, "frame_end": 100, "chunk_size": 5,
                },
            })  # fmt: skip
            assert answer["ok"], answer
            job_id = answer["data"]["id"]
            assert answer["data"]["eta_seconds"] is None  # nothing measured yet
            early: list[Any] = []
            deadline = time.monotonic() + 60
            while True:
                row = await loop.run_in_executor(None, read)
                if row["frames"]["done"] >= 10:
                    break
                early.append(row["eta_seconds"])
                assert time.monotonic() < deadline, row
                await asyncio.sleep(0.05)
            asked_at, eta = time.monotonic(), row["eta_seconds"]
            deadline = time.monotonic() + 120
            while row["status"] != "completed":
                assert time.monotonic() < deadline, row
                await asyncio.sleep(0.05)
                row = await loop.run_in_executor(None, read)
            ended = time.monotonic()
            assert row["eta_seconds"] == 0.0
            return eta, ended - asked_at, early
        finally:
            await nodes.close()

    eta, real, early = asyncio.run(main())
    print(f"\nETA at 10 frames done: {eta} s; the job ended {real:.1f} s later")
    assert early[0] is None  # "—" until a frame is done
    assert eta is not None
    assert abs(eta - real) <= 0.2 * real, (eta, real)
