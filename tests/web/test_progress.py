"""Live frame progress end to end: a real Blender frame of about 5 s, a real node and server;
the API shows its samples rising, the WebSocket carries them, the grid fills the cell."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blender_scene import SLOW_SAMPLES, blender_available, make_scene
from farmctl import NodeProcess, ServerProcess, wait_for
from web_helpers import Dashboard

pytestmark = pytest.mark.skipif(not blender_available(), reason="needs Blender")

# A frame of 5 s by Cycles' time limit, whatever the machine (1,500 samples took 5 s on one VM
# and 1.5 s on the next); its pixels never converge, so Cycles reports progress at each adaptive
# step (without adaptive sampling Cycles 3.4 in the background prints only the first and the
# last sample).
SAMPLES = SLOW_SAMPLES


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[tuple[ServerProcess, NodeProcess]]:
    server = ServerProcess(tmp_path / "server").start()
    node = NodeProcess(server.master, "progress-node", tmp_path / "node").start()
    try:
        yield server, node
    finally:
        node.stop()
        server.stop()


def ok(server: ServerProcess, request: dict[str, Any]) -> Any:
    answer = server.http(request)
    assert answer["ok"], answer
    return answer["data"]


def test_a_frame_in_flight_shows_its_samples(
    context: Any, farm: tuple[ServerProcess, NodeProcess], tmp_path: Path
) -> None:
    server, node = farm
    scene = make_scene(tmp_path / "slow.blend", 1, 1, resolution=128, seconds=5.0)
    wait_for(
        lambda: ok(server, {"item": "client", "action": "read"}),
        30,
        what="the node to connect",
    )
    job = ok(server, {"item": "job", "action": "submit", "values": {
        "project": "p", "sequence": "s", "shot": "slow", "blend_file": str(scene),
        "frame_start": 1, "frame_end": 1, "output": str(tmp_path / "out" / "####"),
    }})  # fmt: skip
    dash = Dashboard(context.new_page(), server.http_url, None)
    pushed: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        def frame(payload: Any) -> None:
            message = json.loads(payload)
            if message.get("type") == "changes":
                pushed.extend(message.get("progress", []))

        ws.on("framereceived", frame)

    dash.page.on("websocket", on_socket)
    page = dash.open(f"#/job/{job['id']}")
    page.locator("canvas.grid[data-total='1']").wait_for()
    page.locator("canvas.grid").click(position={"x": 3, "y": 3})  # the frame's detail

    api_samples: set[int] = set()
    job_samples: set[int] = set()
    partial: set[str] = set()
    detail: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        frames = ok(server, {"item": "frame", "action": "read", "filters": {"job_id": job["id"]}})
        live = frames[0]["live"]
        if live is not None and live["samples"] is not None:
            assert live["total"] == SAMPLES and live["frame"] == 1
            api_samples.add(live["samples"])
        (row,) = ok(server, {"item": "job", "action": "read", "filters": {"id": job["id"]}})
        job_samples |= {e["samples"] for e in row["live"] if e["samples"] is not None}
        cell = page.locator("canvas.grid").get_attribute("data-partial") or ""
        if cell.startswith("1:") and 0 < float(cell[2:]) < 1:
            partial.add(cell)
        shown = page.locator(".detail dd.live")
        if shown.count():
            detail.add(shown.get_attribute("data-samples") or "")
        ws_samples = {p["samples"] for p in pushed if p.get("samples") is not None}
        if (
            len(api_samples) >= 2
            and len(job_samples) >= 2
            and len(ws_samples) >= 2
            and len(partial) >= 2
            and len(detail - {""}) >= 2
        ):
            break
        if frames[0]["status"] == "done":
            break
        page.wait_for_timeout(150)  # lets Playwright deliver the socket's frames meanwhile
    ws_samples = {p["samples"] for p in pushed if p.get("samples") is not None}
    print(f"\nsamples seen: api {sorted(api_samples)}, ws {sorted(ws_samples)}, grid {partial}")
    assert len(api_samples) >= 2, (api_samples, node.log()[-3000:])
    assert len(job_samples) >= 2, job_samples
    assert len(ws_samples) >= 2, pushed
    assert all(p["job_id"] == job["id"] and p["total"] == SAMPLES for p in pushed if p["samples"])
    assert len(partial) >= 2, partial
    assert len(detail - {""}) >= 2, detail
    # Once saved, the frame is done and has no live progress left.
    wait_for(
        lambda: (
            ok(server, {"item": "job", "action": "read", "filters": {"id": job["id"]}})[0]["status"]
            == "completed"
        ),
        120,
        what="the job to complete",
    )
    (done,) = ok(server, {"item": "frame", "action": "read", "filters": {"job_id": job["id"]}})
    assert done["live"] is None
    page.wait_for_function(
        "() => { const c = document.querySelector('canvas.grid');"
        " return !!c && c.dataset.done === '1' && !c.dataset.partial; }"
    )
    # The render-time chart: one mark per done frame, at its render time, and the median.
    page.locator("svg.chart[data-marks='1']").wait_for()
    assert page.locator("svg.chart circle.mark").count() == 1
    mark = page.locator("svg.chart circle.mark")
    assert mark.get_attribute("data-frame") == "1"
    assert float(mark.get_attribute("data-seconds") or 0) == pytest.approx(
        done["render_time"], abs=0.01
    )
    mark.hover()
    page.locator("#tooltip", has_text="Frame 1").wait_for()
    print(f"frame render time {done['render_time']} s")
    assert dash.errors == []
