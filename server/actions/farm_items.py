"""client and server: the render nodes and the farm as a whole."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from brender import __version__
from brender.server.api import Request, Routes
from brender.server.errors import InvalidValue
from brender.server.farm import Farm
from brender.server.models import Client
from brender.server.services import changes, clients, query
from brender.server.states import ClientStatus


def _live(farm: Farm, row: dict[str, Any]) -> dict[str, Any]:
    chunk_id = farm.busy_chunk(row["id"])
    row["busy"] = chunk_id is not None
    row["chunk_id"] = chunk_id
    row["refused_reports"] = farm.guard.count(row["id"])
    return row


def read(farm: Farm, req: Request) -> query.Page:
    page = query.read(Client, req.filters, req.limit, req.offset, req.order_by)
    page.rows = [_live(farm, row) for row in page.rows]
    return page


async def _set_status(
    farm: Farm, filters: dict[str, Any], status: ClientStatus, now: bool = False
) -> list[dict[str, Any]]:
    ids = [c.id for c in changes.targets(Client, filters)]
    rows = await farm.store.run(lambda: clients.set_status(ids, status))
    if now and status == ClientStatus.DISABLED:
        farm.stop_work(ids, "the node was disabled with now")
    farm.clients_changed(rows)
    return [_live(farm, r.to_dict()) for r in rows]


async def enable(farm: Farm, req: Request) -> list[dict[str, Any]]:
    changes.check_values(req.values, set(), "client enable")
    return await _set_status(farm, req.filters, ClientStatus.ENABLED)


async def disable(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """A disabled node finishes its chunk and gets no more; with `values: {"now": true}` its
    chunk is stopped at once and goes back to the queue."""
    now = changes.check_values(req.values, {"now"}, "client disable").get("now", False)
    return await _set_status(farm, req.filters, ClientStatus.DISABLED, now)


async def update(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """As in the seed: `{"values": {"status": "disabled"}}` (and `now`, as for disable)."""
    data = dict(req.values)
    status = data.pop("status", None)
    choices = [s.value for s in ClientStatus]
    if status not in choices:
        raise InvalidValue(f"'status' must be one of {', '.join(choices)} (only status can change)")
    now = changes.check_values(data, {"now"}, "client update").get("now", False)
    return await _set_status(farm, req.filters, ClientStatus(status), now)


async def delete(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """Forget nodes; an online one only with `force` (it is disconnected, its work requeued)."""
    rows = changes.clients_to_delete(req.filters, req.values, farm.nodes)
    for row in rows:
        farm.scheduler.give_back(row.id, "client deleted")
    answer = await farm.store.run(lambda: changes.delete_clients(rows))
    farm.clients_deleted([row.id for row in rows])
    return answer


async def info(farm: Farm, req: Request) -> list[dict[str, Any]]:
    """Live load of the matching online nodes, asked of the nodes themselves."""
    ids = query.matching_ids(Client, req.filters)
    sessions = [farm.nodes[i].session for i in ids if i in farm.nodes]
    answers = await asyncio.gather(*(s.system("info") for s in sessions), return_exceptions=True)
    out = []
    for session, reply in zip(sessions, answers, strict=True):
        entry: dict[str, Any] = {"id": session.client_id, "name": session.name}
        if isinstance(reply, BaseException):
            entry["error"] = str(reply) or type(reply).__name__
        else:
            entry["info"] = reply.data or {}
        out.append(entry)
    return out


def status(farm: Farm, req: Request) -> dict[str, Any]:
    """Everything from memory: the scheduler's totals, the farm's nodes (no query)."""
    online = len(farm.nodes)
    busy = sum(1 for n in farm.nodes.values() if n.chunk_id is not None)
    totals = farm.scheduler.totals
    return {
        "version": __version__,
        "uptime": round(time.time() - farm.started_at, 3),
        "jobs": {str(status): n for status, n in totals.jobs.items() if n},
        "frames": {str(status): n for status, n in totals.frames.items() if n},
        "clients": {
            "total": len(farm.known),
            "enabled": len(farm.enabled),
            "online": online,
            "busy": busy,
            "idle": online - busy,
        },
        "local_node": farm.local_node() if farm.local_node is not None else None,
        "files": _files(farm),
    }


def _files(farm: Farm) -> dict[str, int] | None:
    """The store of uploaded files: blobs held, their bytes, and the quota."""
    if farm.blobs is None:
        return None
    stats = farm.blobs.stats
    return {"count": stats.files, "bytes": stats.bytes, "quota": farm.blobs.quota}


ROUTES: Routes = {
    ("client", "read"): read,
    ("client", "enable"): enable,
    ("client", "disable"): disable,
    ("client", "update"): update,
    ("client", "delete"): delete,
    ("client", "info"): info,
    ("server", "status"): status,
}
