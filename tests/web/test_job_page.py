"""The job page in a real browser (Debian's Chromium): how it describes a job's chunking, and
a grid read in pages cut by size (no Blender needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farmctl import ServerProcess, wait_for
from PIL import Image
from web_helpers import Dashboard, FakeNode, saving

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


def test_a_failed_job_leads_with_its_first_failure_and_lists_attempts(
    context: Any, server: ServerProcess, tmp_path: Path
) -> None:
    picture = tmp_path / "frame.png"
    Image.new("RGB", (64, 64), (200, 200, 200)).save(picture)
    node = FakeNode(server.tcp_port, "flaky", saving(picture), fail_once={3})
    try:
        job = submit(server, "fails", frame_end=4, chunk_size=2, max_attempts=1, paused=False,
                     output=str(tmp_path / "####"))  # fmt: skip
        wait_for(
            lambda: server.http({"item": "job", "action": "read",
                                 "filters": {"id": job["id"]}})["data"][0]["status"] == "failed",
            30,
            what="the job to fail",
        )  # fmt: skip
    finally:
        node.close()
    dash = Dashboard(context.new_page(), server.http_url, None)
    page = dash.open(f"#/job/{job['id']}")
    page.wait_for_selector(".first-failure:not([hidden])")
    # The banner comes first under the title bar, before the summary and the grid.
    order = page.evaluate(
        "() => [...document.querySelector('.jobview').children].map((e) => e.className)"
    )
    assert order[:2] == ["titlebar", "first-failure panel"], order
    banner = page.locator(".first-failure").inner_text()
    assert "This job failed" in banner and "frame 3: Error: stand-in failure" in banner, banner
    page.locator(".first-failure button").click()
    page.wait_for_selector("table.attempts tbody tr")
    rows = page.locator("table.attempts tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-outcome") == "failed"
    assert "flaky" in rows.first.inner_text() and "1" in rows.first.locator("td.exit").inner_text()
    # Its log tail is the frame's own, shown once under the list (not folded in again).
    assert page.locator("details.attemptlog").count() == 0
    assert "stand-in failure" in page.locator(".detail pre.log").inner_text()
    assert dash.errors == [], dash.errors
