"""server/quiet.py, the one rate limit on log lines: a line a minute per key, then how many
were held back."""

from __future__ import annotations

import logging

import pytest

from brender.server.quiet import QuietLog

log = logging.getLogger("test_quiet")


def test_one_line_a_minute_per_key_then_how_many_were_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    quiet = QuietLog(clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test_quiet"):
        assert quiet.note((1, "bad"), log, logging.WARNING, "bad %d", 0)
        for i in range(1, 500):
            assert not quiet.note((1, "bad"), log, logging.WARNING, "bad %d", i)
        assert quiet.note((2, "bad"), log, logging.WARNING, "other node")  # its own key
        assert quiet.note((1, "rejected"), log, logging.WARNING, "another kind")
        now[0] += 59.0
        assert not quiet.note((1, "bad"), log, logging.WARNING, "bad late")
        now[0] += 1.0
        assert quiet.note((1, "bad"), log, logging.WARNING, "bad %s", "again")
        assert not quiet.note((1, "bad"), log, logging.WARNING, "bad once more")
    assert [r.getMessage() for r in caplog.records] == [
        "bad 0",
        "other node",
        "another kind",
        "bad again (and 500 more like it in the last 60 s, not logged)",
    ]
