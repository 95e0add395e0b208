"""The transport's floor: how many one-frame chunks per second plain asyncio could carry here.

    python -m bench.floor [--nodes 1000] [--seconds 10]

The throughput scenario's exchange per one-frame chunk, with nothing else: a client process
holds `--nodes` loopback connections; each writes its report line (a `chunk_done` with the
frame's report folded into it, as the simulated nodes send it to a protocol-2 master) and
waits; a server process answers each with one order line of the real order's size. No JSON,
no scheduler, no database: what is left is asyncio's Protocol machinery and the kernel's loopback TCP, in two
Python processes as in `throughput`. It bounds what any Python server on this machine can reach
with this protocol: the farm's frames/s cannot exceed these round trips/s, and the CPU it
shows per round trip is spent before the farm does any work of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time
from typing import cast

HOST = "127.0.0.1"
REPORT = (
    b'{"type":"chunk_done","chunk_id":123456,"ok":true,"exit_code":0,"canceled":false,'
    b'"frames_done":[12345],"error":"","log_tail":[],"saved":[{"frame":12345,'
    b'"output_file":"/renders/job-1/12345.png","render_time":0.0}],"seq":8}\n'
)
ORDER = (
    b'{"type":"render","chunk_id":123457,"job_id":1,"blend_file":"/projects/bench/scene.blend",'
    b'"frames":[12346],"output":"/renders/job-1/####","format":"PNG","timeout":600,"ack":8}\n'
)


class Echo(asyncio.Protocol):
    """The server side: one order per report line."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (pos := self.buffer.find(b"\n")) >= 0:
            del self.buffer[: pos + 1]
            self.transport.write(ORDER)


async def serve(port_file: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, HOST, 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    with open(port_file, "w") as f:
        f.write(str(port))
    await asyncio.Event().wait()


class Node(asyncio.Protocol):
    """The client side: report, wait for the order, report again."""

    def __init__(self, counter: list[int]) -> None:
        self.counter = counter
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.write(REPORT)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (pos := self.buffer.find(b"\n")) >= 0:
            del self.buffer[: pos + 1]
            self.counter[0] += 1
            self.transport.write(REPORT)


async def drive(port: int, nodes: int, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    counter = [0]
    for _ in range(nodes):
        await loop.create_connection(lambda: Node(counter), HOST, port)
    await asyncio.sleep(1.0)  # warm up
    start, before = time.perf_counter(), counter[0]
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    elapsed, done = time.perf_counter() - start, counter[0] - before
    return {"round_trips_per_second": done / elapsed, "client_cpu_share":
            (time.process_time() - cpu0) / elapsed}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--uvloop", action="store_true", help="both sides on uvloop's event loop")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.uvloop:
        import uvloop  # bench only: is the loop the floor?

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.nodes + 64)), hard))
    port_file = f"/tmp/brender-floor-{os.getpid()}.port"
    loop = ["--uvloop"] if args.uvloop else []
    server = subprocess.Popen([sys.executable, "-m", "bench.floor", "--serve", port_file, *loop])
    try:
        deadline = time.monotonic() + 10
        while not (text := _read(port_file)):
            if time.monotonic() > deadline:
                raise SystemExit("the floor server did not start")
            time.sleep(0.05)
        port = int(text)
        cpu = _cpu(server.pid)
        start = time.perf_counter()
        result = asyncio.run(drive(port, args.nodes, args.seconds))
        server_share = (_cpu(server.pid) - cpu) / (time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait()
        os.unlink(port_file)
    result["server_cpu_share_incl_connect"] = server_share
    result["server_us_per_round_trip"] = 1e6 * server_share / result["round_trips_per_second"]
    out = {"scenario": "floor", "loop": "uvloop" if args.uvloop else "asyncio",
           "nodes": args.nodes, "seconds": args.seconds, **result,
           "host": socket.gethostname(), "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    print(json.dumps(out))
    return 0


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
