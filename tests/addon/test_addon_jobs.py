"""Reading the farm's answers for the jobs panel, and when the panel refreshes, without Blender."""

from __future__ import annotations

import math

import addon_harness  # noqa: F401  (puts the repository root on sys.path)
import pytest

from addon import jobs
from addon.errors import FarmAnswerError

# As docs/api.md shows a `job read` row.
ROW = {
    "id": 1, "shot_id": 1, "name": "sh010", "blend_file": "/projects/spring/sh010.blend",
    "frame_start": 1, "frame_end": 12, "chunk_size": 3, "priority": 60,
    "output": "/renders/spring/sh010/####", "format": "PNG", "status": "active",
    "max_attempts": 3, "error": "", "created_at": 1795852529.9, "started_at": None,
    "finished_at": None, "progress": 0.25, "shot": "sh010", "sequence": "sq01",
    "project": "spring",
    "frames": {"total": 12, "queued": 6, "rendering": 3, "done": 3, "failed": 0, "canceled": 0},
}  # fmt: skip


def test_a_job_row() -> None:
    job = jobs.parse_job(ROW)
    assert (job.id, job.name, job.status, job.progress) == (1, "sh010", "active", 0.25)
    assert (job.done, job.total, job.frames_text) == (3, 12, "3/12 frames")
    assert (job.project, job.sequence, job.shot, job.priority) == ("spring", "sq01", "sh010", 60)
    assert job.can_pause and job.can_cancel and not job.can_resume


def test_what_the_job_needs_of_a_blender_and_why_it_waits() -> None:
    row = {**ROW, "file_version": "4.5", "blender": ">=4.2", "autoexec": True,
           "waiting": "needs Blender ≥ 4.5; online nodes have 3.4.1"}  # fmt: skip
    job = jobs.parse_job(row)
    assert job.blender_text == "Blender 4.5 file · asks for Blender >=4.2 · runs its scripts"
    assert job.waiting == "needs Blender ≥ 4.5; online nodes have 3.4.1"
    plain = jobs.parse_job({**ROW, "file_version": None, "waiting": None, "autoexec": "yes"})
    assert (plain.blender_text, plain.waiting, plain.autoexec) == ("", "", False)


def test_a_held_submit_belongs_to_its_file() -> None:
    board = jobs.Board()
    board.hold("/a/shot.blend", "No node on the farm can open files from Blender 4.5")
    assert board.held_for("/a/shot.blend").startswith("No node")
    assert board.held_for("/a/other.blend") == "" and board.held_for("") == ""
    board.hold("/a/shot.blend", "")
    assert board.held_for("/a/shot.blend") == ""
    board.hold("/a/shot.blend", "held")
    board.reset()
    assert board.held_for("/a/shot.blend") == ""


@pytest.mark.parametrize(
    ("status", "pause", "resume", "cancel"),
    [
        ("queued", True, False, True),
        ("paused", False, True, True),
        ("completed", False, False, False),
        ("failed", False, False, False),
        ("canceled", False, False, False),
    ],
)
def test_buttons_follow_the_state(status: str, pause: bool, resume: bool, cancel: bool) -> None:
    job = jobs.parse_job({**ROW, "status": status})
    assert (job.can_pause, job.can_resume, job.can_cancel) == (pause, resume, cancel)


def test_missing_or_odd_fields_do_not_break_the_panel() -> None:
    job = jobs.parse_job({"id": 7, "frames": {"total": 4, "done": 1, "failed": 2},
                          "progress": math.nan})  # fmt: skip
    assert (job.name, job.progress, job.frames_text) == ("job 7", 0.25, "1/4 frames, 2 failed")
    assert jobs.parse_job({"id": 8, "progress": 7}).progress == 1.0
    with pytest.raises(FarmAnswerError):
        jobs.parse_job({"name": "no id"})


def test_this_files_jobs_come_first_then_the_newest() -> None:
    rows = [{**ROW, "id": i, "blend_file": f} for i, f in
            [(1, "/a.blend"), (2, "/b.blend"), (3, "/a.blend"), (4, "/c.blend")]]  # fmt: skip
    # The same job comes back from both reads of a refresh: it is listed once.
    snap = jobs.parse_snapshot([rows[::2], rows, [], [], []], "/x/../a.blend")
    assert [j.id for j in snap.jobs] == [3, 1, 4, 2]
    assert jobs.same_file("C:\\Films\\A.blend", "c:\\films\\a.blend")
    assert not jobs.same_file("", "")


def test_names_for_suggestions() -> None:
    names = jobs.parse_names(
        [{"id": 1, "name": "spring"}, {"id": 2, "name": "agent"}],
        [{"id": 1, "project_id": 1, "name": "sq02"}, {"id": 2, "project_id": 1, "name": "sq01"},
         {"id": 3, "project_id": 2, "name": "sq01"}],
        [{"id": 1, "sequence_id": 2, "name": "sh010"}, {"id": 2, "sequence_id": 3, "name": "sh999"}],
    )  # fmt: skip
    assert names.projects == ("agent", "spring")
    assert names.sequences_of("spring") == ("sq01", "sq02")
    assert names.shots_of("spring", "sq01") == ("sh010",)
    assert names.shots_of("agent", "sq01") == ("sh999",)
    assert names.shots_of("nope", "sq01") == ()


def test_a_malformed_answer_is_refused() -> None:
    with pytest.raises(FarmAnswerError):
        jobs.parse_snapshot([{"not": "a list"}, [], [], [], []], "")
    with pytest.raises(FarmAnswerError):
        jobs.parse_snapshot([[]], "")


def test_the_board_refreshes_only_while_the_panel_is_on_screen() -> None:
    board = jobs.Board()
    assert not board.wants_refresh(now=100.0, every=3.0)  # never drawn
    board.seen(100.0)
    assert board.wants_refresh(100.0, 3.0)
    board.pending = 5
    assert not board.wants_refresh(100.0, 3.0)  # one refresh at a time
    board.apply(101.0, jobs.Snapshot(), "")
    assert not board.wants_refresh(102.0, 3.0) and board.wants_refresh(104.0, 3.0)
    board.stale = True  # after a submit or a pause: at once
    assert board.wants_refresh(102.0, 3.0)
    assert not board.wants_refresh(200.0, 3.0)  # the panel went away
    board.apply(103.0, None, "Cannot reach the farm")
    assert board.error == "Cannot reach the farm" and board.snapshot == jobs.Snapshot()
    board.reset()
    assert board == jobs.Board()


def test_the_eta_of_a_job_row() -> None:
    assert jobs.parse_job({**ROW, "eta_seconds": 725.4}).eta_text == "12 min 05 s left"
    assert jobs.parse_job({**ROW, "eta_seconds": 42}).eta_text == "42 s left"
    assert jobs.parse_job({**ROW, "eta_seconds": 11220}).eta_text == "3 h 07 min left"
    for odd in (None, "soon", True, math.nan):
        job = jobs.parse_job({**ROW, "eta_seconds": odd})
        assert job.eta_seconds is None and job.eta_text == "—"


def test_the_progress_bar_words_give_an_estimate_only_while_there_is_work() -> None:
    active = jobs.parse_job({**ROW, "eta_seconds": 42})
    assert active.progress_text == "3/12 frames · 42 s left"
    done = jobs.parse_job({**ROW, "status": "completed", "eta_seconds": 0.0})
    assert done.progress_text == "3/12 frames"
