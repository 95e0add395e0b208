"""Does a warm node's memory stay bounded? 500 one-frame chunks of one job on one warm node.

    python -m bench.warm_memory [--frames 500]

A real server (`--local-node`: its node is warm by default) renders a tiny Cycles scene
(16×16, 1 sample: the chunks, not the pixels, are the load) in one-frame chunks. Every half
second the resident memory (RSS) of the node process and of its Blender's process tree is
sampled with psutil. Printed: the peaks, the RSS after the first 50 frames and at the end
(growth), how many Blenders the node started (from its log), and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import psutil

from bench.client import Api
from bench.procs import Server
from bench.scene import make_scene

MIB = 1024 * 1024


def _tree_rss(proc: psutil.Process) -> tuple[float, float]:
    """(the node's own RSS, its Blenders' RSS), in MiB."""
    node = proc.memory_info().rss
    blenders = 0
    for child in proc.children(recursive=True):
        try:
            if "blender" in " ".join(child.cmdline()):
                blenders += child.memory_info().rss
        except psutil.Error:
            continue
    return node / MIB, blenders / MIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.warm_memory")
    parser.add_argument("--frames", type=int, default=500)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="brender-bench-warm-"))
    scene = make_scene(work / "tiny.blend", 1, args.frames, samples=1, resolution=16)
    server = Server(work / "server", extra=["--local-node"]).start()
    samples: list[tuple[int, float, float]] = []
    try:
        server.wait_serving()
        with Api(server.tcp_port) as api:
            deadline = time.monotonic() + 60
            while not any(c["online"] for c in api.ok({"item": "client", "action": "read"})):
                if time.monotonic() > deadline:
                    raise SystemExit("the local node did not come online")
                time.sleep(0.2)
            node = next(p for p in psutil.Process(server.pid).children(recursive=True)
                        if "brender.node" in " ".join(p.cmdline()))  # fmt: skip
            job = api.ok({"item": "job", "action": "submit", "values": {
                "project": "bench", "sequence": "warm", "shot": "memory",
                "blend_file": str(scene), "frame_start": 1, "frame_end": args.frames,
                "chunk_size": 1, "output": str(work / "out" / "####")}})  # fmt: skip
            started = time.monotonic()
            while True:
                row = api.ok({"item": "job", "action": "read", "filters": {"id": job["id"]}})[0]
                node_mb, blender_mb = _tree_rss(node)
                samples.append((row["frames"]["done"], node_mb, blender_mb))
                if row["status"] in ("completed", "failed", "canceled"):
                    break
                time.sleep(0.5)
            seconds = time.monotonic() - started
        # The local node's output is copied into the server's log.
        lines = server.log_path.read_text(errors="replace").splitlines()
        starts = sum(1 for line in lines if "warm Blender" in line and " started " in line)
    finally:
        server.stop()
    early = [s for s in samples if s[0] >= min(50, args.frames)][:1] or samples[:1]
    out = {
        "scenario": "warm_memory", "frames": args.frames, "status": row["status"],
        "seconds": round(seconds, 1), "frames_per_second": round(args.frames / seconds, 1),
        "node_rss_peak_mib": round(max(s[1] for s in samples), 1),
        "blender_rss_peak_mib": round(max(s[2] for s in samples), 1),
        "node_rss_after_50_mib": round(early[0][1], 1),
        "blender_rss_after_50_mib": round(early[0][2], 1),
        "node_rss_end_mib": round(samples[-2][1] if len(samples) > 1 else samples[-1][1], 1),
        "blender_rss_end_mib": round(samples[-2][2] if len(samples) > 1 else samples[-1][2], 1),
        "blenders_started": starts, "host": socket.gethostname(), "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip
    print(json.dumps(out))
    return 0 if row["status"] == "completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
