"""A frame that moves twice before its row is written is written once (FRAME_ROW's merge)."""

from __future__ import annotations

from brender.server.live import FRAME_ROW


def test_a_later_move_keeps_what_it_leaves_unchanged_and_takes_the_rest() -> None:
    merge = FRAME_ROW.merge
    assert merge is not None
    # status, client, attempts, chunk, started, finished, output, seconds, error, tail, job, n
    claimed = ("rendering", 4, 1, 77, 100.0, None, None, None, None, None, 1, 5)
    saved = ("done", 4, 1, None, None, 101.5, "/out/0005.png", 0.4, "", None, 1, 5)
    assert merge(claimed, saved) == (
        "done", 4, 1, 77, 100.0, 101.5, "/out/0005.png", 0.4, "", None, 1, 5,
    )  # fmt: skip
    # Given back: nobody holds it (None is a value for the client), its error stays.
    failed = ("failed", 4, 2, None, None, 102.0, None, None, "Blender crashed", "tail", 1, 5)
    requeued = ("queued", None, 2, None, None, None, None, None, None, None, 1, 5)
    assert merge(failed, requeued) == (
        "queued", None, 2, None, None, 102.0, None, None, "Blender crashed", "tail", 1, 5,
    )  # fmt: skip
