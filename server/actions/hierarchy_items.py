"""project, sequence and shot: create, read, update, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from brender.server.api import Request, action
from brender.server.farm import Farm
from brender.server.models import BaseModel, Project, Sequence, Shot
from brender.server.services import changes, hierarchy, query

CREATE: dict[str, tuple[type[BaseModel], Callable[[dict[str, Any]], BaseModel]]] = {
    "project": (Project, hierarchy.create_project),
    "sequence": (Sequence, hierarchy.create_sequence),
    "shot": (Shot, hierarchy.create_shot),
}


def crud(item: str, model: type[BaseModel], create: Callable[[dict[str, Any]], BaseModel]) -> None:
    """Register the four plain actions of one hierarchy item."""

    def do_create(farm: Farm, req: Request) -> dict[str, Any]:
        row = create(req.values).to_dict()
        farm.emit(item, {"id": row["id"]})
        return row

    def do_read(farm: Farm, req: Request) -> query.Page:
        return query.read(model, req.filters, req.limit, req.offset, req.order_by)

    def do_update(farm: Farm, req: Request) -> list[dict[str, Any]]:
        rows = [r.to_dict() for r in changes.update(model, req.filters, req.values)]
        for row in rows:
            farm.emit(item, {"id": row["id"]})
        return rows

    def do_delete(farm: Farm, req: Request) -> list[dict[str, Any]]:
        rows, running = changes.delete(model, req.filters, req.values)
        farm.cancel_chunks(running)
        for row in rows:
            farm.emit(item, {"id": row["id"], "deleted": True})
        return rows

    action(item, "create")(do_create)
    action(item, "read")(do_read)
    action(item, "update")(do_update)
    action(item, "delete")(do_delete)


for _item, (_model, _create) in CREATE.items():
    crud(_item, _model, _create)
