"""project, sequence and shot: create and read."""

from __future__ import annotations

from typing import Any

from brender.server.api import Request, action
from brender.server.farm import Farm
from brender.server.models import Project, Sequence, Shot
from brender.server.services import hierarchy, query


@action("project", "create")
def create_project(farm: Farm, req: Request) -> dict[str, Any]:
    return hierarchy.create_project(req.values).to_dict()


@action("sequence", "create")
def create_sequence(farm: Farm, req: Request) -> dict[str, Any]:
    return hierarchy.create_sequence(req.values).to_dict()


@action("shot", "create")
def create_shot(farm: Farm, req: Request) -> dict[str, Any]:
    return hierarchy.create_shot(req.values).to_dict()


def _read(model: Any) -> Any:
    def read(farm: Farm, req: Request) -> query.Page:
        return query.read(model, req.filters, req.limit, req.offset, req.order_by)

    return read


action("project", "read")(_read(Project))
action("sequence", "read")(_read(Sequence))
action("shot", "read")(_read(Shot))
