"""The server's own Python per one-frame chunk, without sockets: `python -m bench.cycle`.

The farm (scheduler, store and writer thread on a scratch SQLite database) runs in this
process with stand-in connections. Each of `--nodes` nodes is told its order; the harness
answers every order with the line a zero-cost node sends (its `chunk_done`, the frame folded
into it), handed to the node's session exactly as server/conn.py hands it, and lets the loop
run its dispatch pass. What it prints is the CPU of the loop's thread and of the writer per
frame, with the harness's own share taken out, so a change to the hot path can be measured in
seconds instead of a full `throughput` run (which adds the sockets: bench/floor.py measures
those).

`--profile FILE` writes cProfile's statistics of the loop's thread (sorted by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from bench.client import submit_request
from brender import messages, wire
from brender.server import actions, api
from brender.server.db import open_database
from brender.server.farm import Farm, FarmSettings
from brender.server.nodes import NodeSession
from brender.server.store import Store


class StandInConnection:
    """What a NodeSession writes to: its lines are kept for the harness to answer."""

    def __init__(self, index: int) -> None:
        self.peer = f"127.0.0.1:{20000 + index}"
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        if data:
            self.out.append(data)

    def close(self) -> None:
        pass


def _hello(i: int) -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol": wire.PROTOCOL_VERSION,
        "node_id": f"cycle-{i:06d}",
        "name": f"cycle-{i:04d}",
        "hostname": f"cycle-{i:04d}",
        "mac_address": f"02:c0:00:00:{i >> 8 & 255:02x}:{i & 255:02x}",
        "cpus": 2,
        "memory": 8 * 2**30,
        "blender_version": "3.4.1",
    }


def _answers(order: dict[str, Any], seq: int) -> list[bytes]:
    """A zero-cost node's answer: its frame reports folded into the chunk's end (the master
    says it reads that in its welcome), one line."""
    saved = [
        {"frame": n, "output_file": order["output"].replace("####", f"{n:04d}") + ".png",
         "render_time": 0.0}
        for n in order["frames"]
    ]  # fmt: skip
    done = {"type": "chunk_done", "chunk_id": order["chunk_id"], "ok": True, "exit_code": 0,
            "canceled": False, "frames_done": order["frames"], "error": "", "log_tail": [],
            "saved": saved, "seq": seq + 1}  # fmt: skip
    return [orjson.dumps(done)]


async def run(nodes: int, frames: int, profile: Path | None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="brender-cycle-"))
    api.install(actions.routes())
    db = open_database(f"sqlite:///{work / 'brender.db'}")
    store = Store(db)
    store.start()
    farm = Farm(FarmSettings(output_root=work / "out"), store)
    farm.start()
    request = submit_request("cycle", frames, chunk_size=1, paused=True)
    answer = await api.handle(farm, request, api.Caller(authed=True))
    job_id = answer["data"]["id"]
    sessions = []
    for i in range(nodes):
        conn = StandInConnection(i)
        session = NodeSession(conn, farm)  # type: ignore[arg-type]
        await farm.node_joined(session, messages.Hello.parse(_hello(i)))
        sessions.append((session, conn))
    await api.handle(
        farm, {"item": "job", "action": "resume", "filters": {"id": job_id}}, api.Caller(True)
    )
    await asyncio.sleep(0)
    writer = next(t for t in threading.enumerate() if t.name == "brender-writer")
    seqs = [0] * nodes
    reported = 0
    harness = 0.0
    profiler = cProfile.Profile() if profile else None
    start_cpu = time.thread_time()
    start_writer = _thread_cpu(writer)
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    while reported < frames:
        t0 = time.thread_time()
        batch: list[tuple[NodeSession, list[bytes]]] = []
        for i, (session, conn) in enumerate(sessions):
            if not conn.out:
                continue
            data = b"".join(conn.out)
            conn.out.clear()
            for line in data.splitlines():
                message = orjson.loads(line)
                if message.get("type") == "render":
                    lines = _answers(message, seqs[i])
                    seqs[i] += 1
                    reported += len(message["frames"])
                    batch.append((session, lines))
        harness += time.thread_time() - t0
        for session, lines in batch:
            session._on_lines(lines)
        await asyncio.sleep(0)  # the dispatch pass, the tick's end
        if not batch:
            await asyncio.sleep(0.001)  # waiting for a commit's acks
    await store.drain()
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - start
    loop_cpu = time.thread_time() - start_cpu - harness
    writer_cpu = _thread_cpu(writer) - start_writer
    if profiler and profile:
        profiler.dump_stats(str(profile))
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(35)
    store.close()
    db.close()
    return {
        "nodes": nodes,
        "frames": reported,
        "seconds": round(wall, 3),
        "loop_us_per_frame": round(1e6 * loop_cpu / reported, 1),
        "writer_us_per_frame": round(1e6 * writer_cpu / reported, 1),
        "harness_us_per_frame": round(1e6 * harness / reported, 1),
    }


def _thread_cpu(thread: threading.Thread) -> float:
    """A thread's CPU seconds (Linux: /proc's schedstat of its native id)."""
    stat = Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text().split()
    return int(stat[0]) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=30_000)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.nodes, args.frames, args.profile))))


if __name__ == "__main__":
    main()
