"""The makespan model with the server's end-game rule: a computation, no clock involved."""

from __future__ import annotations

from bench import chunkmodel
from bench.scenarios.makespan import SIZES, STARTUP, frame_cost, node_speeds


def efficiencies(size_name: str, dispatch: float) -> tuple[float, float]:
    size = SIZES.pick(size_name)
    costs = [frame_cost(size)(n) for n in range(1, size.frames + 1)]
    speeds = node_speeds(size.nodes)
    farm = chunkmodel.Farm(speeds, STARTUP * size.mean_cost, dispatch)
    auto, rule = chunkmodel.server_auto(), chunkmodel.server_endgame()
    assert auto is not None and rule is not None
    bound = chunkmodel.lower_bound(costs, speeds)
    plain, _ = chunkmodel.makespan(costs, farm, auto)
    endgame, _ = chunkmodel.makespan(costs, farm, auto, endgame=rule)
    return bound / plain, bound / endgame


def test_the_end_game_rule_shortens_the_modelled_tail() -> None:
    # The makespan scenario's 50 nodes of 0.5x-2x, 2,000 frames, a 4 ms dispatch delay.
    plain, endgame = efficiencies("full", 0.004)
    assert endgame > plain
    assert round(endgame, 3) >= 0.97


def test_the_model_finishes_every_frame_with_the_rule() -> None:
    for size_name in ("full", "quick", "toy"):
        for dispatch in (0.0, 0.004, 0.05):
            plain, endgame = efficiencies(size_name, dispatch)
            assert 0 < plain <= 1 and 0 < endgame <= 1
