"""Pages cut by bytes, and rows too big for an answer cut short (server/budget.py)."""

from __future__ import annotations

import pytest

from brender import wire
from brender.server import api, budget
from brender.server.errors import FarmError
from brender.server.services.query import Page


def rows(n: int, text: str = "") -> list[dict[str, object]]:
    return [{"id": i, "status": "queued", "error": text} for i in range(n)]


def test_a_page_keeps_the_rows_that_fit_and_says_how_many() -> None:
    page = Page(rows(20_000, "e" * 100), total=25_000, limit=20_000, offset=5)
    out = api.answer({"id": "x" * 10_000}, True, page)
    assert len(wire.encode(out)) <= budget.PAGE_BYTES
    assert out["limit"] == len(out["data"]) < 20_000
    assert out["data"] == page.rows[: out["limit"]]  # whole rows, in order, none cut
    assert (out["total"], out["offset"], out["id"]) == (25_000, 5, "x" * 10_000)


def test_a_page_that_fits_is_left_as_asked() -> None:
    out = api.answer(None, True, Page(rows(3), total=3, limit=1000, offset=0))
    assert out["limit"] == 1000 and len(out["data"]) == 3


def test_a_row_too_big_alone_has_its_longest_texts_cut() -> None:
    row = {"id": 1, "name": "sh010", "error": "E" * 600_000, "log_tail": "L" * 600_000}
    (cut,) = budget.fit_rows([row, {"id": 2}], 500_000)
    assert budget.size(cut) <= 500_000 - 1
    assert cut["truncated"] is True and (cut["id"], cut["name"]) == (1, "sh010")
    assert cut["error"].endswith(budget.CUT) and cut["error"].startswith("E" * 200_000)
    assert len(cut["error"]) == len(cut["log_tail"])  # the same cap for every long text


def test_lists_are_cut_when_texts_are_not_enough() -> None:
    row = {"id": 1, "blocklist": [{"client_id": i, "reason": "r" * 50} for i in range(20_000)]}
    cut = budget.shrink(row, 100_000)
    assert budget.size(cut) <= 100_000 and cut["truncated"] is True
    assert 0 < len(cut["blocklist"]) < 20_000
    assert cut["blocklist"][0]["client_id"] == 0


def test_a_row_that_cannot_fit_at_all_is_an_error() -> None:
    with pytest.raises(FarmError) as caught:
        budget.shrink({"id": 1, "error": "e" * 1000}, 10)
    assert caught.value.code == "too_large"
