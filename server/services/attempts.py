"""A frame's tries (the `attempt` table, schema v6): every node that rendered it, when, how it
ended and the log tail of a failure, for the frame read and the dashboard's frame detail."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from brender.server.models import Attempt

FIELDS = (
    "chunk_id", "client_id", "outcome", "exit_code", "error", "log_tail", "started_at",
    "finished_at",
)  # fmt: skip


def with_history(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `history` to frame rows: their attempts, oldest first. One query per job on the page
    (its frames' numbers as a range, filtered here), not one per frame."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        wanted[row["job_id"]].add(row["number"])
    found: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for job_id, numbers in wanted.items():
        query = (
            Attempt.select()
            .where(Attempt.job == job_id, Attempt.number.between(min(numbers), max(numbers)))
            .order_by(Attempt.id)
        )
        for attempt in query:
            if attempt.number in numbers:
                data = attempt.to_dict()
                found[(job_id, attempt.number)].append({k: data[k] for k in FIELDS})
    for row in rows:
        row["history"] = found.get((row["job_id"], row["number"]), [])
    return rows
