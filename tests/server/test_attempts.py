"""Every try of a frame is kept (schema v6's `attempt`), written with its chunk's end."""

from __future__ import annotations

from pathlib import Path

import peewee as pw
from schedkit import Kit, run

from brender import messages
from brender.server.models import Frame
from brender.server.services import attempts


def history(job_id: int, number: int) -> list[dict[str, object]]:
    row = Frame.get(Frame.job == job_id, Frame.number == number).to_dict()
    return list(attempts.with_history([row])[0]["history"])


def test_a_frame_that_crashes_twice_then_renders_lists_three_attempts(
    db: pw.Database, tmp_path: Path
) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_end=2, chunk_size=2, max_attempts=3)
        n1, n2 = k.node("n1"), k.node("n2")
        first = k.claim(n1)
        assert first is not None
        k.saved(n1, first, 1)
        tail = ("Fra:2 Mem:1M", "Segmentation fault")
        k.s.chunk_ended(n1, messages.ChunkDone(first.chunk_id, False, -11, log_tail=tail))
        second = k.claim(n2)
        assert second is not None and second.frames == (2,)
        k.ended(n2, second.chunk_id, ok=False, error="Blender crashed", code=-11)
        third = k.claim(n1)
        assert third is not None and third.frames == (2,)
        k.saved(n1, third, 2)
        k.ended(n1, third.chunk_id)
        await k.committed()
        assert k.statuses(job.id) == ["done", "done"]
        tries = history(job.id, 2)
        assert [(t["client_id"], t["outcome"], t["exit_code"]) for t in tries] == [
            (n1, "failed", -11),
            (n2, "failed", -11),
            (n1, "done", 0),
        ]
        assert tries[0]["error"] == "Blender exited with code -11"
        assert tries[0]["log_tail"] == "\n".join(tail)
        assert tries[1]["error"] == "Blender crashed"
        for t in tries:
            assert isinstance(t["started_at"], float) and isinstance(t["finished_at"], float)
            assert t["started_at"] <= t["finished_at"]
        # Frame 1 was saved before the crash: one try, done, not blamed for the exit code.
        assert [(t["client_id"], t["outcome"], t["exit_code"]) for t in history(job.id, 1)] == [
            (n1, "done", None)
        ]

    run(db, tmp_path, body)


def test_a_node_that_goes_away_leaves_an_interrupted_attempt(
    db: pw.Database, tmp_path: Path
) -> None:
    async def body(k: Kit) -> None:
        job = await k.job(frame_end=3, chunk_size=3)
        n1 = k.node("n1")
        order = k.claim(n1)
        assert order is not None
        k.saved(n1, order, 1)
        k.s.give_back(n1, "connection lost")
        await k.committed()
        assert [t["outcome"] for t in history(job.id, 1)] == ["done"]
        (interrupted,) = history(job.id, 2)
        assert interrupted["outcome"] == "interrupted"
        assert interrupted["error"] == "connection lost"
        assert history(job.id, 3) == [], "a frame never started has no attempt"

    run(db, tmp_path, body)
