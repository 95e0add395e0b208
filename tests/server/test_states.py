"""The move tables: every move they allow is allowed, every other one is refused."""

from __future__ import annotations

import itertools

import pytest

from brender.server.errors import FarmError
from brender.server.states import CHUNK_MOVES, FRAME_MOVES, JOB_MOVES, Moves


@pytest.mark.parametrize("moves", [JOB_MOVES, CHUNK_MOVES, FRAME_MOVES], ids=lambda m: m.item)
def test_every_move_outside_the_table_is_refused(moves: Moves) -> None:  # type: ignore[type-arg]
    states = list(moves.kind)
    for old, new in itertools.product(states, states):
        if old == new or new in moves.table[old]:
            moves.check(old.value, new)
            assert old.value in moves.sources(new) or old == new
        else:
            with pytest.raises(FarmError) as info:
                moves.check(old.value, new)
            assert info.value.code == "conflict"
            assert f"a {old.value} {moves.item} cannot become {new.value}" in str(info.value)
            assert old.value not in moves.sources(new)


def test_the_frame_table_says_what_a_farm_does() -> None:
    assert FRAME_MOVES.sources(FRAME_MOVES.kind("done")) == ("rendering",)
    assert set(FRAME_MOVES.sources(FRAME_MOVES.kind("queued"))) == {
        "rendering", "done", "failed", "canceled"
    }  # fmt: skip
    assert FRAME_MOVES.sources(FRAME_MOVES.kind("rendering")) == ("queued",)
