"""Which of a node's Blenders renders a job, and why a job waits (the rule is brender.blendfile's).

A node says in its `hello` which Blenders it can run; a job knows the version that saved its
file (read from the .blend header at submit, sent by the submitter, or learnt from a node that
read the file), may ask for a Blender (`job.blender`) and may need auto-exec. The scheduler's
`may_take` asks `blender_for`; a job no online node may take shows `waiting` in the API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from brender import blendfile, messages
from brender.blendfile import Requirement, Version
from brender.server.live import LiveJob

log = logging.getLogger(__name__)

AUTOEXEC_WAIT = (
    "needs a node started with --allow-autoexec (the job runs the file's Python scripts);"
    " no online node allows it"
)


BPY_NEWEST = Version(5, 0)
"""The newest Blender on PyPI as `bpy` (for the advice to add a `--blender bpy` node)."""


class Needs(Protocol):
    """What a job asks of a node's Blender: a live job, or one not yet submitted (`Wants`)."""

    @property
    def file_version(self) -> Version | None: ...
    @property
    def requirement(self) -> Requirement | None: ...
    @property
    def autoexec(self) -> bool: ...


@dataclass(frozen=True)
class Wants:
    """The needs of a job about to be submitted (`job check`)."""

    file_version: Version | None = None
    requirement: Requirement | None = None
    autoexec: bool = False


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


def blender_for(node: NodeBlenders, job: Needs) -> str | None:
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
    return reason(job, list(online))


def reason(job: Needs, online: Sequence[NodeBlenders]) -> str | None:
    """Why none of these nodes may render the job ("needs Blender ≥ 4.5; online nodes have
    3.4.1"), or None when one may."""
    if any(blender_for(node, job) is not None for node in online):
        return None
    if job.autoexec and online and not any(node.allow_autoexec for node in online):
        return AUTOEXEC_WAIT
    return blendfile.waiting_reason(job.file_version, job.requirement, _versions(job, online))


def _versions(job: Needs, online: Sequence[NodeBlenders]) -> list[Version]:
    """The Blenders of the nodes that would take the job but for their versions."""
    return [v for n in online if n.allow_autoexec or not job.autoexec for v in n.versions]


def advice(job: Needs, online: Sequence[NodeBlenders]) -> str | None:
    """What to tell an artist about to submit, in words, or None when an online node can render
    the job. The add-on and `job check` show it as it is."""
    if not online:
        return "No node is online: the job will wait until one joins."
    if reason(job, online) is None:
        return None
    if job.autoexec and not any(node.allow_autoexec for node in online):
        return (
            "No node on the farm runs a file's Python scripts: start one with --allow-autoexec,"
            " or turn off Auto Run Python Scripts to render without them."
        )
    have = ", ".join(str(v) for v in sorted(set(_versions(job, online)))) or "no Blender named"
    fv, req = job.file_version, job.requirement
    if req is None and fv is not None:
        bpy = " or `--blender bpy`" if fv.series <= BPY_NEWEST else ""
        return (
            f"No node on the farm can open files from Blender {fv.series}: nodes have {have}."
            f" Add a node with Blender {fv.series}{bpy}."
        )
    needs = "any Blender" if req is None else req.describe()
    return f"No node on the farm has {needs}: nodes have {have}. Add a node with that Blender."
