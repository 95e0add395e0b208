"""project, sequence and shot: create, read, update, delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from brender.server.actions.job_items import delete_under
from brender.server.api import Handler, Request, Routes
from brender.server.farm import Farm
from brender.server.models import BaseModel, Project, Sequence, Shot
from brender.server.services import changes, hierarchy, query

CREATE: dict[str, tuple[type[BaseModel], Callable[[dict[str, Any]], BaseModel]]] = {
    "project": (Project, hierarchy.create_project),
    "sequence": (Sequence, hierarchy.create_sequence),
    "shot": (Shot, hierarchy.create_shot),
}


def crud(
    item: str, model: type[BaseModel], create: Callable[[dict[str, Any]], BaseModel]
) -> dict[tuple[str, str], Handler]:
    """The four plain actions of one hierarchy item."""

    async def do_create(farm: Farm, req: Request) -> dict[str, Any]:
        row = (await farm.store.run(lambda: create(req.values))).to_dict()
        farm.emit(item, {"id": row["id"]})
        return row

    def do_read(farm: Farm, req: Request) -> query.Page:
        return query.read(model, req.filters, req.limit, req.offset, req.order_by)

    async def do_update(farm: Farm, req: Request) -> list[dict[str, Any]]:
        changed = await farm.store.run(lambda: changes.update(model, req.filters, req.values))
        rows = [r.to_dict() for r in changed]
        for row in rows:
            farm.emit(item, {"id": row["id"]})
        return rows

    def do_delete(farm: Farm, req: Request) -> Awaitable[list[dict[str, Any]]]:
        return delete_under(farm, model, req)

    return {
        (item, "create"): do_create,
        (item, "read"): do_read,
        (item, "update"): do_update,
        (item, "delete"): do_delete,
    }


ROUTES: Routes = {
    route: handler
    for item, (model, create) in CREATE.items()
    for route, handler in crud(item, model, create).items()
}
