"""A connected node as the farm keeps it: what its `hello` said it can do, and what it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from brender.roots import OutputRoots
from brender.server.live import LiveJob
from brender.server.versions import NodeBlenders

if TYPE_CHECKING:
    from brender.server.nodes import NodeSession


@dataclass(eq=False)
class Node:
    """A connected node, as the farm keeps it."""

    client_id: int
    name: str
    session: NodeSession
    enabled: bool
    chunk_id: int | None = None
    job_id: int | None = None
    blenders: NodeBlenders = field(default_factory=NodeBlenders)
    warm: bool = False  # keeps Blender loaded between chunks (its hello says)
    outputs: OutputRoots = field(default_factory=OutputRoots)  # where it may write (its hello)

    def may_write(self, job: LiveJob) -> bool:
        """Whether this node may write the job's frames (brender.roots): an uploaded job's
        go to its work dir, always."""
        if job.manifest:
            return True
        return self.client_id not in job.unwritable and self.outputs.allows(
            job.output, job.blend_file
        )
