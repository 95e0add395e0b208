"""Keeping every `read` answer inside one wire line (`brender.wire.MAX_LINE`, 1 MiB).

A page is cut by bytes, not only by `limit`: rows are added while the encoded answer stays
under `PAGE_BYTES`, and the answer's `limit` then says how many rows it holds, so a client
pages on with `offset + len(data)` until it reaches `total`. A row too big for an answer on
its own (a failed frame's log, a job that many nodes failed on) comes with its longest texts,
then its longest lists, cut short; such a row has `"truncated": true`.
"""

from __future__ import annotations

from typing import Any

from brender import wire
from brender.server.errors import FarmError

PAGE_BYTES = 3 * wire.MAX_LINE // 4
"""The most an encoded page may take: well under the line cap, whatever the rows."""

CUT = "…"
"""Ends a text that was cut short to fit."""


def size(value: Any) -> int:
    """The bytes `value` takes on the wire (without the newline)."""
    return len(wire.encode(value)) - 1


def fit_rows(rows: list[dict[str, Any]], room: int) -> list[dict[str, Any]]:
    """The leading rows that fit in `room` bytes as a JSON list's items; never none while
    there are rows (the first is cut down to fit if it must be), so paging always advances."""
    kept: list[dict[str, Any]] = []
    used = 0
    for row in rows:
        cost = size(row) + 1  # and its comma
        if used + cost > room:
            if not kept:
                kept.append(shrink(row, room - 1))
            break
        kept.append(row)
        used += cost
    return kept


def shrink(row: dict[str, Any], room: int) -> dict[str, Any]:
    """`row` with its texts (then its lists) cut to the longest length that fits in `room`."""
    for cut, kind in ((_cut_texts, str), (_cut_lists, list)):
        longest = _longest(row, kind)
        lo, hi = -1, longest  # the largest cap that fits lies in (lo, hi]; `-1`: none found
        best: dict[str, Any] | None = None
        while lo < hi:
            cap = (lo + hi + 1) // 2
            candidate = {**cut(row, cap), "truncated": True}
            if size(candidate) <= room:
                lo, best = cap, candidate
            else:
                hi = cap - 1
        if best is not None:
            return best
        row = cut(row, 0)
    raise FarmError(
        "a row does not fit in one answer (is the request's 'id' very long?)", "too_large"
    )


def _longest(value: Any, kind: type) -> int:
    """The length of the longest `kind` (str or list) anywhere inside `value`."""
    if isinstance(value, dict):
        return max((_longest(v, kind) for v in value.values()), default=0)
    if isinstance(value, list):
        own = len(value) if kind is list else 0
        return max([own, *(_longest(v, kind) for v in value)])
    return len(value) if kind is str and isinstance(value, str) else 0


def _cut_texts(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap] + CUT
    if isinstance(value, dict):
        return {k: _cut_texts(v, cap) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_texts(v, cap) for v in value]
    return value


def _cut_lists(value: Any, cap: int) -> Any:
    if isinstance(value, dict):
        return {k: _cut_lists(v, cap) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_lists(v, cap) for v in value[:cap]]
    return value
