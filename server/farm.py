"""The farm's live state: the nodes (owned here alone) and the scheduler that feeds them.

Work is pushed: whenever something could let a node start a chunk (a node connects or
finishes, a job is submitted or resumed, a node is enabled) the caller `kick`s the farm, and a
dispatch pass (server/dispatch.py) runs on the next loop tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brender import messages, roots
from brender.roots import OutputRoots
from brender.server import chunking, journal, movie, reports
from brender.server.blobs import BlobStore
from brender.server.dispatch import Dispatch
from brender.server.events import Events, Listener
from brender.server.live import LiveJob
from brender.server.liveness import Watchdog
from brender.server.models import Client, tuples
from brender.server.node_state import Node
from brender.server.progress import FrameLive, ProgressBook
from brender.server.quiet import QuietLog
from brender.server.scheduler import Scheduler
from brender.server.services import clients, outputs
from brender.server.states import ClientStatus
from brender.server.store import Statement, Store
from brender.server.versions import NodeBlenders, blender_for, waiting

if TYPE_CHECKING:
    from brender.server.nodes import NodeSession

log = logging.getLogger(__name__)

ALL_OFFLINE = Statement("all offline", "UPDATE client SET online = {p} WHERE online = {p}")
CLIENT_OFFLINE = Statement(
    "client offline", "UPDATE client SET online = {p}, last_seen = {p} WHERE id = {p}"
)


@dataclass
class FarmSettings:
    output_root: Path
    token: str | None = None
    node_timeout: float = 10.0
    heartbeat: float = 2.0
    http_port: int | None = None
    """Told to nodes in `welcome`: where they fetch uploaded files and send frames back."""


@dataclass(eq=False)
class Farm:
    settings: FarmSettings
    store: Store
    nodes: dict[int, Node] = field(default_factory=dict)
    idle: dict[int, None] = field(default_factory=dict)  # insertion-ordered: longest idle first
    enabled: set[int] = field(default_factory=set)  # every enabled client, online or not
    working: dict[int, None] = field(default_factory=dict)
    """Clients online and enabled (kept as nodes come, go and are enabled: a dispatch pass and
    the end-game rule ask for them on every claim)."""
    known: set[int] = field(default_factory=set)  # every client row
    started_at: float = field(default_factory=time.time)
    speeds: chunking.SpeedBook = field(default_factory=chunking.SpeedBook)
    local_node: Callable[[], dict[str, Any]] | None = None
    """The state of `--local-node`'s process (server/local_node.py), when there is one."""
    blobs: BlobStore | None = None
    """The store of uploaded files (server/blobs.py); None: this farm takes no uploads."""
    stopping: bool = False
    live: ProgressBook = field(default_factory=ProgressBook)
    """The latest progress of each frame in flight (server/progress.py): memory only."""
    quiet: QuietLog = field(default_factory=QuietLog)
    """What a node's repeated faults may log: a line a minute per node and kind (server/quiet.py)."""
    guard: reports.ReportGuard = field(init=False)
    """Frame reports refused per node (server/reports.py): memory only."""

    def __post_init__(self) -> None:
        self.guard = reports.ReportGuard(self.quiet)
        self.events = Events(self.store)
        settings = self.settings
        self.watchdog = Watchdog(
            self.nodes, settings.heartbeat, settings.node_timeout, self.node_left
        )
        self.scheduler = Scheduler(self.store, self, self.emit)
        self.dispatch = Dispatch(self)
        self.scheduler.endgame = self.dispatch.endgame
        self.finisher = movie.Finisher(
            outputs.committed_frame_files(self.store), self.scheduler.movie_ended
        )
        self.scheduler.finishing = self._finish

    # -- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        """Rebuild the live state from the database (before serving): every client offline,
        every unfinished job in the scheduler; orphaned chunks wait `node_timeout` for their
        node to come back."""
        self.store.execute(ALL_OFFLINE, (False, True))
        for cid, status in tuples(Client.select(Client.id, Client.status)):
            self.known.add(cid)
            if status == ClientStatus.ENABLED.value:
                self.enabled.add(cid)
        journal.load(self.scheduler)
        self.scheduler.settle_idle()
        self.watchdog.start()
        asyncio.get_running_loop().call_later(self.settings.node_timeout, self.requeue_orphans)

    def stop(self) -> None:
        """Close every node connection without touching their work: the nodes are not gone,
        the server is, and a returning server lets them reclaim their chunks."""
        self.stopping = True
        self.watchdog.stop()
        for node in list(self.nodes.values()):
            node.session.close()

    # -- what the scheduler asks of the nodes (NodeBook) ---------------------------------------

    def enabled_ids(self) -> Collection[int]:
        return self.enabled

    def working_ids(self) -> Collection[int]:
        return self.working

    def _follow(self, node: Node) -> None:
        """Keep `working` true to the node's `enabled` (call after it changes)."""
        if node.enabled and self.nodes.get(node.client_id) is node:
            self.working[node.client_id] = None
        else:
            self.working.pop(node.client_id, None)

    def blender_for(self, client_id: int, job: LiveJob) -> str | None:
        """Which of the node's Blenders renders this job (server/versions.py); None: none."""
        node = self.nodes.get(client_id)
        if node is None or not node.may_write(job):
            return None
        return blender_for(node.blenders, job)

    def online_blenders(self) -> list[NodeBlenders]:
        """The Blenders of each node that may take work now (connected and enabled)."""
        return [n.blenders for n in self.nodes.values() if n.enabled]

    def waiting(self, job_id: int) -> str | None:
        """Why this job's queued frames wait for a node (Blender, auto-exec, output), or None."""
        job = self.scheduler.jobs.get(job_id)
        if job is None:
            return None
        why = waiting(job, self.online_blenders())
        if why is not None or not job.queue or not job.dispatchable:
            return why
        nodes = [n for n in self.nodes.values() if n.enabled]
        able = [n for n in nodes if blender_for(n.blenders, job) is not None]
        if any(n.may_write(job) for n in able):
            return None
        return roots.waiting_reason(job.output, job.blend_file, [n.outputs for n in able])

    # -- nodes coming and going ---------------------------------------------------------------

    async def node_joined(self, session: NodeSession, hello: messages.Hello) -> int:
        """Register the node (its client row); answers its client id. A chunk it still holds
        may stay with it."""
        info = {k: v for k, v in hello.to_wire().items() if v is not None}
        client = await self.store.run(lambda: clients.register(info))
        cid = int(client.id)
        old = self.nodes.get(cid)
        if old is not None and old.session is not session:
            log.warning(
                "client %d (%s) connected again; dropping its old connection", cid, client.name
            )
            old.session.replaced = True
            old.session.close()
        enabled = client.status == ClientStatus.ENABLED.value
        node = Node(
            cid, client.name, session, enabled, blenders=NodeBlenders.of(hello), warm=hello.warm
        )
        node.outputs = OutputRoots(hello.output_roots, hello.output_beside_blend)
        self.nodes[cid] = node
        self._follow(node)
        self.known.add(cid)
        (self.enabled.add if enabled else self.enabled.discard)(cid)
        session.client_id, session.name = cid, client.name
        held = hello.chunk
        if held is not None and self.scheduler.reclaim(cid, held.chunk_id):
            node.chunk_id = held.chunk_id
            node.job_id = self.scheduler.running[held.chunk_id].job.id
        else:
            if held is not None:
                session.post(messages.Cancel(held.chunk_id))  # after the welcome
            self.scheduler.give_back(cid, "node reconnected without this chunk")
        log.info("client %d (%s) online from %s", cid, client.name, session.address)
        self.emit("client", {"id": cid})
        if node.chunk_id is None:
            self.node_idle(cid)
        return cid

    def node_left(self, session: NodeSession, reason: str) -> None:
        cid = session.client_id
        node = self.nodes.get(cid) if cid is not None else None
        if cid is None or node is None or node.session is not session:
            return
        del self.nodes[cid]
        self.working.pop(cid, None)
        self.dispatch.owed.discard(cid)
        self.idle.pop(cid, None)
        if self.stopping:
            return  # shutting down: nothing to write (start-up marks every client offline)
        self.store.put(CLIENT_OFFLINE, cid, (False, time.time(), cid))
        if not session.replaced:
            self.scheduler.give_back(cid, reason)
        self.kick()  # its work is back, and chunks kept from other nodes for it may go now
        log.info("client %d (%s) offline: %s", cid, node.name, reason)
        self.emit("client", {"id": cid})

    def node_idle(self, client_id: int) -> None:
        node = self.nodes.get(client_id)
        if node is None:
            return
        node.chunk_id = node.job_id = None
        self.idle[client_id] = None
        self.emit("client", {"id": client_id})
        self.kick()

    def busy(self, client_id: int) -> bool:
        """Whether this node holds a chunk now."""
        node = self.nodes.get(client_id)
        return node is not None and node.chunk_id is not None

    def chunk_ended(self, client_id: int, report: messages.ChunkDone) -> None:
        self.live.drop(report.chunk_id)
        job_id = self.scheduler.chunk_ended(client_id, report)
        if job_id is not None:
            self.emit("job", {"id": job_id})
        node = self.nodes.get(client_id)
        if node is not None and node.chunk_id in (report.chunk_id, None):
            self.node_idle(client_id)

    def progress(self, client_id: int, report: messages.Progress) -> None:
        """A node's word on the frame it renders: kept in memory and pushed to the pages at
        once (nothing is written, so there is no commit to wait for)."""
        chunk = self.scheduler.held_by(client_id, report.chunk_id)
        if chunk is None or report.frame not in chunk.frames or report.frame in chunk.done:
            return
        entry = self.live.report(chunk.job.id, client_id, report)
        data = {"job_id": entry.job_id, "chunk_id": entry.chunk_id, **entry.to_dict(entry.at)}
        self.events.tell([("progress", data)])

    def live_valid(self, entry: FrameLive) -> bool:
        """Whether a progress entry still holds: its node has the chunk, the frame is unsaved."""
        chunk = self.scheduler.held_by(entry.client_id, entry.chunk_id)
        return chunk is not None and entry.frame not in chunk.done

    def working_on(self, job_id: int) -> list[int]:
        """The nodes rendering a chunk of this job now."""
        return [cid for cid, node in self.nodes.items() if node.job_id == job_id]

    def frame_saved(self, client_id: int, report: messages.FrameDone) -> None:
        """A node's frame report: counted only for a frame of the chunk it holds and only
        with that frame's file (server/reports.py); refused (and counted) otherwise."""
        node = self.nodes.get(client_id)
        name = node.name if node is not None else "?"
        chunk = self.scheduler.held_by(client_id, report.chunk_id)
        refused = self.guard.check(client_id, name, chunk, report) if chunk is not None else None
        if chunk is not None and refused is not None:
            self.scheduler.report_refused(chunk, refused)
            self.emit("client", {"id": client_id})  # its refused_reports count moved
        elif not self.scheduler.frame_saved(client_id, report):
            self.guard.ignored(client_id, name, report)
        else:
            if node is not None and node.job_id is not None:
                self.speeds.record(node.job_id, client_id, report.render_time)
            self.emit("frame", {"chunk_id": report.chunk_id, "number": report.frame})

    def rejected(self, client_id: int, report: messages.Rejected) -> None:
        node = self.nodes.get(client_id)
        name = node.name if node else "?"
        self.quiet.note(
            (client_id, "rejected"), log, logging.WARNING,
            "client %d (%s) rejected chunk %s: %s", client_id, name, report.chunk_id, report.reason,
        )  # fmt: skip
        chunk = self.scheduler.held_by(
            client_id, -1 if report.chunk_id is None else report.chunk_id
        )
        if chunk is not None:  # a refusal of a chunk it does not hold changes nothing
            if report.file_version:
                # The node read the file and has no Blender for it: the job learns its version.
                self.scheduler.learn_version(chunk.id, report.file_version)
            if report.outside_roots:
                chunk.job.unwritable.add(client_id)  # it may not write there: no more of it
            self.scheduler.give_back(client_id, f"node rejected it: {report.reason}", chunk.id)
            told = report.file_version or report.outside_roots  # it is offered no more of it
            if told and self.busy_chunk(client_id) == chunk.id:
                self.node_idle(client_id)  # so it is free for other work
        self.kick()

    def requeue_orphans(self) -> None:
        """Chunks still `running` on nodes that never came back after a restart go back."""
        orphans = self.scheduler.orphans(self.nodes)
        for cid in orphans:
            self.scheduler.give_back(cid, "node did not come back after a server restart")
        if orphans:
            self.kick()

    # -- dispatch (server/dispatch.py) --------------------------------------------------------

    def kick(self) -> None:
        """Ask for a dispatch pass on the next loop tick (many kicks in a tick make one pass)."""
        self.dispatch.kick()

    def ordered(self, client_id: int, node: Node, order: messages.Render) -> None:
        """The dispatch pass gave this idle node an order: it is busy from now on."""
        del self.idle[client_id]
        node.chunk_id, node.job_id = order.chunk_id, order.job_id
        node.session.order(order)
        self.emit("chunk", {"id": order.chunk_id, "job_id": order.job_id})
        self.emit("client", {"id": client_id})

    # -- changes made through the API ---------------------------------------------------------

    def clients_changed(self, rows: list[Any]) -> None:
        """Client rows were enabled/disabled: follow that in the live state."""
        for row in rows:
            enabled = row.status == ClientStatus.ENABLED.value
            (self.enabled.add if enabled else self.enabled.discard)(row.id)
            node = self.nodes.get(row.id)
            if node is not None:
                node.enabled = enabled
                self._follow(node)
            self.emit("client", {"id": row.id})
        self.kick()

    def clients_deleted(self, ids: list[int]) -> None:
        for cid in ids:
            self.known.discard(cid)
            self.enabled.discard(cid)
            node = self.nodes.get(cid)
            if node is not None:
                node.session.replaced = True  # its chunk was given back already
                node.session.close()
            self.emit("client", {"id": cid, "deleted": True})
        self.kick()

    def stop_work(self, client_ids: list[int], reason: str) -> None:
        """Take the running chunks away from these nodes: requeued first, then killed."""
        for cid in client_ids:
            for chunk_id in self.scheduler.give_back(cid, reason):
                self.cancel_chunks([(chunk_id, cid)])
        self.kick()

    def _finish(self, job: LiveJob) -> None:
        assert job.movie is not None
        self.finisher.start(job.id, self.scheduler.movie_target(job), job.movie)

    def cancel_chunks(self, pairs: list[tuple[int, int | None]]) -> None:
        """Tell nodes to kill these chunks (already canceled in the scheduler)."""
        for chunk_id, client_id in pairs:
            node = self.nodes.get(client_id) if client_id is not None else None
            if node is not None:
                node.session.post(messages.Cancel(chunk_id))

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Tell every listener (the WebSocket feed) once the change is committed."""
        self.events.emit(kind, data)

    @property
    def listeners(self) -> list[Listener]:
        return self.events.listeners

    def busy_chunk(self, client_id: int) -> int | None:
        node = self.nodes.get(client_id)
        return node.chunk_id if node is not None else None
