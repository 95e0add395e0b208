"""Which of a node's Blenders renders a job, and why a job waits (the rule is brender.blendfile's).

A node says in its `hello` which Blenders it can run; a job knows the version that saved its
file (read from the .blend header at submit, sent by the submitter, or learnt from a node that
read the file), may ask for a Blender (`job.blender`) and may need auto-exec. The scheduler's
`may_take` asks `blender_for`; a job no online node may take shows `waiting` in the API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from brender import blendfile, messages
from brender.blendfile import Version
from brender.server.live import LiveJob

log = logging.getLogger(__name__)

AUTOEXEC_WAIT = (
    "needs a node started with --allow-autoexec (the job runs the file's Python scripts);"
    " no online node allows it"
)


@dataclass(frozen=True)
class NodeBlenders:
    """The Blenders of one node: their versions (parsed) and the names it gave them."""

    versions: tuple[Version, ...] = ()
    names: tuple[str, ...] = ()
    allow_autoexec: bool = False

    @classmethod
    def of(cls, hello: messages.Hello) -> NodeBlenders:
        versions: list[Version] = []
        names: list[str] = []
        for blender in hello.blenders:
            try:
                versions.append(Version.parse(blender.version))
            except ValueError:
                log.warning("node %s: ignoring Blender version %r", hello.name, blender.version)
                continue
            names.append(blender.version)
        return cls(tuple(versions), tuple(names), hello.allow_autoexec)


def blender_for(node: NodeBlenders, job: LiveJob) -> str | None:
    """The version of the node's Blender to render the job with ("" for a node that named no
    Blender), or None when the node may not render it."""
    if job.autoexec and not node.allow_autoexec:
        return None
    if not node.versions:
        # A node that did not say: only for jobs that ask for nothing in particular.
        return "" if job.file_version is None and job.requirement is None else None
    if len(node.versions) == 1 and job.file_version is None and job.requirement is None:
        return node.names[0]  # the common case, without the rule's work
    index = blendfile.pick(node.versions, job.file_version, job.requirement)
    return None if index is None else node.names[index]


def waiting(job: LiveJob, online: Iterable[NodeBlenders]) -> str | None:
    """Why no online node may take this job's queued chunks, or None when one may (or the job
    has nothing queued, or is paused)."""
    if not job.queue or not job.dispatchable:
        return None
    nodes = list(online)
    if any(blender_for(node, job) is not None for node in nodes):
        return None
    if job.autoexec and not any(node.allow_autoexec for node in nodes) and nodes:
        return AUTOEXEC_WAIT
    pool = [n for n in nodes if n.allow_autoexec or not job.autoexec]
    versions = [v for n in pool for v in n.versions]
    return blendfile.waiting_reason(job.file_version, job.requirement, versions)
