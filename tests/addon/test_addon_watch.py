"""Word when a job ends, without Blender: which jobs are watched, when the artist is told, in
what words, and where the folder and the last frame are on this machine."""

from __future__ import annotations

from typing import Any

import addon_harness  # noqa: F401  (puts the repository root on sys.path)

from addon import watch


def row(job_id: int, status: str, **extra: Any) -> dict[str, Any]:
    base = {"id": job_id, "name": f"sh{job_id}", "status": status, "output": "/r/sh/####",
            "storage": "shared", "frames": {"total": 4, "done": 4 if status == "completed" else 1}}  # fmt: skip
    return {**base, **extra}


def test_only_this_blenders_jobs_are_told_once_when_they_end() -> None:
    w = watch.Watch()
    w.submitted({"id": 1, "status": "queued"})
    w.submitted({"id": 2, "status": "paused"})
    assert w.wants_poll(10.0, 2.0) and w.poll_request()["filters"] == {"id": [1, 2]}
    assert w.observe([row(1, "active"), row(2, "paused"), row(9, "completed")], 10.0) == []
    assert not w.wants_poll(11.0, 2.0), "not before the interval"
    done = row(1, "completed", started_at=100.0, finished_at=175.0,
               outputs=[{"kind": "movie", "file": "/r/sh/0001-0004.mp4"}])  # fmt: skip
    failed = row(2, "failed", error="frame 3: Blender exited with code -11")
    (told_done, told_failed) = w.observe([done, failed], 12.0)
    assert told_done.text == (
        "Farm job 1 (sh1) completed: 4 frame(s) and the movie /r/sh/0001-0004.mp4 in 1 min 15 s"
    )
    assert (told_done.level, told_done.ok) == ("INFO", True)
    assert told_failed.text == "Farm job 2 (sh2) failed: frame 3: Blender exited with code -11"
    assert told_failed.level == "ERROR"
    assert [n.job_id for n in w.notices] == [2, 1] and w.notice(1) is told_done
    assert w.open_ids() == [] and not w.wants_poll(100.0, 2.0)
    assert w.observe([done], 14.0) == [], "told once"


def test_a_failed_poll_waits_for_the_next_interval() -> None:
    w = watch.Watch()
    w.submitted({"id": 5, "status": "queued"})
    w.pending = 7
    assert not w.wants_poll(50.0, 2.0)
    w.gone(50.0)
    assert not w.wants_poll(51.0, 2.0) and w.wants_poll(52.5, 2.0)


def test_the_folder_and_last_frame_on_this_machine() -> None:
    shared = watch.notice_for(watch.parse_job(row(1, "completed")), row(1, "completed"))
    assert watch.where_to_look(shared, "/home/me/renders") == "/r/sh"
    frame = {"number": 4, "output_file": "/r/sh/0004.png"}
    assert watch.last_frame_path(shared, frame, "/home/me/renders") == "/r/sh/0004.png"
    up_row = row(2, "completed", output="/srv/farm/renders/p/s/sh/job-2/####", storage="upload")
    uploaded = watch.notice_for(watch.parse_job(up_row), up_row)
    assert watch.where_to_look(uploaded, "/home/me/renders") == "/home/me/renders"
    far = {"number": 4, "output_file": "/srv/farm/renders/p/s/sh/job-2/0004.png"}
    assert watch.last_frame_path(uploaded, far, "/home/me/renders") == "/home/me/renders/0004.png"
    assert watch.output_folder("C:\\renders\\sh\\####") == "C:\\renders\\sh"
    assert watch.last_frame_request(3)["order_by"] == "-number"
