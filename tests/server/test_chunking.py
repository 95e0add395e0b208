"""Automatic chunking: the sizes, and jobs carved up as nodes claim them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brender.server import chunking, sizing
from brender.server.live import LiveJob


@dataclass
class _Idle:
    chunk_id: int | None = None
    job_id: int | None = None


def test_a_lone_node_gets_everything_in_one_chunk() -> None:
    assert chunking.frames_for(24, 1, None, None) == 24
    # ... but no chunk longer than about TARGET_SECONDS once frame times are known.
    assert chunking.frames_for(10_000, 1, 1.0, 2.0) == int(chunking.TARGET_SECONDS / 2.0)


def test_a_warm_node_gets_short_chunks() -> None:
    # No start-up per chunk: once frame times are known, chunks of about WARM_TARGET_SECONDS.
    assert chunking.frames_for(24, 1, None, None, warm=True) == 24
    assert chunking.frames_for(10_000, 1, 1.0, 2.0, warm=True) == int(
        chunking.WARM_TARGET_SECONDS / 2.0
    )
    assert chunking.frames_for(24, 1, 1.0, 0.1, warm=True) == 24  # short frames: all at once
    # On a farm, a warm node's share never exceeds what a cold one would get.
    for left, nodes, speed, seconds in ((2000, 50, 2.0, 0.5), (100, 4, 1.0, 3.0)):
        warm = chunking.frames_for(left, nodes, speed, seconds, warm=True)
        assert 1 <= warm <= chunking.frames_for(left, nodes, speed, seconds)


def test_shares_shrink_and_follow_speed() -> None:
    unknown = chunking.frames_for(2000, 50, None, None)
    fast = chunking.frames_for(2000, 50, 2.0, 0.5)
    slow = chunking.frames_for(2000, 50, 0.5, 2.0)
    assert unknown < slow < fast
    assert chunking.frames_for(100, 50, 1.0, 1.0) < chunking.frames_for(1000, 50, 1.0, 1.0)
    assert chunking.frames_for(3, 50, 1.0, 1.0) == 1


def test_speed_book() -> None:
    book = chunking.SpeedBook()
    assert book.speed(1, 7) is None
    for _ in range(4):
        book.record(1, 7, 1.0)
        book.record(1, 8, 3.0)
    assert book.speed(1, 7) == 2.0 and book.speed(1, 8) == 2.0 / 3.0
    assert book.frame_seconds(1, 8) == 3.0


def test_end_game_only_once_fewer_frames_than_nodes_are_left() -> None:
    idle_fast = [(0.0, 1.0)] * 3
    # Four nodes, four frames left: even a slow node takes one.
    assert chunking.should_take_frame(4, 10.0, idle_fast, now=0.0)
    # Three left: the three fast ones end them at 1.0, the slow one would at 10.0.
    assert not chunking.should_take_frame(3, 10.0, idle_fast, now=0.0)
    assert chunking.should_take_frame(3, 1.0, [(0.0, 10.0), *idle_fast[:2]], now=0.0)
    assert not chunking.should_take_frame(0, 1.0, idle_fast, now=0.0)


def test_end_game_counts_when_busy_nodes_come_free() -> None:
    now = 100.0
    # A fast node busy until 100.5 ends one more frame at 101.5, before a 3 s node at 103.
    assert not chunking.should_take_frame(1, 3.0, [(100.5, 1.0)], now=now)
    # Busy until 102.5 it would end at 103.5: the slower idle node ends it sooner.
    assert chunking.should_take_frame(1, 3.0, [(102.5, 1.0)], now=now)
    # Two frames left and only one node sooner: this one takes the other frame.
    assert chunking.should_take_frame(2, 3.0, [(100.5, 1.0), (102.5, 1.0)], now=now)
    # An idle node's free-at in the past means "free now", not "finished already".
    assert chunking.should_take_frame(1, 2.0, [(95.0, 3.0)], now=now)
    assert not chunking.should_take_frame(1, 2.0, [(95.0, 1.5)], now=now)
    # Ties: equally fast nodes all take (each would be among the earliest).
    assert chunking.should_take_frame(1, 2.0, [(now, 2.0)] * 5, now=now)


def test_end_game_unknown_nodes_count_at_average_speed() -> None:
    # Average speed of nodes taking 1 s and 3 s a frame: 1.5 s a frame (harmonic mean).
    assert not chunking.should_take_frame(1, None, [(0.0, 1.0), (0.0, 3.0)], now=0.0)
    assert chunking.should_take_frame(2, None, [(0.0, 1.0), (0.0, 3.0)], now=0.0)
    # An unknown other counts at 2.4 s beside 3 s and 2 s nodes: sooner than the 3 s one ...
    assert not chunking.should_take_frame(2, 3.0, [(0.0, None), (0.0, 2.0)], now=0.0)
    # ... and at 2.67 s beside 2 s and 4 s ones: later than the 2 s one.
    assert chunking.should_take_frame(1, 2.0, [(0.0, None), (0.0, 4.0)], now=0.0)
    # Nothing measured yet: no reason to hold a node back.
    assert chunking.should_take_frame(1, None, [(0.0, None)] * 4, now=0.0)
    assert chunking.should_take_frame(1, 0.0, [(0.0, 0.0)], now=0.0)


@given(
    st.lists(
        st.tuples(st.floats(0, 100), st.one_of(st.none(), st.floats(0.01, 100))),
        min_size=2,
        max_size=30,
    ),
    st.integers(1, 40),
)
def test_end_game_never_holds_back_the_node_that_would_end_first(
    nodes: list[tuple[float, float | None]], left: int
) -> None:
    """Whoever would finish the next frame soonest takes it once it is free: the rule cannot
    leave a job with frames no node will take."""
    known = [s for _, s in nodes if s is not None]
    average = len(known) / sum(1 / s for s in known) if known else 1.0
    now = 50.0
    finish = [max(free, now) + (s if s is not None else average) for free, s in nodes]
    first = finish.index(min(finish))
    others = nodes[:first] + nodes[first + 1 :]
    # Asked when it comes free (or now, if it is idle already).
    at = max(nodes[first][0], now)
    assert chunking.should_take_frame(left, nodes[first][1], others, now=at)


def test_end_game_with_no_frame_time_known_lets_any_node_take_without_a_pass() -> None:
    """Frames that took no measurable time (or none reported yet): nobody is known to be
    sooner, so the rule answers yes without listing the working nodes (at 1,000 nodes that
    pass was ~0.5 ms a claim for a job's last 1,000 frames)."""
    job = LiveJob(1, 0, "active", 0, "/a.blend", "/out/####", "PNG", 600, 3)
    job.counts["queued"] = 2  # fewer than the 10 nodes: the end game
    speeds = chunking.SpeedBook()
    speeds.record(1, 7, 0.0)  # an instant frame is not a measured time

    def working() -> list[int]:
        raise AssertionError("no pass over the nodes is needed")

    nodes = {cid: _Idle() for cid in range(10)}  # all idle
    assert sizing.endgame(speeds, job, 3, nodes, working, {})
    speeds.record(1, 7, 2.0)  # now one is measured: the pass runs (and asks `working`)
    with pytest.raises(AssertionError, match="no pass"):
        sizing.endgame(speeds, job, 3, nodes, working, {})
