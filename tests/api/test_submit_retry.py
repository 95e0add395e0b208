"""A `job submit` sent again with the same `request_id` (its answer was lost) answers the first
job instead of making a copy; on SQLite and PostgreSQL, over TCP, also when both arrive at once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from farmctl import ServerProcess


def test_a_retried_submit_is_the_first_job(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "farm").start()
    try:
        values = {"project": "p", "sequence": "s", "shot": "x", "blend_file": "/x.blend",
                  "frame_start": 1, "frame_end": 4, "request_id": "8d0f-retry-1"}  # fmt: skip
        submit = {"item": "job", "action": "submit", "values": values}
        first = server.http(submit)["data"]
        again = server.http(submit)["data"]
        assert again["id"] == first["id"] and again["request_id"] == "8d0f-retry-1"
        other = server.http({**submit, "values": {**values, "request_id": "another"}})["data"]
        assert other["id"] != first["id"]

        async def burst() -> list[int]:
            async def one() -> int:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
                line = {**submit, "values": {**values, "request_id": "burst"}}
                writer.write(json.dumps(line).encode() + b"\n")
                answer = json.loads(await reader.readline())
                writer.close()
                return int(answer["data"]["id"])

            return await asyncio.gather(*(one() for _ in range(8)))

        assert len(set(asyncio.run(burst()))) == 1  # eight at once: one job
        jobs = server.http({"item": "job", "action": "read"})["data"]
        assert len(jobs) == 3 and sum(j["frames"]["total"] for j in jobs) == 12
        bad = server.http({**submit, "values": {**values, "request_id": 7}})
        assert bad["error"]["code"] == "invalid_value"
    finally:
        server.stop()
