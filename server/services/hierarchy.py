"""Projects, sequences and shots: the folders a job lives in."""

from __future__ import annotations

from typing import Any

from brender.server.errors import Conflict, InvalidValue, NotFound
from brender.server.models import BaseModel, Project, Sequence, Shot
from brender.server.services import validate as v

PROJECT_FIELDS = {"name": v.name_field(), "root": v.Field(str)}
SEQUENCE_FIELDS = {"project_id": v.Field(int, 1), "name": v.name_field()}
SHOT_FIELDS = {
    "sequence_id": v.Field(int, 1),
    "name": v.name_field(),
    "blend_file": v.path_field(),
    "frame_start": v.FRAME,
    "frame_end": v.FRAME,
}


def get(model: type[BaseModel], row_id: Any) -> Any:
    """The row with this id, or a `not_found` error that names it."""
    what = model.__name__.lower()
    if isinstance(row_id, bool) or not isinstance(row_id, int):
        raise InvalidValue(f"{what} id must be an integer")
    row = model.get_or_none(model._meta.primary_key == row_id)
    if row is None:
        raise NotFound(f"no {what} with id {row_id}")
    return row


def _unique(query: Any, message: str) -> None:
    if query.exists():
        raise Conflict(message)


def create_project(values: dict[str, Any]) -> Project:
    data = v.check(values, PROJECT_FIELDS, "project")
    v.require(data, ("name",), "a project")
    _unique(
        Project.select().where(Project.name == data["name"]),
        f"a project named '{data['name']}' exists already",
    )
    return Project.create(**data)


def create_sequence(values: dict[str, Any]) -> Sequence:
    data = v.check(values, SEQUENCE_FIELDS, "sequence")
    v.require(data, ("project_id", "name"), "a sequence")
    project = get(Project, data["project_id"])
    _unique(
        Sequence.select().where(Sequence.project == project, Sequence.name == data["name"]),
        f"project '{project.name}' has a sequence named '{data['name']}' already",
    )
    return Sequence.create(project=project, name=data["name"])


def create_shot(values: dict[str, Any]) -> Shot:
    data = v.check(values, SHOT_FIELDS, "shot")
    v.require(data, ("sequence_id", "name"), "a shot")
    sequence = get(Sequence, data.pop("sequence_id"))
    if "frame_start" in data or "frame_end" in data:
        v.check_frame_range(data.get("frame_start", 1), data.get("frame_end", 1))
    _unique(
        Shot.select().where(Shot.sequence == sequence, Shot.name == data["name"]),
        f"sequence '{sequence.name}' has a shot named '{data['name']}' already",
    )
    return Shot.create(sequence=sequence, **data)


def ensure_shot(project: str, sequence: str, shot: str, shot_values: dict[str, Any]) -> Shot:
    """The named shot, creating its project and sequence on the way when they are missing."""
    proj, _ = Project.get_or_create(name=project)
    seq, _ = Sequence.get_or_create(project=proj, name=sequence)
    found = Shot.get_or_none(Shot.sequence == seq, Shot.name == shot)
    if found is None:
        found = Shot.create(sequence=seq, name=shot, **shot_values)
    return found
