"""Sizes as people write them on a command line: `500M`, `20G`, `1.5T`."""

from __future__ import annotations

UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """`123`, `64K`, `20M`, `8G`, `1T` (binary units, an optional `B`/`iB`) as bytes;
    ValueError for anything else."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] and raw[-1:] in UNITS else ""
    number = raw[: len(raw) - len(unit)].strip()
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 500M, 20G)") from None
    if value < 0:
        raise ValueError(f"not a size: {text!r}")
    return int(value * UNITS[unit])


def human(n: float) -> str:
    """Bytes for a person: `1.5 MiB`."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
