"""What the server keeps in memory: the connected nodes, which of them are idle, the dispatcher.

Everything else lives in the database. Work is pushed: whenever something could let a node
start a chunk (a node connects or finishes, a job is submitted or resumed, a node is enabled)
the caller `kick`s the farm, and one dispatch pass runs on the next loop tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tornado.ioloop import IOLoop, PeriodicCallback

from brender.server import chunking
from brender.server.models import Chunk
from brender.server.services import clients, totals, work
from brender.server.states import ChunkStatus, ClientStatus

if TYPE_CHECKING:
    from brender.server.nodes import NodeSession

log = logging.getLogger(__name__)


@dataclass
class FarmSettings:
    output_root: Path
    token: str | None = None
    node_timeout: float = 10.0
    heartbeat: float = 2.0


@dataclass
class Farm:
    settings: FarmSettings
    sessions: dict[int, NodeSession] = field(default_factory=dict)
    idle: dict[int, None] = field(default_factory=dict)  # insertion-ordered: longest idle first
    started_at: float = field(default_factory=time.time)
    listeners: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)
    speeds: chunking.SpeedBook = field(default_factory=chunking.SpeedBook)
    counter: totals.Counter = field(default_factory=totals.Counter)
    """Counts jobs and frames by status for `server status`, off the event loop."""
    _kicked: bool = False
    stopping: bool = False
    _watchdog: PeriodicCallback | None = None
    local_node: Callable[[], dict[str, Any]] | None = None
    """The state of `--local-node`'s process (server/local_node.py), when there is one."""

    def start(self) -> None:
        """Forget connections of the last run; orphaned chunks wait `node_timeout` for their node."""
        clients.mark_all_offline()
        self._watchdog = PeriodicCallback(self._check_liveness, 1000)
        self._watchdog.start()
        IOLoop.current().call_later(self.settings.node_timeout, self.requeue_orphans)

    def stop(self) -> None:
        """Close every node connection without touching their work: the nodes are not gone,
        the server is, and a returning server lets them reclaim their chunks."""
        self.stopping = True
        if self._watchdog is not None:
            self._watchdog.stop()
        for session in list(self.sessions.values()):
            session.close()
        self.counter.close()

    # -- nodes coming and going ---------------------------------------------------------------

    def node_joined(self, session: NodeSession, hello: dict[str, Any]) -> int:
        """Register the node; answers its client id. A chunk it still holds may stay with it."""
        client = clients.register(hello)
        old = self.sessions.get(client.id)
        if old is not None and old is not session:
            log.warning(
                "client %d (%s) connected again; dropping its old connection",
                client.id,
                client.name,
            )
            old.replaced = True
            old.close()
        session.client_id = client.id
        session.name = client.name
        session.enabled = client.status == ClientStatus.ENABLED.value
        self.sessions[client.id] = session
        held = hello.get("chunk")
        held_id = held.get("chunk_id") if isinstance(held, dict) else None
        if isinstance(held_id, int) and work.reclaim(client.id, held_id):
            session.chunk_id = held_id
        else:
            if isinstance(held_id, int):
                # After the welcome, which the caller sends when this returns.
                IOLoop.current().add_callback(session.send, {"type": "cancel", "chunk_id": held_id})
            work.requeue_client(client.id, "node reconnected without this chunk")
        log.info("client %d (%s) online from %s", client.id, client.name, session.address)
        self.emit("client", {"id": client.id})
        if session.chunk_id is None:
            self.node_idle(client.id)
        return int(client.id)

    def node_left(self, session: NodeSession, reason: str) -> None:
        cid = session.client_id
        if cid is None or self.sessions.get(cid) is not session:
            return
        del self.sessions[cid]
        self.idle.pop(cid, None)
        if self.stopping:
            return  # shutting down: nothing to write (start-up marks every client offline)
        clients.set_offline(cid)
        if not session.replaced:
            work.requeue_client(cid, reason)
        self.kick()  # its work is back, and chunks kept from other nodes for it may go now
        log.info("client %d (%s) offline: %s", cid, session.name, reason)
        self.emit("client", {"id": cid})

    def node_idle(self, client_id: int) -> None:
        session = self.sessions.get(client_id)
        if session is None:
            return
        session.chunk_id = None
        self.idle[client_id] = None
        self.emit("client", {"id": client_id})
        self.kick()

    def requeue_orphans(self) -> None:
        """Chunks still `running` on nodes that never came back after a restart go back."""
        running = Chunk.select(Chunk.client).where(Chunk.status == ChunkStatus.RUNNING.value)
        orphans = {row.client_id for row in running.distinct()} - set(self.sessions)
        for cid in orphans:
            if cid is not None:
                work.requeue_client(cid, "node did not come back after a server restart")
        if orphans:
            self.kick()

    def _check_liveness(self) -> None:
        """Ping quiet nodes (so they can tell a live master), drop the silent ones."""
        clock = time.monotonic()
        deadline = clock - self.settings.node_timeout
        for session in list(self.sessions.values()):
            if clock - session.last_heard > self.settings.heartbeat:
                session.send({"type": "ping", "t": time.time()})
            if session.last_heard < deadline:
                log.warning(
                    "client %s (%s) silent for %.0f s: offline",
                    session.client_id,
                    session.name,
                    self.settings.node_timeout,
                )
                session.close()
                self.node_left(session, f"silent for {self.settings.node_timeout:g} s")

    # -- dispatch ------------------------------------------------------------------------------

    def kick(self) -> None:
        """Ask for one dispatch pass on the next loop tick (many kicks in a tick make one pass)."""
        if not self._kicked:
            self._kicked = True
            IOLoop.current().add_callback(self._dispatch)

    def _dispatch(self) -> None:
        self._kicked = False
        working = sum(1 for s in self.sessions.values() if s.enabled)
        for cid in list(self.idle):
            session = self.sessions.get(cid)
            if session is None or not session.enabled:
                continue
            order = work.claim_next(cid, self._sizer(cid, working))
            if order is None:
                if not work.has_queued_work():
                    return  # nothing for anyone: no need to ask for each idle node
                continue  # nothing this node may take (blocklist, a chunk it just failed)
            del self.idle[cid]
            session.chunk_id, session.job_id = order["chunk_id"], order["job_id"]
            session.send(order)
            self.emit("job", {"id": order["job_id"]})
            self.emit("chunk", {"id": order["chunk_id"], "job_id": order["job_id"]})
            self.emit("client", {"id": cid})

    def _sizer(self, client_id: int, nodes: int) -> work.Sizer:
        """Automatic chunk sizes for this node: its share of a job's frames (server/chunking)."""

        def size(job: Any, left: int) -> int:
            return chunking.frames_for(
                left,
                nodes,
                self.speeds.speed(job.id, client_id),
                self.speeds.frame_seconds(job.id, client_id),
            )

        return size

    # -- changes made through the API ---------------------------------------------------------

    def clients_changed(self, rows: list[Any]) -> None:
        """Client rows were enabled/disabled: follow that in the live sessions."""
        for row in rows:
            session = self.sessions.get(row.id)
            if session is not None:
                session.enabled = row.status == ClientStatus.ENABLED.value
            self.emit("client", {"id": row.id})
        self.kick()

    def stop_work(self, client_ids: list[int], reason: str) -> None:
        """Take the running chunks away from these nodes: requeued first, then killed."""
        for cid in client_ids:
            chunk_ids = work.requeue_client(cid, reason)
            self.cancel_chunks([(chunk_id, cid) for chunk_id in chunk_ids])
        self.kick()

    def cancel_chunks(self, pairs: list[tuple[int, int | None]]) -> None:
        """Tell nodes to kill these chunks (already marked canceled in the database)."""
        for chunk_id, client_id in pairs:
            session = self.sessions.get(client_id) if client_id is not None else None
            if session is not None:
                session.send({"type": "cancel", "chunk_id": chunk_id})

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(kind, data)

    def busy_chunk(self, client_id: int) -> int | None:
        session = self.sessions.get(client_id)
        return session.chunk_id if session is not None else None
