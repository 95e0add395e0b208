"""An idle node's durable reports are told by its next order, or by the dispatch pass that has
none for it (server/nodes.py `pay`, server/dispatch.py): never a separate `ack` line
before an order that is about to go, never left untold."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import peewee as pw

from brender import messages
from brender.server import actions, api
from brender.server.farm import Farm, FarmSettings
from brender.server.nodes import NodeSession, _Outgoing
from brender.server.store import Store


class StandIn:
    """What a session writes to, kept as parsed lines."""

    peer = "127.0.0.1:1"

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.lines += [orjson.loads(line) for line in data.splitlines() if line]

    def close(self) -> None:
        pass


def run(db: pw.Database, tmp_path: Path, body: Callable[[Farm], Awaitable[None]]) -> None:
    async def main() -> None:
        api.install(actions.routes())
        store = Store(db)
        store.start()
        farm = Farm(FarmSettings(output_root=tmp_path / "out"), store)
        farm.start()
        try:
            await body(farm)
        finally:
            farm.stop()
            await store.drain()
            store.close()

    asyncio.run(main())


async def call(farm: Farm, request: dict[str, Any]) -> dict[str, Any]:
    answer = await api.handle(farm, request, api.Caller(authed=True))
    assert answer["ok"], answer
    return answer


async def node(farm: Farm) -> tuple[NodeSession, StandIn]:
    conn = StandIn()
    session = NodeSession(conn, farm)  # type: ignore[arg-type]
    hello = {"type": "hello", "node_id": "owed-1", "name": "owed-1", "hostname": "owed-1"}
    await farm.node_joined(session, messages.Hello.parse(hello))
    return session, conn


async def job(farm: Farm, frames: int, paused: bool) -> int:
    values = {
        "project": "p", "sequence": "s", "shot": f"owed{frames}", "blend_file": "/none.blend",
        "frame_start": 1, "frame_end": frames, "chunk_size": 1, "paused": paused,
    }  # fmt: skip
    answer = await call(farm, {"item": "job", "action": "submit", "values": values})
    return int(answer["data"]["id"])


async def idle_node(farm: Farm) -> tuple[NodeSession, StandIn]:
    """A node that joined a farm with nothing to dispatch (a paused job), its lines cleared."""
    session, conn = await node(farm)
    await job(farm, 2, paused=True)
    assert session.client_id is not None
    conn.lines.clear()
    return session, conn


def test_an_idle_node_hears_of_its_reports_with_the_order_that_follows(
    db: pw.Database, tmp_path: Path
) -> None:
    async def body(farm: Farm) -> None:
        session, conn = await node(farm)
        job_id = await job(farm, 2, paused=True)
        assert session.client_id is not None
        # The node is idle and its reports up to seq 7 were just committed, while work waits
        # for it (the job is resumed in the same tick): no `ack` line now...
        await call(farm, {"item": "job", "action": "resume", "filters": {"id": job_id}})
        farm.node_idle(session.client_id)
        conn.lines.clear()
        session._deliver(_Outgoing(ack=7))
        assert conn.lines == []
        await asyncio.sleep(0)  # ...the dispatch pass: the order carries it
        assert [(m["type"], m.get("ack")) for m in conn.lines] == [("render", 7)]

    run(db, tmp_path, body)


def test_an_idle_node_with_nothing_to_do_is_told_by_the_pass(
    db: pw.Database, tmp_path: Path
) -> None:
    async def body(farm: Farm) -> None:
        session, conn = await idle_node(farm)
        session._deliver(_Outgoing(ack=3))
        await asyncio.sleep(0)
        assert conn.lines == [{"type": "ack", "seq": 3}]
        assert farm.dispatch.owed == set()

    run(db, tmp_path, body)


def test_an_idle_node_is_told_once_when_its_reports_commit_in_two_batches(
    db: pw.Database, tmp_path: Path
) -> None:
    async def body(farm: Farm) -> None:
        session, conn = await idle_node(farm)
        # Seq 4 is committed while seq 5-6 (the chunk's end: the node is idle already) are in
        # a batch still committing: only that batch's ack is sent, not 4 and then 6.
        first = _Outgoing(ack=4)
        session._acked(6)  # the later batch, as a report read after the first batch closed
        session._deliver(first)
        await asyncio.sleep(0)
        assert conn.lines == []
        await farm.store.drain()
        await asyncio.sleep(0)
        assert conn.lines == [{"type": "ack", "seq": 6}]

    run(db, tmp_path, body)
