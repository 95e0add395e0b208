"""A chunk as any runner sees it: the order in, the events and the result out.

These types are all the rest of the node knows about rendering: the cold `BlenderRunner`
(runner.py, a Blender per chunk) and the `WarmRunner` (warm.py, a Blender per file, fed
chunk after chunk) both implement `Runner`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from brender.node.blender_log import Event


@dataclass(frozen=True)
class RenderOrder:
    """What to render: the fields of a `render` order, validated."""

    chunk_id: int
    blend_file: str
    frames: tuple[int, ...]
    output: str | None = None
    format: str | None = None
    job_id: int | None = None
    timeout: float | None = None
    """Seconds Blender may print nothing before it is killed as hung (None: no limit)."""
    blender: str | None = None
    """The version of the node's Blender to run (None: its first)."""
    autoexec: bool = False
    """Run the file's Python scripts (only on a node that allows it)."""
    manifest: str | None = None
    """An uploaded job's manifest (its SHA-256): the node fetches its files (node/packed.py)."""
    upload_key: str | None = None
    """An uploaded job: the secret its frame PUTs carry (node/fetch.py)."""

    @property
    def uploaded(self) -> bool:
        """An uploaded job's order (its files come from the farm and its frames go back to it,
        one file a frame), not one on shared storage."""
        return self.manifest is not None


@dataclass
class ChunkResult:
    """How a chunk ended; the body of `chunk_done`."""

    ok: bool
    exit_code: int | None
    canceled: bool = False
    frames_done: list[int] = field(default_factory=list)
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    note: str | None = None
    """Something the node says about how it ran the chunk (a warm Blender that could not
    start), sent in the log tail even when the chunk went well."""


EventCallback = Callable[[Event], None]


class Runner(Protocol):
    """Anything that renders chunks, one at a time."""

    async def run(self, order: RenderOrder, on_event: EventCallback) -> ChunkResult:
        """Render `order`, calling `on_event` as each frame starts and is saved."""
        ...

    def cancel(self) -> None:
        """Stop the chunk being run (or about to start); `run` then returns `canceled`."""
        ...

    async def close(self) -> None:
        """Stop whatever outlives a chunk (a warm Blender); the node is stopping."""
        ...


def is_contiguous(frames: Sequence[int]) -> bool:
    """True when the frames, in the given order, are first, first+1, …, last."""
    return all(b == a + 1 for a, b in itertools.pairwise(frames))
