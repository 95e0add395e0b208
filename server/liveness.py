"""Which connected nodes are alive: every second, a ping to each node quiet for a heartbeat
(so it can tell a live master), and a node silent for `node_timeout` is closed and handed to
`on_silent` (the farm, which gives its work back)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from tornado.ioloop import PeriodicCallback

from brender import messages

if TYPE_CHECKING:
    from brender.server.node_state import Node
    from brender.server.nodes import NodeSession

log = logging.getLogger(__name__)

CHECK_EVERY_MS = 1000


class Watchdog:
    def __init__(
        self,
        nodes: Mapping[int, Node],
        heartbeat: float,
        node_timeout: float,
        on_silent: Callable[[NodeSession, str], None],
    ) -> None:
        self.nodes = nodes
        self.heartbeat = heartbeat
        self.node_timeout = node_timeout
        self.on_silent = on_silent
        self._timer = PeriodicCallback(self.check, CHECK_EVERY_MS)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def check(self) -> None:
        clock = time.monotonic()
        deadline = clock - self.node_timeout
        for node in list(self.nodes.values()):
            session = node.session
            if clock - session.last_heard > self.heartbeat:
                session.send(messages.Ping(time.time()))
            if session.last_heard < deadline:
                log.warning(
                    "client %d (%s) silent for %.0f s: offline",
                    node.client_id,
                    node.name,
                    self.node_timeout,
                )
                session.close()
                self.on_silent(session, f"silent for {self.node_timeout:g} s")
