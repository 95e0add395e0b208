"""restart: with 10,000 clients and 1,000,000 frames in the database, start to serving and
SIGTERM to exit.

Steps: fill 1,000,000 frames through the API (timed), stop; insert 10,000 client rows with
sqlite3 (left `online`, as after a crash); start the server and time from launch to its first
API answer; connect 1,000 of those clients again as simulated nodes and let them take chunks
(they hold them: their frames take an hour); SIGTERM, timed to the process's exit. The seed
reported that saving clients at shutdown was "very slow": this is that moment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench import simnodes
from bench.client import Api
from bench.dbfill import database_file, fill_frames, insert_clients
from bench.procs import Server, raise_fd_limit
from bench.report import Check, Result
from bench.scenario import Context, Scenario, Sizes
from bench.simnodes import CostModel, SimulatedNodes

START_TARGET = 2.0
EXIT_TARGET = 0.5
PREFIX = "returning"


@dataclass(frozen=True)
class Size:
    clients: int
    frames: int
    nodes: int


SIZES = Sizes(
    full=Size(10_000, 1_000_000, 1000), quick=Size(1_000, 100_000, 200), toy=Size(100, 5_000, 5)
)


async def _connect_busy(port: int, count: int) -> tuple[SimulatedNodes, float, float]:
    """Connect returning nodes that take a chunk each and hold it; answers them, the seconds
    to connect and the seconds until every node had an order."""
    nodes = SimulatedNodes(port, count, CostModel(lambda n: 3600.0), prefix=PREFIX)
    connect_s = await nodes.connect()
    start = time.perf_counter()
    busy_at = await nodes.wait_all_busy(timeout=900)
    return nodes, connect_s, busy_at - start


def run(ctx: Context) -> Result:
    size = SIZES.pick(ctx.size)
    raise_fd_limit(size.nodes * 2 + 256)
    data = ctx.workdir / "server"
    with Server(data).start() as first:
        fill = fill_frames(first, size.frames)
        ctx.say(f"{fill.frames} frames in {len(fill.jobs)} jobs in {fill.seconds:.1f} s")
        exit_after_fill = first.stop()
    insert_s = insert_clients(database_file(first), size.clients, PREFIX)
    ctx.say(f"{size.clients} client rows inserted with sqlite3 in {insert_s:.2f} s")

    server = Server(data).start()
    loop = simnodes.new_event_loop()
    nodes: SimulatedNodes | None = None
    try:
        serving = server.wait_serving()
        with Api(server.tcp_port) as api:
            status_s, status = api.timed({"item": "server", "action": "status"})
        ctx.say(
            f"serving {serving:.3f} s after launch (start-up line at {server.listening_after:.3f} s)"
        )
        nodes, connect_s, orders_s = loop.run_until_complete(
            _connect_busy(server.tcp_port, size.nodes)
        )
        ctx.say(f"{size.nodes} nodes back and busy ({connect_s:.1f} s + {orders_s:.1f} s)")
        with ctx.profiled(server, "restart-exit"):
            exit_s = server.stop()
        code = server.returncode()
    finally:
        if nodes is not None:
            loop.run_until_complete(nodes.close())
        loop.close()
        server.__exit__()
    ctx.say(f"SIGTERM to exit: {exit_s:.3f} s (exit code {code})")
    table: list[dict[str, Any]] = [
        {
            "step": "fill through the API",
            "seconds": fill.seconds,
            "detail": f"{fill.frames} frames, {len(fill.jobs)} jobs",
        },
        {
            "step": "SIGTERM to exit after the fill",
            "seconds": exit_after_fill,
            "detail": "no nodes",
        },
        {
            "step": "insert client rows (sqlite3)",
            "seconds": insert_s,
            "detail": f"{size.clients} clients",
        },
        {"step": "launch to start-up line", "seconds": server.listening_after, "detail": ""},
        {"step": "launch to first API answer", "seconds": serving, "detail": "project read"},
        {"step": "first server status", "seconds": status_s, "detail": "counts over all frames"},
        {"step": "nodes connect", "seconds": connect_s, "detail": f"{size.nodes} returning nodes"},
        {"step": "every node has an order", "seconds": orders_s, "detail": ""},
        {
            "step": "SIGTERM to exit",
            "seconds": exit_s,
            "detail": f"{size.nodes} busy nodes, exit code {code}",
        },
    ]
    return Result(
        "restart",
        ctx.size,
        [
            Check("start_to_serving_s", serving, "s", START_TARGET, "lower"),
            Check("sigterm_to_exit_s", exit_s, "s", EXIT_TARGET, "lower"),
        ],
        table=table,
        details={
            "clients": size.clients,
            "frames": fill.frames,
            "connected_nodes": size.nodes,
            "fill_seconds": fill.seconds,
            "fill_create_seconds": fill.creates,
            "launch_to_startup_line_s": server.listening_after,
            "first_status_s": status_s,
            "exit_code": code,
            "connections_dropped_by_server": nodes.stats.lost if nodes is not None else None,
            "clients_in_status": status.get("clients"),
        },
        notes=["client rows were inserted with sqlite3 into the stopped server's database"],
    )


SCENARIO = Scenario(
    "restart",
    "10,000 clients and 1,000,000 frames: start to serving, SIGTERM to exit",
    run,
)
