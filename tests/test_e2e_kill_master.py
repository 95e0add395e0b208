"""kill -9 of the master in a burst of one-frame chunks loses no acknowledged frame.

Simulated nodes (real TCP, the real protocol, no Blender) report every frame at once; each
records which of its reports the master acknowledged (`ack`, or `ack` on the next `render`).
The master is killed with SIGKILL mid-burst and started again on the same database: every
acknowledged frame must be `done` there. The burst is far longer than the part of it before
the kill: a burst of 1,000 frames once ended, every frame acknowledged, between the test seeing
a third of them acknowledged and its SIGKILL landing (the server does 10,000+ a second).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

from farmctl import ServerProcess, frame_file, wait_for

NODES = 20
FRAMES = 20_000
KILL_AT = 1_000


class SimNode:
    """One node: renders instantly, numbers its reports, remembers what was acknowledged."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.seq = 0
        self.sent: dict[int, int] = {}  # seq -> frame number
        self.acked: set[int] = set()  # frames the master said are durable
        self.writer: asyncio.StreamWriter | None = None

    def acknowledge(self, upto: Any) -> None:
        if isinstance(upto, int):
            for seq in [s for s in self.sent if s <= upto]:
                frame = self.sent.pop(seq)
                if frame >= 0:
                    self.acked.add(frame)

    def send(self, message: dict[str, Any]) -> None:
        assert self.writer is not None
        self.writer.write(json.dumps(message).encode() + b"\n")

    async def run(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.send({"type": "hello", "node_id": f"sim-{self.index}", "name": f"sim-{self.index}"})
        try:
            while line := await reader.readline():
                message = json.loads(line)
                kind = message.get("type")
                if kind == "ack":
                    self.acknowledge(message["seq"])
                elif kind == "ping":
                    self.send({"type": "pong", "t": message.get("t")})
                elif kind == "render":
                    self.acknowledge(message.get("ack"))
                    self.render(message)
        except (ConnectionError, OSError):
            pass

    def render(self, order: dict[str, Any]) -> None:
        chunk = order["chunk_id"]
        for frame in order["frames"]:
            self.seq += 1
            self.sent[self.seq] = frame
            self.send({"type": "frame", "chunk_id": chunk, "frame": frame, "seq": self.seq,
                       "output_file": frame_file(order, frame), "render_time": 0.0})  # fmt: skip
        self.seq += 1
        self.sent[self.seq] = -1  # the chunk's end: no frame of its own
        self.send({"type": "chunk_done", "chunk_id": chunk, "ok": True, "exit_code": 0,
                   "frames_done": order["frames"], "seq": self.seq})  # fmt: skip


def test_no_acknowledged_frame_is_lost_when_the_master_is_killed(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "farm").start()
    nodes = [SimNode(i) for i in range(NODES)]
    try:
        with server.tcp() as api:
            job = api.ok({"item": "job", "action": "submit", "values": {
                "project": "p", "sequence": "s", "shot": "burst", "blend_file": "/sim.blend",
                "frame_start": 1, "frame_end": FRAMES, "chunk_size": 1, "paused": True,
            }})  # fmt: skip

        async def burst() -> None:
            tasks = [asyncio.create_task(node.run(server.tcp_port)) for node in nodes]
            await asyncio.sleep(0)  # connect before the job goes
            with server.tcp() as api:
                api.ok({"item": "job", "action": "resume", "filters": {"id": job["id"]}})
            deadline = asyncio.get_running_loop().time() + 60
            while sum(len(n.acked) for n in nodes) < KILL_AT:
                assert asyncio.get_running_loop().time() < deadline, "the burst did not start"
                await asyncio.sleep(0.005)
            assert server.proc is not None
            server.proc.send_signal(signal.SIGKILL)  # mid-burst
            server.proc.wait(10)
            await asyncio.wait(tasks, timeout=10)

        asyncio.run(burst())
    finally:
        server.stop(signal.SIGKILL)
    acknowledged = set().union(*(n.acked for n in nodes))
    print(f"{len(acknowledged)} of {FRAMES} frames acknowledged before the kill")
    assert KILL_AT <= len(acknowledged) < FRAMES, "the kill came mid-burst"

    again = ServerProcess(tmp_path / "farm").start()  # the same data dir, the same database
    try:
        with again.tcp() as api:
            wait_for(lambda: api.ok({"item": "server", "action": "status"}), 10, what="status")
    finally:
        again.stop()
    db = sqlite3.connect(tmp_path / "farm" / "brender.db")
    done = {n for (n,) in db.execute("SELECT number FROM frame WHERE status = 'done'")}
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    lost = sorted(acknowledged - done)
    assert not lost, f"{len(lost)} acknowledged frames are not done: {lost[:20]}"
