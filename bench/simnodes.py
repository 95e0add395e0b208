"""Simulated render nodes: many lightweight nodes in one process, for scale benchmarks only.

Each `SimulatedNode` is one real loopback TCP connection that speaks the real node protocol
(docs/protocol.md): `hello` → `welcome`, pings every heartbeat and answers the master's, and
on `render` waits what the `CostModel` says, then reports each `frame` and a `chunk_done`,
numbered and kept until the master's `ack` (or the `ack` of its next `render`). It never runs
Blender: figures from it measure the server, and it is never evidence in correctness tests. A
node the server drops reconnects (bench/simnode.py), so `stats.lost` counts drops, not nodes
gone for good.

The harness shares the machine with the server, so it is kept cheap per frame (bench/simnode.py
says how) and runs on uvloop's event loop when uvloop is installed (`run`, `new_event_loop`;
`BENCH_LOOP=asyncio` keeps asyncio's); `LOOP` names the one it uses.

Dispatch latency is measured here: from the moment a node wrote its `chunk_done` (it is idle)
to the moment its next `render` order arrived.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.client import HOST
from bench.simnode import SimulatedNode

T = TypeVar("T")


def _loop_name() -> str:
    if os.environ.get("BENCH_LOOP", "uvloop") != "uvloop":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


LOOP = _loop_name()
"""The event loop the harness runs on: "uvloop" when it is installed, else "asyncio"."""


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A fresh event loop of the kind `LOOP` names."""
    if LOOP == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the harness's event loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


def no_cost(n: int) -> float:
    """The default frame cost: nothing (a node that "renders" at once)."""
    return 0.0


@dataclass(frozen=True)
class CostModel:
    """Seconds a node of speed 1 needs: `startup` once per chunk (Blender's start and file
    load), then `frame_cost(n)` for frame n. A node of speed s needs 1/s of that."""

    frame_cost: Callable[[int], float] = no_cost
    startup: float = 0.0

    @property
    def free(self) -> bool:
        """Every chunk costs nothing, known without asking `frame_cost`."""
        return self.frame_cost is no_cost and self.startup == 0

    def chunk_seconds(self, frames: list[int], speed: float) -> float:
        return (self.startup + sum(self.frame_cost(n) for n in frames)) / speed


@dataclass
class Stats:
    """What the whole harness saw; latencies are (idle since, seconds idle) pairs: when a node
    wrote its `chunk_done` and how long until its next order arrived (perf_counter clock)."""

    latencies: list[tuple[float, float]] = field(default_factory=list)
    orders: int = 0
    frames: int = 0
    chunks: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    nodes_started: int = 0  # nodes that have had at least one order
    lost: int = 0  # connections the server ended (each node then reconnects, as real ones do)


class SimulatedNodes:
    """`count` simulated nodes in this process, all connected to one server's TCP port."""

    def __init__(
        self,
        port: int,
        count: int,
        cost: CostModel,
        *,
        speeds: list[float] | None = None,
        prefix: str = "sim",
        heartbeat: bool = True,
        warm: bool = False,
    ) -> None:
        self.warm = warm  # like a warm node: start-up once per job, and `warm` in the hello
        self.port = port
        self.host = HOST
        self.cost = cost
        self.prefix = prefix
        self.heartbeat = heartbeat
        self.speeds = speeds or [1.0] * count
        assert len(self.speeds) == count
        self.nodes: list[SimulatedNode] = []
        self.stats = Stats()
        self.closing = False
        self.free = cost.free

    async def connect(self, batch: int = 100, timeout: float = 120.0) -> float:
        """Connect every node and wait for every welcome; answers the seconds it took."""
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        for first in range(0, len(self.speeds), batch):
            made = []
            for i in range(first, min(first + batch, len(self.speeds))):
                node = SimulatedNode(self, i, self.speeds[i])
                self.nodes.append(node)
                made.append(loop.create_connection(lambda n=node: n, HOST, self.port))
            await asyncio.gather(*made)
            await asyncio.wait_for(
                asyncio.gather(*(n.welcomed for n in self.nodes[first:])), timeout
            )
        return time.perf_counter() - start

    async def wait_frames(self, frames: int, timeout: float) -> None:
        """Until the nodes have reported `frames` frames in all."""
        deadline = time.monotonic() + timeout
        while self.stats.frames < frames:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.stats.frames} of {frames} frames after {timeout} s")
            await asyncio.sleep(0.01)

    async def wait_all_busy(self, timeout: float) -> float:
        """Until every node has had an order (a node the server dropped reconnects first);
        answers when the last one got its first (perf_counter clock)."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = [n for n in self.nodes if n.first_order_at is None]
            if not waiting:
                return max((n.first_order_at or 0.0) for n in self.nodes)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} of {len(self.nodes)} nodes never got work")
            await asyncio.sleep(0.02)

    def latencies_since(self, since: float, until: float = float("inf")) -> list[float]:
        """Latencies of the nodes that became idle in [since, until)."""
        return [lat for at, lat in self.stats.latencies if since <= at < until]

    def busy(self) -> int:
        return sum(1 for n in self.nodes if n.chunk_id is not None)

    async def close(self) -> None:
        self.closing = True
        for node in self.nodes:
            node.close()
        await asyncio.sleep(0)
