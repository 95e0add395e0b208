"""The dispatch pass: orders for the farm's idle nodes, and the acknowledgements it owes them.

A kick asks for a pass on the next loop tick (many kicks in a tick make one pass). A pass hands
out at most `DISPATCH_SLICE` orders, then yields the loop (so reports and pings are read in
between) and goes on in the next tick. An idle node whose reports were just committed is owed
their `ack`: the order the pass gives it carries it, or the pass sends it as an `ack` line
(`pay`) when it has nothing for the node. The farm owns the nodes; the pass reads them and
tells the farm what it `ordered`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from brender.server import sizing
from brender.server.live import LiveJob
from brender.server.scheduler import Sizer

if TYPE_CHECKING:
    from brender.server.farm import Farm

DISPATCH_SLICE = 64
"""Orders handed out in one loop tick before reports and pings get their turn."""


class Dispatch:
    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.owed: set[int] = set()
        """Idle nodes whose durable reports no order has told yet (nodes.NodeSession.pay)."""
        self._kicked = False

    def kick(self) -> None:
        if not self._kicked:
            self._kicked = True
            asyncio.get_running_loop().call_soon(self.run)

    def owe_ack(self, client_id: int) -> None:
        """An idle node's reports are durable: its order in the next pass tells it, or the
        pass does (`pay`)."""
        self.owed.add(client_id)
        self.kick()

    def pay(self, client_id: int | None = None) -> None:
        """Tell the node (every owed one, by default) of its durable reports now."""
        for cid in list(self.owed) if client_id is None else [client_id]:
            self.owed.discard(cid)
            node = self.farm.nodes.get(cid)
            if node is not None:
                node.session.pay()

    def run(self) -> None:
        """One pass over the idle nodes, longest idle first."""
        self._kicked = False
        farm = self.farm
        scheduler = farm.scheduler
        if not scheduler.has_work():
            self.pay()
            return
        working = len(farm.working)
        sent = 0
        for cid in list(farm.idle):
            node = farm.nodes.get(cid)
            if node is None or not node.enabled:
                self.pay(cid)
                continue
            order = scheduler.claim(cid, self.sizer(cid, working))
            if order is None:
                if not scheduler.has_work():
                    self.pay()
                    return  # nothing for anyone: no need to ask for each idle node
                self.pay(cid)
                continue  # nothing this node may take (blocklist, a chunk it just failed)
            self.owed.discard(cid)
            farm.ordered(cid, node, order)
            sent += 1
            if sent >= DISPATCH_SLICE:
                self.kick()  # the rest after this tick's reads
                return
        self.pay()  # owed to nodes no longer idle (reclaimed a chunk): told now

    def sizer(self, client_id: int, nodes: int) -> Sizer:
        node = self.farm.nodes.get(client_id)
        return sizing.sizer(self.farm.speeds, client_id, nodes, node is not None and node.warm)

    def endgame(self, job: LiveJob, client_id: int, may_take: Callable[[int], bool]) -> bool:
        """The end-game rule with what the farm knows now (server/sizing.py)."""
        farm = self.farm
        return sizing.endgame(
            farm.speeds, job, client_id, farm.nodes, farm.working_ids, farm.scheduler.running,
            may_take,
        )  # fmt: skip
