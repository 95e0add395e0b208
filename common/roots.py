"""Where a node may write: the one rule the node enforces and the server plans with.

A node writes frames only under its work dir, under the folders it is given with
`--output-root DIR`, and, when started with `--output-beside-blend` (the server's
`--local-node` is), under the folder of the job's .blend. The node checks each order against
the real paths (symbolic links resolved) and refuses one outside them; it names its roots in its
`hello`, so the server gives a job only to nodes that may write its output and says why a job
waits when none may (the comparison there is on the paths as written).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from brender import framepath


def output_folder(output: str, blend_file: str | None, frame: int = 0) -> str:
    """The folder an output pattern writes to (`//` against the .blend's), normalised."""
    path = framepath.resolve(output, frame, blend_file)
    return posixpath.normpath(posixpath.dirname(path) or ".")


def within(folder: str, root: str) -> bool:
    """Whether `folder` is `root` or inside it (both normalised absolute paths)."""
    return folder == root or folder.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class OutputRoots:
    """What a node says of where it may write (`hello`): its roots, and whether the folder of
    a job's .blend is one too. `roots` None: a node that did not say (older nodes), which may
    be sent anything."""

    roots: tuple[str, ...] | None = None
    beside_blend: bool = False

    def allows(self, output: str, blend_file: str) -> bool:
        """Whether this node may write an output (the paths as written, normalised)."""
        if self.roots is None:
            return True
        folder = output_folder(output, blend_file)
        roots = [posixpath.normpath(r) for r in self.roots]
        if self.beside_blend and blend_file:
            roots.append(posixpath.normpath(posixpath.dirname(blend_file)))
        return any(within(folder, root) for root in roots)


def refusal(
    output: str, blend_file: str, roots: Sequence[str], beside_blend: bool, frame: int = 0
) -> str | None:
    """Why a node with these roots must not write this output, or None when it may: the
    node's check, on real paths (a symbolic link out of a root is outside it)."""
    folder = os.path.realpath(output_folder(output, blend_file, frame))
    allowed = [os.path.realpath(r) for r in roots]
    named = list(roots)
    if beside_blend and blend_file:
        allowed.append(os.path.realpath(os.path.dirname(blend_file)))
        named.append("the folder of the job's .blend")
    if any(within(folder, root) for root in allowed):
        return None
    return (
        f"output {folder} is outside this node's output roots: {', '.join(named)}"
        " (start the node with --output-root DIR to let it write there)"
    )


def waiting_reason(output: str, blend_file: str, online: Sequence[OutputRoots]) -> str:
    """Why a job waits when no online node may write its output (`job read`'s `waiting`)."""
    folder = output_folder(output, blend_file)
    said = sorted({r for node in online for r in (node.roots or ())})
    have = f"their output roots are {', '.join(said)}" if said else "no node is online"
    return (
        f"no online node may write to {folder} ({have}): start a node with"
        f" --output-root {folder} or a folder above it"
    )
