"""The ETA of a job: its frames left shared among the nodes on it by their measured pace."""

from __future__ import annotations

import pytest

from brender.server.services.eta import Pace, eta_seconds


def test_no_data_no_estimate() -> None:
    assert eta_seconds(10, {}, [1, 2]) is None  # nothing measured yet
    assert eta_seconds(10, {1: None}, [1]) is None  # a node that reported no time
    assert eta_seconds(10, {1: 2.0}, []) is None  # nobody on the job now


def test_nothing_left_is_zero() -> None:
    assert eta_seconds(0, {}, []) == 0.0


def test_frames_are_shared_by_speed() -> None:
    # 1 s and 3 s a frame: 4/3 frames a second together.
    assert eta_seconds(40, {1: 1.0, 2: 3.0}, [1, 2]) == pytest.approx(30.0)
    # Only the nodes working on it now count, at their own pace.
    assert eta_seconds(40, {1: 1.0, 2: 3.0}, [2]) == pytest.approx(120.0)


def test_an_unmeasured_node_counts_at_the_average_pace() -> None:
    # Node 3 has not finished a frame of this job: it counts as an average node (1.5 s).
    assert eta_seconds(90, {1: 1.0, 2: 3.0}, [1, 3]) == pytest.approx(90 / (1 + 1 / 1.5))


def test_pace() -> None:
    assert Pace(10.0, 5).per_frame == 2.0
    assert Pace().per_frame is None
