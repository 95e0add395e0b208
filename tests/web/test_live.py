"""The dashboard under load and across a server restart (no Blender needed: a stand-in node
reports frames as fast as the server takes them)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from farmctl import ServerProcess
from PIL import Image
from web_helpers import DONE_RGB, Dashboard, FakeNode, painted_grid, saving

FRAMES = 10000

# Records the longest time the page went without painting, from now on.
PROBE = """() => {
  window.__maxGap = 0;
  let last = performance.now();
  const tick = (now) => {
    window.__maxGap = Math.max(window.__maxGap, now - last);
    last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def ok(server: ServerProcess, request: dict[str, Any]) -> Any:
    answer = server.http(request)
    assert answer["ok"], answer
    return answer["data"]


def test_a_10000_frame_job_finishing_live_in_the_page(
    context: Any, server: ServerProcess, tmp_path: Path
) -> None:
    picture = tmp_path / "frame.png"
    Image.new("RGB", (320, 180), (40, 120, 90)).save(picture)
    job = ok(
        server,
        {
            "item": "job",
            "action": "submit",
            "values": {
                "project": "big",
                "sequence": "sq",
                "shot": "sh",
                "blend_file": "/big.blend",
                "output": str(tmp_path / "####"),  # the stand-in saves here
                "frame_start": 1,
                "frame_end": FRAMES,
                "paused": True,
            },
        },
    )
    dash = Dashboard(context.new_page(), server.http_url, None)
    api_calls: list[float] = []
    dash.page.on("request", lambda r: r.url.endswith("/api") and api_calls.append(time.time()))
    started = time.monotonic()
    page = dash.open(f"#/job/{job['id']}")
    page.wait_for_function(
        f"() => document.querySelector('canvas.grid')?.dataset.total === '{FRAMES}'"
        " && document.querySelector('.nums span')?.textContent === '0 done'"
    )
    # Timings are printed, not asserted: how fast is for bench/, not for a pass/fail test.
    load_time = time.monotonic() - started

    page.evaluate(PROBE)
    node = FakeNode(server.tcp_port, "fast", saving(picture))
    try:
        burst = time.monotonic()
        calls_before = len(api_calls)
        ok(server, {"item": "job", "action": "resume", "filters": {"id": job["id"]}})
        page.wait_for_function(
            "() => document.querySelector('.summary [role=progressbar]')"
            "?.getAttribute('aria-valuenow') === '100'",
            timeout=240000,
        )
        seconds = time.monotonic() - burst
    finally:
        node.close()
    page.wait_for_function(
        f"() => document.querySelector('canvas.grid')?.dataset.done === '{FRAMES}'"
    )
    max_gap = page.evaluate("() => window.__maxGap")
    calls = len(api_calls) - calls_before
    print(
        f"10,000 frames: grid shown in {load_time:.2f} s; finished in {seconds:.1f} s "
        f"with {node.chunks} chunks; longest frame gap {max_gap:.0f} ms; {calls} API calls"
    )
    # Coalescing, not speed: the page's own timers space its reads (docs/dashboard.md), so
    # the count is bounded by the time taken; a slow machine only makes the bound looser.
    assert calls < 8 * seconds + 20, f"{calls} API calls in {seconds:.1f} s: not coalesced"
    pixels = painted_grid(page, FRAMES, DONE_RGB)  # painted on a later animation frame
    assert len(pixels) == FRAMES
    wrong = [
        i + 1
        for i, rgb in enumerate(pixels)
        if any(abs(a - b) > 3 for a, b in zip(rgb, DONE_RGB, strict=True))
    ]
    assert wrong == [], f"{len(wrong)} cells not drawn done, e.g. {wrong[:5]}"
    page.wait_for_function(
        "() => { const i = document.querySelector('img.last-frame');"
        " return i && i.complete && i.naturalWidth === 320; }"
    )
    assert dash.errors == [], dash.errors


def test_the_page_reconnects_by_itself_after_a_server_restart(context: Any, tmp_path: Path) -> None:
    first = ServerProcess(tmp_path / "server").start()
    http_port = urlsplit(first.http_url).port
    assert http_port is not None
    second: ServerProcess | None = None
    try:
        dash = Dashboard(context.new_page(), first.http_url, None)
        page = dash.open("#/")
        page.locator(".nodelist .empty").wait_for()
        first.stop()
        page.wait_for_function("() => document.querySelector('#conn')?.dataset.state === 'offline'")

        second = ServerProcess(tmp_path / "server").start(first.tcp_port, http_port)
        page.wait_for_function(
            "() => document.querySelector('#conn')?.dataset.state === 'live'", timeout=30000
        )
        job = ok(
            second,
            {
                "item": "job",
                "action": "submit",
                "values": {
                    "project": "after",
                    "sequence": "the",
                    "shot": "restart",
                    "blend_file": "/x.blend",
                    "paused": True,
                },
            },
        )
        page.locator(f".jobrow[href='#/job/{job['id']}']").wait_for(timeout=30000)
        # Only the socket's failed reconnection attempts may have been logged meanwhile.
        assert all("WebSocket" in e or "ERR_CONNECTION_REFUSED" in e for e in dash.errors), (
            dash.errors
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_failed_frames_show_their_reason_and_log_and_can_be_requeued(
    context: Any, server: ServerProcess, tmp_path: Path
) -> None:
    picture = tmp_path / "frame.png"
    Image.new("RGB", (64, 64), (200, 200, 200)).save(picture)
    node = FakeNode(server.tcp_port, "flaky", saving(picture), fail_once={5})
    try:
        job = ok(
            server,
            {
                "item": "job",
                "action": "submit",
                "values": {
                    "project": "p",
                    "sequence": "s",
                    "shot": "flaky",
                    "blend_file": "/flaky.blend",
                    "output": str(tmp_path / "####"),  # the stand-in saves here
                    "frame_start": 1,
                    "frame_end": 8,
                    "chunk_size": 4,
                    "max_attempts": 1,
                },
            },
        )
        dash = Dashboard(context.new_page(), server.http_url, None)
        page = dash.open(f"#/job/{job['id']}")
        failures = page.locator(".failures li")
        failures.first.wait_for(timeout=20000)
        assert failures.first.locator("button").inner_text() == "5"
        assert "stand-in failure on frames [5]" in failures.first.inner_text()
        page.locator(".titlebar .badge", has_text="failed").wait_for()

        failures.first.locator("button").click()
        detail = page.locator(".detail")
        detail.locator("pre.log", has_text="Fra:1 | Syncing").wait_for()
        assert "stand-in failure" in detail.locator("dd.error").inner_text()
        detail.locator("button", has_text="Requeue this frame").click()
        # The stand-in renders it this time: the job completes, live.
        page.locator(".titlebar .badge", has_text="completed").wait_for(timeout=20000)
        page.wait_for_function("() => document.querySelector('canvas.grid')?.dataset.done === '8'")
        assert page.locator(".failures li").count() == 0
        assert dash.errors == [], dash.errors
    finally:
        node.close()
