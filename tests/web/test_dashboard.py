"""The dashboard in a real browser: Debian's Chromium, a real server with a token, a real node
rendering with Debian's Blender. Everything must update live, without a reload."""

from __future__ import annotations

import io
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blender_scene import make_scene
from farmctl import NodeProcess, ServerProcess, job_status, wait_for
from web_helpers import DONE_RGB, SCREENSHOTS, Dashboard, painted_grid

pytestmark = pytest.mark.blender

TOKEN = "dash-token"
XSS = "<img src=x onerror=alert(1)>"

# What each route shows once it has read its data (node-1 is always on this farm). The title
# is set as the route mounts, so a predicate cannot be met by the view being left. Every
# predicate here answers false while an element is missing: one that throws ends the wait.
ROUTE_READY = {
    "#/": "() => document.title.startsWith('Overview') && !!document.querySelector('.nodechip')",
    "#/nodes": "() => document.title.startsWith('Nodes')"
    " && !!document.querySelector(\"tr[data-name='node-1']\")",
    "#/jobs": "() => document.title.startsWith('Jobs')"
    " && (!!document.querySelector('table.jobs tr[data-id]')"
    " || document.querySelector('#view p.empty')?.hidden === false)",
}


@pytest.fixture(scope="module")
def farm(
    tmp_path_factory: pytest.TempPathFactory, blender: str
) -> Iterator[tuple[ServerProcess, NodeProcess]]:
    base = tmp_path_factory.mktemp("dashboard")
    server = ServerProcess(base / "server", token=TOKEN).start()
    node = NodeProcess(server.master, "node-1", base / "node-1", token=TOKEN)
    try:
        node.start()
        with server.tcp() as api:
            wait_for(
                lambda: any(c["online"] for c in api.ok({"item": "client", "action": "read"})),
                60,
                what="node-1 online",
            )
        yield server, node
    finally:
        node.stop()
        server.stop()


@pytest.fixture(scope="module")
def slow_scene(blender: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames of a second each, by Cycles' time limit: a warm node (one Blender for the job,
    no start-up per chunk) renders a scene of a fixed sample count as fast as the machine goes,
    and once that was the whole job before the overview could show it moving (a completed job
    leaves the overview)."""
    path = tmp_path_factory.mktemp("slow") / "slow.blend"
    return make_scene(path, seconds=1.0, blender=blender)


@pytest.fixture
def dash(context: Any, farm: tuple[ServerProcess, NodeProcess]) -> Dashboard:
    return Dashboard(context.new_page(), farm[0].http_url, TOKEN)


def api(server: ServerProcess, request: dict[str, Any]) -> Any:
    answer = server.http(request)
    assert answer["ok"], answer
    return answer["data"]


def client_named(server: ServerProcess, name: str) -> dict[str, Any]:
    rows = api(server, {"item": "client", "action": "read", "filters": {"name": name}})
    assert len(rows) == 1, rows
    return dict(rows[0])


def submit(server: ServerProcess, **values: Any) -> dict[str, Any]:
    request = {"item": "job", "action": "submit", "values": values}
    return dict(api(server, request))


def test_loads_clean_and_a_connecting_node_appears(
    dash: Dashboard, farm: tuple[ServerProcess, NodeProcess], tmp_path: Path
) -> None:
    server, _ = farm
    page = dash.open("#/nodes")
    row = page.locator("tr[data-name='node-1']")
    assert "online" in row.inner_text(timeout=10000)
    assert page.locator("tr[data-name='late-node']").count() == 0

    late = NodeProcess(server.master, "late-node", tmp_path / "late", token=TOKEN)
    try:
        late.start()
        late_row = page.locator("tr[data-name='late-node']")
        late_row.wait_for(timeout=60000)
        page.wait_for_function(
            "() => document.querySelector(\"tr[data-name='late-node'] .online\")"
            "?.dataset.online === 'true'"
        )
        dash.go("#/")
        page.locator(".nodechip", has_text="late-node").wait_for()
    finally:
        late.stop()
    # Gone again, still without a reload.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.nodechip')].some("
        "c => c.textContent.includes('late-node') && c.dataset.online === 'false')",
        timeout=30000,
    )
    assert dash.errors == [], dash.errors
    assert dash.dialogs == []


def test_a_job_renders_live_to_100_percent(
    dash: Dashboard, farm: tuple[ServerProcess, NodeProcess], slow_scene: Path, tmp_path: Path
) -> None:
    scene = slow_scene
    server, _ = farm
    page = dash.open("#/")
    out = tmp_path / "render"
    submit(
        server,
        project="spring",
        sequence="sq02",
        shot="sh040",
        name="lighting-v3",
        blend_file="/projects/spring/sh040.blend",
        frame_start=1001,
        frame_end=1240,
        priority=40,
        paused=True,
    )
    job = submit(
        server,
        project="spring",
        sequence="sq01",
        shot="sh010",
        blend_file=str(scene),
        frame_start=1,
        frame_end=12,
        chunk_size=3,
        output=str(out / "####"),
        format="PNG",
    )
    # It shows up on the overview by itself, and its bar moves.
    row = page.locator(f".jobrow[href='#/job/{job['id']}']")
    row.wait_for(timeout=10000)
    page.wait_for_function(
        f"() => +document.querySelector(\".jobrow[href='#/job/{job['id']}'] [role=progressbar]\")"
        "?.getAttribute('aria-valuenow') >= 25",
        timeout=120000,
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "overview.png"))

    row.click()
    bar = page.locator(".summary [role=progressbar]")
    started = time.monotonic()
    # Right after the click the job's page is not drawn yet: no progress bar to read.
    page.wait_for_function(
        "() => document.querySelector('.summary [role=progressbar]')"
        "?.getAttribute('aria-valuenow') === '100'",
        timeout=180000,
    )
    assert bar.get_attribute("aria-valuenow") == "100"
    print(f"job rendered to 100% in the page in {time.monotonic() - started:.1f} s")

    # The grid: every one of the 12 cells done, in its colour.
    canvas = page.locator("canvas.grid")
    page.wait_for_function("() => document.querySelector('canvas.grid')?.dataset.done === '12'")
    assert canvas.get_attribute("data-total") == "12"
    pixels = painted_grid(page, 12, DONE_RGB)  # painted on a later animation frame
    assert len(pixels) == 12
    for number, rgb in enumerate(pixels, start=1):
        assert all(abs(a - b) <= 3 for a, b in zip(rgb, DONE_RGB, strict=True)), (number, rgb)

    # The last rendered frame, as a picture made by the server from the PNG.
    image = page.locator("img.last-frame")
    page.wait_for_function(
        "() => { const i = document.querySelector('img.last-frame');"
        " return i && !i.hidden && i.complete && i.naturalWidth > 0; }"
    )
    assert image.evaluate("i => i.naturalWidth") == 64
    assert page.locator(".last-frame + .caption").inner_text().startswith("Frame ")

    # Pointing at a frame tells its node, time and attempts.
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 4, box["y"] + 4)
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert "Frame 1" in text and "done" in text and "node-1" in text and "1 attempt" in text
    page.mouse.click(box["x"] + 4, box["y"] + 4)
    page.locator(".detail h2", has_text="Frame 1").wait_for()
    page.locator(".detail dd", has_text=str(out / "0001.png")).wait_for()

    page.mouse.move(0, 0)
    page.screenshot(path=str(SCREENSHOTS / "job.png"))
    assert dash.errors == [], dash.errors

    # The thumbnail route itself: a JPEG no bigger than asked, for the token holder only.
    frames = api(
        server, {"item": "frame", "action": "read", "filters": {"job_id": job["id"]}, "limit": 1}
    )
    url = f"{server.http_url}/thumb/{frames[0]['id']}?size=48"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers["Content-Type"] == "image/jpeg"
        data = resp.read()
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (48, 48)


def test_disable_and_enable_buttons_change_the_database(
    dash: Dashboard, farm: tuple[ServerProcess, NodeProcess]
) -> None:
    server, _ = farm
    page = dash.open("#/nodes")
    row = page.locator("tr[data-name='node-1']")
    row.locator("button", has_text="Disable").click()
    wait_for(lambda: client_named(server, "node-1")["status"] == "disabled", 10, what="disabled")
    row.locator(".badge", has_text="disabled").wait_for()
    row.locator("button", has_text="Enable").click()
    wait_for(lambda: client_named(server, "node-1")["status"] == "enabled", 10, what="enabled")
    row.locator(".badge", has_text="enabled").wait_for()
    assert dash.errors == [], dash.errors


def test_cancel_and_priority_from_the_jobs_list(
    dash: Dashboard, farm: tuple[ServerProcess, NodeProcess]
) -> None:
    server, _ = farm
    job = submit(
        server,
        project="spring",
        sequence="sq01",
        shot="sh020",
        blend_file="/nowhere/sh020.blend",
        frame_start=1,
        frame_end=24,
        paused=True,
    )
    page = dash.open("#/jobs")
    row = page.locator(f"tr[data-id='{job['id']}']")
    row.locator(".badge", has_text="paused").wait_for()

    priority = row.locator("input.priority")
    priority.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("7")
    # Deliberately let the list refresh (it redraws every second) while the field is being
    # edited: the field must keep its focus and its text, whatever the timing. The keyboard
    # types into whatever has the focus, as a person's would.
    page.wait_for_timeout(1500)
    page.keyboard.type("7")
    assert page.evaluate("document.activeElement?.classList.contains('priority') ?? false")
    assert priority.input_value() == "77"
    page.keyboard.press("Enter")
    with server.tcp() as tcp:
        wait_for(lambda: job_status(tcp, job["id"])["priority"] == 77, 10, what="priority 77")

        row.locator("button[data-verb='cancel']").click()
        wait_for(lambda: job_status(tcp, job["id"])["status"] == "canceled", 10, what="canceled")
    row.wait_for(state="detached")  # out of the "unfinished" list, live
    page.click(".tabs button[data-filter='all']")
    row.locator(".badge", has_text="canceled").wait_for()
    assert any("Cancel job" in d for d in dash.dialogs), dash.dialogs
    assert dash.errors == [], dash.errors


def test_names_are_text_and_run_no_script(
    dash: Dashboard, farm: tuple[ServerProcess, NodeProcess]
) -> None:
    server, _ = farm
    job = submit(
        server,
        project=XSS,
        sequence=XSS,
        shot=XSS,
        name=XSS,
        blend_file="/nowhere/x.blend",
        frame_start=1,
        frame_end=3,
        paused=True,
    )
    page = dash.open("#/")
    page.locator(".jobrow", has_text=XSS).first.wait_for()
    dash.go("#/jobs")
    row = page.locator(f"tr[data-id='{job['id']}']")
    assert XSS in row.inner_text()
    dash.go(f"#/job/{job['id']}")
    page.locator("h1", has_text=XSS).wait_for()
    assert f"{XSS} / {XSS} / {XSS}" in page.locator(".titlebar .path").inner_text()
    # No element from a name, so no handler that could run, whenever it would have run.
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("#view [onerror]").count() == 0
    # A deliberate pause, not a wait for something: on a safe page no dialog ever opens, so
    # the asserts below hold however long it is; it only gives an unsafe one time to show.
    page.wait_for_timeout(500)
    assert dash.dialogs == [], dash.dialogs
    assert dash.errors == [], dash.errors
    api(server, {"item": "job", "action": "delete", "filters": {"id": job["id"]}})


def test_phone_width_has_no_sideways_scrolling(
    browser: Any, farm: tuple[ServerProcess, NodeProcess]
) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        dash = Dashboard(ctx.new_page(), farm[0].http_url, TOKEN)
        page = dash.open("#/")
        for route in ("#/", "#/nodes", "#/jobs"):
            dash.go(route)
            page.wait_for_function(ROUTE_READY[route])
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{route} scrolls sideways by {overflow}px"
        assert dash.errors == [], dash.errors
    finally:
        ctx.close()
