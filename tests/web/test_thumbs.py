"""Thumbnails: Pillow on real image files, and `GET /thumb/<frame_id>` on a real server."""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farmctl import ServerProcess, frame_file, wait_for
from PIL import Image
from web_helpers import Dashboard, FakeNode

from brender.server import thumbs

TOKEN = "thumb-token"


def image_of(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_png_and_jpeg_become_small_jpegs(tmp_path: Path) -> None:
    png = tmp_path / "0001.png"
    Image.new("RGBA", (640, 360), (200, 40, 40, 255)).save(png)  # Blender's default: RGBA
    jpeg = tmp_path / "0002.jpg"
    Image.new("RGB", (300, 600), (10, 200, 10)).save(jpeg, quality=90)
    for path, size in ((png, (160, 90)), (jpeg, (80, 160))):
        thumb = thumbs.thumbnail(str(path), 160)
        assert thumb.placeholder == "" and thumb.content_type == "image/jpeg"
        img = image_of(thumb.data)
        assert img.format == "JPEG" and img.size == size


def test_transparency_is_kept_as_png(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (100, 100), (255, 255, 255, 0)).save(path)
    thumb = thumbs.thumbnail(str(path), 50)
    assert thumb.content_type == "image/png"
    assert image_of(thumb.data).mode == "RGBA"


def test_sixteen_bit_grey_is_shown(tmp_path: Path) -> None:
    path = tmp_path / "grey16.png"
    Image.new("I;16", (64, 64), 40000).save(path)
    img = image_of(thumbs.thumbnail(str(path), 32).data)
    assert img.size == (32, 32)
    assert 140 <= img.convert("L").getpixel((5, 5)) <= 170  # 40000 / 65535 of white


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("0001.exr", b"v/1\x01" + b"\0" * 100, "OpenEXR"),
        ("notes.png", b"this is not an image", "format has no preview"),
        ("missing.png", None, "not on the server's disk"),
    ],
)
def test_what_cannot_be_shown_gets_a_placeholder(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    thumb = thumbs.thumbnail(str(path), 200)
    assert reason in thumb.placeholder
    assert thumb.content_type == "image/png"
    assert image_of(thumb.data).size == (200, 112)


def test_cached_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "0001.png"
    Image.new("RGB", (64, 64), (0, 0, 255)).save(path)
    first = thumbs.thumbnail(str(path), 64)
    assert thumbs.thumbnail(str(path), 64) is first
    Image.new("RGB", (64, 64), (255, 0, 0)).save(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = thumbs.thumbnail(str(path), 64)
    assert second is not first
    r, _, b = image_of(second.data).getpixel((10, 10))
    assert r > 200 and b < 50


# -- the route, on a real server with a stand-in node reporting files --------------------------


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    base = tmp_path_factory.mktemp("thumbs")
    out = base / "out"
    out.mkdir()
    Image.new("RGBA", (256, 144), (30, 90, 200, 255)).save(out / "0001.png")
    server = ServerProcess(base / "server", token=TOKEN).start()

    def save(order: dict[str, Any], n: int) -> str:
        if "/sub/" in order["output"]:
            return str(out / "0001.png")  # a file outside the job's folder: refused
        target = Path(frame_file(order, n))
        if target.suffix == ".exr":
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(b"v/1\x01" + b"\0" * 100)
        return str(target)  # out/0002.png is never written

    node: FakeNode | None = None
    try:
        node = FakeNode(server.tcp_port, "fake", save, token=TOKEN)
        yield server, out
    finally:
        if node is not None:
            node.close()
        server.stop()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=AUTH if headers is None else headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def frames_of(server: ServerProcess, **values: Any) -> list[dict[str, Any]]:
    answer = server.http({"item": "job", "action": "submit", "values": values})
    assert answer["ok"], answer
    job_id = answer["data"]["id"]
    request = {"item": "frame", "action": "read", "filters": {"job_id": job_id}}
    return list(server.http({**request, "order_by": "number"})["data"])


def test_the_route_serves_thumbnails_to_the_token_holder(
    farm: tuple[ServerProcess, Path],
) -> None:
    server, out = farm
    base = {"project": "t", "sequence": "s", "shot": "a", "blend_file": "/x.blend"}
    frames = frames_of(server, **base, frame_start=1, frame_end=2, chunk_size=2,
                       output=str(out / "####"))  # fmt: skip
    frames += frames_of(server, **{**base, "shot": "exr"}, frame_start=1, frame_end=1,
                        output=str(out / "exr" / "####"), format="OPEN_EXR")  # fmt: skip

    def all_done() -> bool:
        rows = [f for job in {f["job_id"] for f in frames} for f in frames_of_job(server, job)]
        return all(f["status"] == "done" for f in rows)

    wait_for(all_done, 20, what="the stand-in node to report 3 frames")
    png, missing, exr = (f["id"] for f in frames)

    status, headers, body = get(f"{server.http_url}/thumb/{png}?size=128")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert image_of(body).size == (128, 72)
    assert "X-Brender-Preview" not in headers
    status, headers, body = get(
        f"{server.http_url}/thumb/{png}", {"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200 and image_of(body).size == (256, 144)  # never bigger than the frame
    etag = headers["Etag"]
    status, _, _ = get(
        f"{server.http_url}/thumb/{png}",
        {"Authorization": f"Bearer {TOKEN}", "If-None-Match": etag},
    )
    assert status == 304

    for frame_id, reason in ((exr, "OpenEXR"), (missing, "not on the server's disk")):
        status, headers, body = get(f"{server.http_url}/thumb/{frame_id}")
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert reason in headers["X-Brender-Preview"]


def frames_of_job(server: ServerProcess, job_id: int) -> list[dict[str, Any]]:
    request = {"item": "frame", "action": "read", "filters": {"job_id": job_id}}
    return list(server.http(request)["data"])


def test_the_route_refuses_and_explains(farm: tuple[ServerProcess, Path]) -> None:
    server, _ = farm
    base = {"project": "t", "sequence": "s", "shot": "b", "blend_file": "/x.blend"}
    queued = frames_of(server, **base, frame_start=1, frame_end=1, paused=True)[0]

    for url, headers in (
        (f"/thumb/{queued['id']}", {}),
        (f"/thumb/{queued['id']}?token=wrong", {}),
        (f"/thumb/{queued['id']}?token={TOKEN}", {}),  # the right token, but in the URL
        (f"/thumb/{queued['id']}", {"Authorization": "Bearer wrong"}),
    ):
        status, _, body = get(server.http_url + url, headers)
        assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    status, _, body = get(f"{server.http_url}/thumb/{queued['id']}?token={TOKEN}", {})
    assert "a token in the URL is not taken" in json.loads(body)["error"]["message"]

    status, _, body = get(f"{server.http_url}/thumb/{queued['id']}")
    assert status == 404
    assert "has no output file yet (queued)" in json.loads(body)["error"]["message"]
    for missing in ("999999", "99999999999999999999999"):
        status, _, body = get(f"{server.http_url}/thumb/{missing}")
        assert status == 404 and "no frame with id" in json.loads(body)["error"]["message"]
    status, _, body = get(f"{server.http_url}/thumb/{queued['id']}?size=big")
    assert status == 422


def test_a_frame_reported_outside_its_jobs_folder_is_not_taken(
    farm: tuple[ServerProcess, Path], context: Any
) -> None:
    # The stand-in node reports out/0001.png, a real image, for a job whose output is out/sub:
    # the server refuses the report (server/reports.py), so the frame has no file to show.
    server, out = farm
    base = {"project": "t", "sequence": "s", "shot": "c", "blend_file": "/x.blend"}
    [frame] = frames_of(server, **base, frame_start=1, frame_end=1, max_attempts=1,
                        output=str(out / "sub" / "####"))  # fmt: skip

    def failed() -> bool:
        return frames_of_job(server, frame["job_id"])[0]["status"] == "failed"

    wait_for(failed, 20, what="the frame to fail: its report was refused")
    [client] = server.http({"item": "client", "action": "read"})["data"]
    assert client["refused_reports"] >= 1
    status, _, body = get(f"{server.http_url}/thumb/{frame['id']}")
    assert status == 404, body
    # The Nodes page shows the count.
    page = Dashboard(context.new_page(), server.http_url, TOKEN).open("#/nodes")
    cell = page.locator("tr[data-name='fake'] .refused")
    cell.filter(has_text=f"{client['refused_reports']} reports").wait_for()


def test_the_page_never_puts_the_token_in_an_address(
    farm: tuple[ServerProcess, Path], context: Any
) -> None:
    # Issue 16, item 6: the job page shows its last frame without the token in any URL it asks
    # for (requests and the WebSocket), so no access log, proxy or history can keep it.
    server, out = farm
    base = {"project": "t", "sequence": "s", "shot": "d", "blend_file": "/x.blend"}
    [frame] = frames_of(server, **base, frame_start=1, frame_end=1, output=str(out / "####"))
    wait_for(
        lambda: frames_of_job(server, frame["job_id"])[0]["status"] == "done",
        20,
        what="the stand-in node to report the frame",
    )
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda socket: urls.append(socket.url))
    dash = Dashboard(page, server.http_url, TOKEN)
    dash.open(f"#/job/{frame['job_id']}")
    page.wait_for_function(
        "() => { const i = document.querySelector('img.last-frame');"
        " return i && !i.hidden && i.complete && i.naturalWidth > 0; }"
    )
    assert page.locator("img.last-frame").evaluate("i => i.naturalWidth") == 256
    assert page.locator("img.last-frame").get_attribute("src").startswith("blob:")
    assert any("/thumb/" in url for url in urls), urls
    assert any(url.endswith("/ws") for url in urls), urls
    assert [url for url in urls if TOKEN in url] == []
    assert dash.errors == [], dash.errors
