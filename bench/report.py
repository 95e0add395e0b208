"""What a scenario answers: its figures against their targets, as a table and one JSON line.

The last line a scenario prints is `Result.json_line()`, so a script (CI, a dashboard, a
regression check) can read `tail -n 1` without parsing the table above it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Check:
    """One figure against its target. `better` says which way is good."""

    metric: str
    value: float
    unit: str
    target: float
    better: str  # "lower" | "higher"

    @property
    def meets(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value <= self.target if self.better == "lower" else self.value >= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": _clean(self.value),
            "unit": self.unit,
            "target": self.target,
            "better": self.better,
            "meets": self.meets,
        }


@dataclass
class Result:
    """A scenario's outcome: the headline check first, then any others (all must be met)."""

    scenario: str
    size: str
    checks: list[Check]
    table: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def meets(self) -> bool:
        return all(c.meets for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        head = self.checks[0]
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "metric": head.metric,
            "value": _clean(head.value),
            "unit": head.unit,
            "target": head.target,
            "better": head.better,
            "meets": self.meets,
            "size": self.size,
        }
        if len(self.checks) > 1:
            out["checks"] = [c.as_dict() for c in self.checks]
        out.update({k: _clean(v) for k, v in self.details.items()})
        out["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        out["host"] = platform.node()
        out["cpus"] = os.cpu_count()
        out["commit"] = _commit()
        out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
        return out

    def json_line(self) -> str:
        return json.dumps(self.as_dict(), separators=(", ", ": "))

    def text(self) -> str:
        """The readable part: the measurements table, the checks, and notes."""
        parts = [f"== {self.scenario} ({self.size}) =="]
        if self.table:
            parts.append(format_table(self.table))
        checks = [
            {
                "check": c.metric,
                "value": _round(c.value),
                "unit": c.unit,
                "target": f"{'<=' if c.better == 'lower' else '>='} {c.target:g}",
                "met": "yes" if c.meets else "NO",
            }
            for c in self.checks
        ]
        parts.append(format_table(checks))
        parts.extend(f"note: {n}" for n in self.notes)
        return "\n".join(parts)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as an aligned text table (columns in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    numeric = [
        all(isinstance(row.get(c), int | float) for row in rows if c in row) for c in columns
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append(
            "  ".join(
                v.rjust(w) if num else v.ljust(w)
                for v, w, num in zip(r, widths, numeric, strict=True)
            ).rstrip()
        )
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[max(0, int(q * 10) - 1)]


def _commit() -> str | None:
    """The checkout's commit, with `+dirty` when the server's files have local changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "server", "node", "brender"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{head}+dirty" if head and dirty else head or None


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{_round(value):g}"
    return str(value)


def _round(value: float) -> float:
    if not isinstance(value, float) or math.isnan(value) or math.isinf(value):
        return value
    if value == 0:
        return 0.0
    digits = max(0, 4 - math.floor(math.log10(abs(value))))
    return round(value, digits)


def _clean(value: Any) -> Any:
    """Floats rounded, NaN as null: the JSON line stays valid JSON."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else _round(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
