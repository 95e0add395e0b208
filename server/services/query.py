"""Filtering, ordering and paging of `read` requests, shared by every item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee as pw

from brender.server.errors import InvalidValue
from brender.server.models import BaseModel, tuples

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000


@dataclass
class Page:
    """One page of a `read`: the rows, and how many rows match in all."""

    rows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def api_fields(model: type[BaseModel]) -> dict[str, pw.Field]:
    """The model's fields by the names the API uses (`shot_id`, not `shot`)."""
    return {
        (f.column_name if isinstance(f, pw.ForeignKeyField) else name): f
        for name, f in model._meta.fields.items()
    }


def where(model: type[BaseModel], filters: dict[str, Any] | None) -> list[pw.Expression]:
    """`{"field": value}` is equality, `{"field": [a, b]}` is one-of; keys are ANDed."""
    fields = api_fields(model)
    clauses = []
    for key, value in (filters or {}).items():
        field = fields.get(key)
        if field is None:
            known = ", ".join(sorted(fields))
            raise InvalidValue(
                f"unknown filter field '{key}' for {model.__name__.lower()} (fields: {known})"
            )
        if isinstance(value, list):
            for item in value:
                _check_value(key, field, item)
            clauses.append(field.in_(value))
        else:
            _check_value(key, field, value)
            clauses.append(field.is_null() if value is None else field == value)
    return clauses


def _check_value(key: str, field: pw.Field, value: Any) -> None:
    """A filter value must have the field's type (a float for an id is a mistake, and a
    too-large number must not reach the database)."""
    if value is None:
        if not field.null:
            raise InvalidValue(f"filter '{key}': this field is never null")
        return
    if isinstance(field, pw.BooleanField):
        ok = isinstance(value, bool)
    elif isinstance(field, pw.IntegerField | pw.AutoField | pw.ForeignKeyField):
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    elif isinstance(field, pw.FloatField):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise InvalidValue(f"filter '{key}': {value!r} is not a valid {key} value")


def ordering(model: type[BaseModel], order_by: Any) -> list[pw.Ordering]:
    fields = api_fields(model)
    keys = order_by if isinstance(order_by, list) else [order_by] if order_by else []
    out: list[Any] = []
    for key in keys:
        if not isinstance(key, str) or not key.strip("-"):
            raise InvalidValue("order_by must be a field name, optionally with a leading '-'")
        name = key.lstrip("-")
        if name not in fields:
            raise InvalidValue(f"cannot order by unknown field '{name}'")
        out.append(fields[name].desc() if key.startswith("-") else fields[name].asc())
    out.append(model.id.asc())
    return out


def paging(limit: Any, offset: Any) -> tuple[int, int]:
    lim = DEFAULT_LIMIT if limit is None else limit
    off = 0 if offset is None else offset
    if not isinstance(lim, int) or isinstance(lim, bool) or not 0 <= lim <= MAX_LIMIT:
        raise InvalidValue(f"limit must be an integer from 0 to {MAX_LIMIT}")
    if not isinstance(off, int) or isinstance(off, bool) or off < 0:
        raise InvalidValue("offset must be a non-negative integer")
    return lim, off


def read(
    model: type[BaseModel],
    filters: dict[str, Any] | None,
    limit: Any = None,
    offset: Any = None,
    order_by: Any = None,
) -> Page:
    """One page of `model` rows matching `filters`, with the total count."""
    clauses = where(model, filters)
    lim, off = paging(limit, offset)
    query = model.select()
    if clauses:
        query = query.where(*clauses)
    total = query.count()
    rows = [r.to_dict() for r in query.order_by(*ordering(model, order_by)).limit(lim).offset(off)]
    return Page(rows, total, lim, off)


def matching_ids(model: type[BaseModel], filters: dict[str, Any] | None) -> list[int]:
    """The ids a filter names (for update/delete and the job verbs)."""
    clauses = where(model, filters)
    query = model.select(model.id)
    if clauses:
        query = query.where(*clauses)
    return [row[0] for row in tuples(query)]
