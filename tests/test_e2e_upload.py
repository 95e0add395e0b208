"""Rendering without shared storage, end to end: `brender submit --upload` packs a scene that
links a library from another folder and uses a texture from a third, the artist's folders are
moved away, a node with its own work dir fetches the files and renders, and
`brender download --wait` brings back frames pixel-equal to Blender rendering the original."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from blender_scene import BLENDER, make_linked_scene
from farmctl import NodeProcess, ServerProcess
from PIL import Image, ImageChops

pytestmark = pytest.mark.blender

TOKEN = "up-s3cret"
FETCHED = re.compile(
    r"job (\d+): fetched (\d+) file\(s\), (\d+) bytes; (\d+) of (\d+) from the cache"
)
UPLOADED = re.compile(r"uploaded (\d+) file\(s\), (\d+) bytes; (\d+) already on the farm")


def brender(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "brender.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def render_in_place(blend: Path, out: Path, frames: str) -> None:
    first, last = frames.split("-")
    subprocess.run(
        [BLENDER, "-b", str(blend), "-o", str(out / "####"), "-F", "PNG", "-x", "1",
         "-s", first, "-e", last, "-a"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip


def same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as x, Image.open(b) as y:
        return (
            ImageChops.difference(x.convert("RGBA"), y.convert("RGBA")).getbbox(alpha_only=False)
            is None
        )


def stats(server: ServerProcess) -> dict[str, Any]:
    import urllib.request

    req = urllib.request.Request(
        f"{server.http_url}/blobs", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(json.loads(resp.read())["data"])


def fetched_lines(node: NodeProcess) -> list[tuple[int, ...]]:
    return [tuple(int(g) for g in m.groups()) for m in FETCHED.finditer(node.log())]


def test_upload_render_download(blender: str, tmp_path: Path) -> None:
    artist = tmp_path / "artist"
    main, lib, tex = make_linked_scene(artist, 1, 2)
    reference = tmp_path / "reference"
    render_in_place(main, reference, "1-2")

    server = ServerProcess(tmp_path / "server", token=TOKEN).start()
    node = NodeProcess(server.master, "far-1", tmp_path / "node-work", token=TOKEN)
    farm = ["--farm", server.http_url, "--token", TOKEN]
    try:
        submitted = brender("submit", str(main), "--upload", *farm, "--frames", "1-2",
                            "--project", "up", "--sequence", "sq", "--shot", "sh010")  # fmt: skip
        job = last_json(submitted)
        up = UPLOADED.search(submitted.stderr)
        assert up is not None, submitted.stderr
        assert (int(up[1]), int(up[3])) == (3, 0), submitted.stderr  # main, library, texture
        # The artist's folders go away: only the farm has the files now.
        for folder in (main.parent, lib.parent, tex.parent):
            folder.rename(folder.with_name(folder.name + "-away"))
        node.start()
        out = tmp_path / "frames"
        done = brender("download", str(job["id"]), str(out), *farm, "--wait", "--timeout", "150")
        assert done.returncode == 0, done.stderr + node.log()[-3000:]
        assert sorted(p.name for p in out.iterdir()) == ["0001.png", "0002.png"]
        for name in ("0001.png", "0002.png"):
            assert same_pixels(out / name, reference / name), name
        # Frame rows point at the server's copies, under its output root.
        frames = server.http({"item": "frame", "action": "read", "filters": {"job_id": job["id"]}})
        for frame in frames["data"]:
            assert frame["output_file"].startswith(str(server.data_dir / "renders")), frame
        # A second download has nothing to fetch.
        again = brender("download", str(job["id"]), str(out), *farm)
        assert "0 frame(s) downloaded, 2 already there" in again.stderr, again.stderr

        # A second shot sharing the library and texture: only its own main file travels.
        for folder in (main.parent, lib.parent, tex.parent):
            folder.with_name(folder.name + "-away").rename(folder)
        main2, _, _ = make_linked_scene(artist, 1, 1, main_name="shots2/sh020.blend", library=lib)
        before = stats(server)
        second = brender("submit", str(main2), *farm, "--frames", "1-1", "--shot", "sh020")
        job2 = last_json(second)
        up2 = UPLOADED.search(second.stderr)
        assert up2 is not None and (int(up2[1]), int(up2[3])) == (1, 2), second.stderr
        received = stats(server)["received"] - before["received"]
        assert received == int(up2[2]) == main2.stat().st_size
        out2 = tmp_path / "frames2"
        done2 = brender("download", str(job2["id"]), str(out2), *farm, "--wait", "--timeout", "150")
        assert done2.returncode == 0, done2.stderr + node.log()[-3000:]
        # One line per chunk (a warm node gets a job in several): what each job fetched in
        # all, and what its first chunk found in the cache.
        got = fetched_lines(node)
        totals = {j: tuple(map(sum, zip(*(ln[1:3] for ln in got if ln[0] == j), strict=True)))
                  for j in (job["id"], job2["id"])}  # fmt: skip
        first = {ln[0]: ln for ln in reversed(got)}
        assert totals[job["id"]] == (3, sum(p.stat().st_size for p in (main, lib, tex))), got
        assert totals[job2["id"]] == (1, main2.stat().st_size), got
        assert first[job2["id"]][3:] == (2, 3), got
        lines = {j: (j, *totals[j], *first[j][3:]) for j in totals}
        print(
            f"second job: uploaded {received} bytes, node fetched {lines[job2['id']][2]} bytes",
            file=sys.stderr,
        )
    finally:
        node.stop()
        server.stop()


def test_cli_errors(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", token=TOKEN).start()
    try:
        scene = tmp_path / "x.blend"
        scene.write_bytes(b"BLENDER-v304" + b"\0" * 64)
        wrong = brender("submit", str(scene), "--farm", server.http_url, "--token", "nope",
                        "--frames", "1-1")  # fmt: skip
        assert wrong.returncode == 1 and "refused the token" in wrong.stderr, wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
        gone = brender("submit", str(tmp_path / "none.blend"), "--farm", server.http_url)
        assert gone.returncode == 1 and "no such file" in gone.stderr, gone.stderr
        dl = brender("download", "999", str(tmp_path / "d"), "--farm", server.http_url,
                     "--token", TOKEN)  # fmt: skip
        assert dl.returncode == 1 and "no job 999" in dl.stderr, dl.stderr
    finally:
        server.stop()
    down = brender("submit", str(scene), "--farm", server.http_url, "--frames", "1-1")
    assert down.returncode == 1 and "cannot reach the farm" in down.stderr, down.stderr


def test_cli_shows_over_quota(blender: str, tmp_path: Path) -> None:
    """The store's room is taken by another client's cut upload (the CLI's own check from
    `GET /blobs` cannot see it): the server refuses from the headers, and the CLI prints its
    JSON error in one line."""
    import http.client
    import urllib.parse

    main, _, _ = make_linked_scene(tmp_path / "artist", 1, 1)
    server = ServerProcess(tmp_path / "server", token=TOKEN, extra=["--store-quota", "4M"])
    server.start()
    try:
        url = urllib.parse.urlsplit(server.http_url)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        piece = b"\0" * (4 * 1024 * 1024 - 1000)
        conn.request("PUT", f"/blobs/{'e' * 64}", body=piece, headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Range": f"bytes 0-{len(piece) - 1}/{len(piece) + 10**6}"})  # fmt: skip
        assert conn.getresponse().status == 202
        conn.close()
        done = brender("submit", str(main), "--farm", server.http_url, "--token", TOKEN,
                       "--frames", "1-1")  # fmt: skip
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("brender: the farm's store is full") and "(--store-quota)" in last, (
            last
        )
    finally:
        server.stop()
