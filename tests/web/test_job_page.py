"""The job page in a real browser (Debian's Chromium): how it describes a job's chunking, and
a grid read in pages cut by size (no Blender needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from farmctl import ServerProcess
from web_helpers import Dashboard

# The text after the "Frames" term of the job's facts, or false while it is not shown yet
# (a wait's predicate must answer false, never throw, while the page is still building).
FRAMES_FACT = """() => {
  const dt = [...document.querySelectorAll('dl.facts dt')].find((d) => d.textContent === 'Frames');
  return dt?.nextElementSibling?.textContent || false;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("job-page") / "server").start()
    yield srv
    srv.stop()


def submit(server: ServerProcess, shot: str, **values: Any) -> dict[str, Any]:
    base = {"project": "p", "sequence": "sq", "shot": shot, "blend_file": f"/{shot}.blend"}
    answer = server.http(
        {"item": "job", "action": "submit", "values": {**base, "paused": True, **values}}
    )
    assert answer["ok"], answer
    return dict(answer["data"])


def frames_fact(page: Any, job: dict[str, Any]) -> str:
    """The "Frames" fact once the page shows this job's range."""
    wanted = f"{job['frame_start']}–{job['frame_end']} "
    handle = page.wait_for_function(
        f"() => {{ const t = ({FRAMES_FACT})(); return !!t && t.startsWith({wanted!r}) && t; }}"
    )
    return str(handle.json_value())


def test_automatic_chunking_is_named_not_shown_as_chunks_of_0(
    context: Any, server: ServerProcess
) -> None:
    auto = submit(server, "auto", frame_end=48)  # chunk_size left out: 0, automatic
    fixed = submit(server, "fixed", frame_start=5, frame_end=20, chunk_size=4)
    assert (auto["chunk_size"], fixed["chunk_size"]) == (0, 4)
    dash = Dashboard(context.new_page(), server.http_url, None)
    page = dash.open(f"#/job/{auto['id']}")
    assert frames_fact(page, auto) == "1–48 in automatic chunks"
    dash.go(f"#/job/{fixed['id']}")
    assert frames_fact(page, fixed) == "5–20 in chunks of 4"
    assert dash.errors == [], dash.errors


def test_a_grid_bigger_than_one_answer_is_read_whole(context: Any, server: ServerProcess) -> None:
    # 10,000 frames take three pages of the API (docs/api.md, "Pages"); a cancel of the job
    # marks them all, so every cell must come from a row the page read.
    job = submit(server, "big", frame_end=10_000, chunk_size=2_500)
    assert server.http({"item": "job", "action": "cancel", "filters": {"id": job["id"]}})["ok"]
    dash = Dashboard(context.new_page(), server.http_url, None)
    page = dash.open(f"#/job/{job['id']}")
    page.wait_for_function(
        "() => document.querySelector('canvas.grid')?.dataset.total === '10000'"
        " && document.querySelector('.nums')?.textContent.includes('10000 canceled')"
    )
    assert frames_fact(page, job) == "1–10000 in chunks of 2500"
    assert dash.errors == [], dash.errors
