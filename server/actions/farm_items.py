"""client and server: the render nodes and the farm as a whole."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from brender import __version__
from brender.server.api import Request, action
from brender.server.errors import InvalidValue
from brender.server.farm import Farm
from brender.server.models import Client
from brender.server.services import changes, clients, query
from brender.server.states import ClientStatus


def _live(farm: Farm, row: dict[str, Any]) -> dict[str, Any]:
    chunk_id = farm.busy_chunk(row["id"])
    row["busy"] = chunk_id is not None
    row["chunk_id"] = chunk_id
    return row


@action("client", "read")
def read(farm: Farm, req: Request) -> query.Page:
    page = query.read(Client, req.filters, req.limit, req.offset, req.order_by)
    page.rows = [_live(farm, row) for row in page.rows]
    return page


def _set_status(
    farm: Farm, filters: dict[str, Any], status: ClientStatus, now: bool = False
) -> list[dict[str, Any]]:
    ids = [c.id for c in changes.targets(Client, filters)]
    rows = clients.set_status(ids, status)
    if now and status == ClientStatus.DISABLED:
        farm.stop_work(ids, "the node was disabled with now")
    farm.clients_changed(rows)
    return [_live(farm, r.to_dict()) for r in rows]


@action("client", "enable")
def enable(farm: Farm, req: Request) -> list[dict[str, Any]]:
    changes.check_values(req.values, set(), "client enable")
    return _set_status(farm, req.filters, ClientStatus.ENABLED)


@action("client", "disable")
def disable(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """A disabled node finishes its chunk and gets no more; with `values: {"now": true}` its
    chunk is stopped at once and goes back to the queue."""
    now = changes.check_values(req.values, {"now"}, "client disable").get("now", False)
    return _set_status(farm, req.filters, ClientStatus.DISABLED, now)


@action("client", "update")
def update(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """As in the seed: `{"values": {"status": "disabled"}}` (and `now`, as for disable)."""
    data = dict(req.values)
    status = data.pop("status", None)
    choices = [s.value for s in ClientStatus]
    if status not in choices:
        raise InvalidValue(f"'status' must be one of {', '.join(choices)} (only status can change)")
    now = changes.check_values(data, {"now"}, "client update").get("now", False)
    return _set_status(farm, req.filters, ClientStatus(status), now)


@action("client", "delete")
def delete(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """Forget nodes; an online one only with `force` (it is disconnected, its work requeued)."""
    rows = changes.delete_clients(req.filters, req.values, set(farm.sessions))
    for row in rows:
        session = farm.sessions.get(row["id"])
        if session is not None:
            session.replaced = True  # its chunk was requeued already
            session.close()
        farm.emit("client", {"id": row["id"], "deleted": True})
    farm.kick()
    return rows


@action("client", "info")
async def info(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """Live load of the matching online nodes, asked of the nodes themselves."""
    ids = query.matching_ids(Client, req.filters)
    sessions = [farm.sessions[i] for i in ids if i in farm.sessions]
    answers = await asyncio.gather(*(s.system("info") for s in sessions), return_exceptions=True)
    out = []
    for session, reply in zip(sessions, answers, strict=True):
        entry: dict[str, Any] = {"id": session.client_id, "name": session.name}
        if isinstance(reply, BaseException):
            entry["error"] = str(reply) or type(reply).__name__
        else:
            entry["info"] = reply.get("data", {})
        out.append(entry)
    return out


@action("server", "status")
async def status(farm: Farm, req: Request) -> dict[str, Any]:
    """The totals are counted off the event loop (services/totals.py); the rest is in memory."""
    counted = await farm.counter.totals()
    online = len(farm.sessions)
    busy = sum(1 for s in farm.sessions.values() if s.chunk_id is not None)
    return {
        "version": __version__,
        "uptime": round(time.time() - farm.started_at, 3),
        "jobs": counted.jobs,
        "frames": counted.frames,
        "clients": {
            "total": counted.clients,
            "enabled": counted.enabled,
            "online": online,
            "busy": busy,
            "idle": online - busy,
        },
        "local_node": farm.local_node() if farm.local_node is not None else None,
    }
