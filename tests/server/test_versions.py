"""Which nodes may render a job by its Blender needs, and what an artist is told before submit."""

from __future__ import annotations

import pytest

from brender.blendfile import Requirement, Version
from brender.server.versions import NodeBlenders, Wants, advice, blender_for, reason


def node(*versions: str, autoexec: bool = False) -> NodeBlenders:
    return NodeBlenders(tuple(Version.parse(v) for v in versions), versions, autoexec)


DEBIAN, BPY, BOTH = node("3.4.1"), node("4.5.15"), node("3.4.1", "4.5.15")
FILE_45 = Wants(Version(4, 5))


def test_a_node_opens_files_of_its_own_or_older_versions() -> None:
    assert blender_for(BOTH, Wants(Version(3, 4))) == "3.4.1"
    assert blender_for(BOTH, FILE_45) == "4.5.15"
    assert blender_for(DEBIAN, FILE_45) is None
    assert blender_for(DEBIAN, Wants()) == "3.4.1"
    assert blender_for(BPY, Wants(requirement=Requirement.parse("3.4"))) is None
    assert blender_for(BPY, Wants(autoexec=True)) is None
    assert blender_for(node("4.5.15", autoexec=True), Wants(autoexec=True)) == "4.5.15"


def test_the_reason_names_what_is_needed_and_what_is_online() -> None:
    assert reason(FILE_45, [DEBIAN, BPY]) is None
    assert reason(FILE_45, [DEBIAN]) == "needs Blender ≥ 4.5; online nodes have 3.4.1"
    assert reason(FILE_45, []) == "needs Blender ≥ 4.5; no node is online"
    assert "--allow-autoexec" in str(reason(Wants(autoexec=True), [DEBIAN, BPY]))


@pytest.mark.parametrize(
    ("wants", "online", "words"),
    [
        (FILE_45, [DEBIAN], "No node on the farm can open files from Blender 4.5: nodes have "
         "3.4.1. Add a node with Blender 4.5 or `--blender bpy`."),
        (Wants(Version(5, 1)), [DEBIAN, BPY], "No node on the farm can open files from Blender "
         "5.1: nodes have 3.4.1, 4.5.15. Add a node with Blender 5.1."),
        (Wants(requirement=Requirement.parse("4.2")), [DEBIAN, BPY], "No node on the farm has "
         "Blender 4.2: nodes have 3.4.1, 4.5.15. Add a node with that Blender."),
        (Wants(autoexec=True), [BPY], "No node on the farm runs a file's Python scripts: start "
         "one with --allow-autoexec, or turn off Auto Run Python Scripts to render without them."),
        (FILE_45, [], "No node is online: the job will wait until one joins."),
        (FILE_45, [DEBIAN, BPY], None),
    ],
)  # fmt: skip
def test_advice_before_submit(wants: Wants, online: list[NodeBlenders], words: str | None) -> None:
    assert advice(wants, online) == words


def test_auto_exec_only_counts_the_nodes_that_allow_it() -> None:
    # One node allows auto-exec but is too old; the new one does not allow it.
    online = [node("3.4.1", autoexec=True), BPY]
    wants = Wants(Version(4, 5), autoexec=True)
    assert reason(wants, online) == "needs Blender ≥ 4.5; online nodes have 3.4.1"
    assert advice(wants, online) == (
        "No node on the farm can open files from Blender 4.5: nodes have 3.4.1. "
        "Add a node with Blender 4.5 or `--blender bpy`."
    )
