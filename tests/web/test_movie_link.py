"""A job's movie on its page in a real browser: its status while it waits, then a link that
downloads it with the token in a header, never in the link (frames from a stand-in node, the
movie from the server's real FFmpeg)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farmctl import ServerProcess, frame_file
from PIL import Image
from web_helpers import Dashboard, FakeNode

TOKEN = "movie-s3cret"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "server", token=TOKEN).start()
    yield srv
    srv.stop()


def test_the_job_page_links_its_movie(context: Any, server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for n in range(1, 7):
        Image.new("RGB", (32, 32), (n * 40, 90, 200)).save(out / f"{n:04d}.png")
    values = {
        "project": "p", "sequence": "s", "shot": "movie", "blend_file": "/movie.blend",
        "frame_start": 1, "frame_end": 6, "chunk_size": 3, "output": str(out / "####"),
        "format": "FFMPEG", "movie": {"container": "MKV", "codec": "FFV1", "fps": 6},
    }  # fmt: skip
    answer = server.http({"item": "job", "action": "submit", "values": {**values, "paused": True}})
    assert answer["ok"], answer
    job = answer["data"]
    dash = Dashboard(context.new_page(), server.http_url, TOKEN)
    page = dash.open(f"#/job/{job['id']}")
    page.wait_for_selector("dd.movie[data-status='waiting']")
    node = FakeNode(server.tcp_port, "stand-in", frame_file, token=TOKEN)
    try:
        resumed = server.http({"item": "job", "action": "resume", "filters": {"id": job["id"]}})
        assert resumed["ok"], resumed
        link = page.wait_for_selector("dd.movie[data-status='done'] a", timeout=30000)
        assert link is not None and link.inner_text() == "0001-0006.mkv"
        assert page.locator(".titlebar .badge", has_text="completed").count() == 1
        href = link.get_attribute("href") or ""
        assert href == f"/outputs/{job['id']}/movie", "the token is in no link"
        with page.expect_download() as info:
            link.click()
        download = info.value
        assert download.suggested_filename == "0001-0006.mkv"
        saved = Path(download.path())
        assert saved.read_bytes() == (out / "0001-0006.mkv").read_bytes() != b""
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.http_url}{href}?token={TOKEN}", timeout=10)
        assert refused.value.code == 401, "a token in the URL is not taken"
    finally:
        node.close()
    assert dash.errors == [], dash.errors
