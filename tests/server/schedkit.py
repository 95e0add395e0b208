"""The scheduler on a real SQLite file with its writer running, driven by hand in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee as pw

from brender import messages
from brender.server import journal, verbs
from brender.server.live import LiveJob
from brender.server.models import Frame, Job, tuples
from brender.server.scheduler import Scheduler, Sizer
from brender.server.services import clients, jobs
from brender.server.store import Store
from brender.server.versions import NodeBlenders, blender_for


@dataclass
class Nodes:
    """The node facts the scheduler asks for (the Farm's, in the server)."""

    enabled: set[int] = field(default_factory=set)
    working: set[int] = field(default_factory=set)
    blenders: dict[int, NodeBlenders] = field(default_factory=dict)
    """Per client; a client not in it named no Blender."""

    def enabled_ids(self) -> set[int]:
        return self.enabled

    def working_ids(self) -> set[int]:
        return self.working

    def blender_for(self, client_id: int, job: LiveJob) -> str | None:
        return blender_for(self.blenders.get(client_id, NodeBlenders()), job)


class Kit:
    def __init__(self, db: pw.Database, root: Path) -> None:
        self.db = db
        self.root = root
        self.store = Store(db)
        self.nodes = Nodes()
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.s = Scheduler(
            self.store, self.nodes, lambda kind, data: self.events.append((kind, data))
        )

    async def start(self) -> Kit:
        self.store.start()
        journal.load(self.s)
        await self.store.committed()
        return self

    async def close(self) -> None:
        await self.store.drain()
        self.store.close()

    def node(self, name: str) -> int:
        cid = int(clients.register({"node_id": f"id-{name}", "name": name}).id)
        self.nodes.enabled.add(cid)
        self.nodes.working.add(cid)
        return cid

    async def job(self, **values: Any) -> Job:
        base = {
            "project": "p", "sequence": "s", "shot": "sh", "blend_file": "/x.blend",
            "frame_start": 1, "frame_end": 6, "chunk_size": 3,
        }  # fmt: skip
        data = {**base, **values}
        job, ranges = await self.store.run(
            lambda: jobs.submit_rows(data, self.root, self.s.new_chunk_ids)
        )
        verbs.added(self.s, job, ranges)
        return job

    def claim(self, cid: int, sizer: Sizer | None = None) -> messages.Render | None:
        return self.s.claim(cid, sizer)

    def saved(self, cid: int, order: messages.Render, frame: int, path: str = "") -> bool:
        report = messages.FrameDone(order.chunk_id, frame, path or f"/out/{frame:04d}.png", 0.2)
        return self.s.frame_saved(cid, report)

    def ended(
        self, cid: int, chunk_id: int, ok: bool = True, error: str = "", code: int = 0
    ) -> int | None:
        return self.s.chunk_ended(cid, messages.ChunkDone(chunk_id, ok, code, error=error or None))

    async def committed(self) -> None:
        await self.store.committed()

    def statuses(self, job_id: int) -> list[str]:
        query = Frame.select(Frame.status).where(Frame.job == job_id).order_by(Frame.number)
        return [status for (status,) in tuples(query)]

    def job_row(self, job_id: int) -> Job:
        return Job.get_by_id(job_id)


def run(db: pw.Database, root: Path, body: Callable[[Kit], Awaitable[None]]) -> None:
    async def main() -> None:
        kit = await Kit(db, root).start()
        try:
            await body(kit)
        finally:
            await kit.close()

    asyncio.run(asyncio.wait_for(main(), 60))
