"""A movie output end to end: real Blender renders a 12-frame job as PNG frames on a real node,
the server encodes them with Debian's FFmpeg into the MPEG-4 the scene asked for, and the movie
is listed, downloaded over HTTP and by `brender download`; without FFmpeg the job says why."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from blender_scene import BLENDER, make_scene
from farmctl import NodeProcess, ServerProcess, TcpApi, job_frames, stop_all, wait_for

pytestmark = pytest.mark.blender

MOVIE = {"container": "MPEG4", "codec": "MPEG4", "fps": 12}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("movie") / "movie.blend", 1, 12, resolution=48)


def submit(api: TcpApi, blend: Path, out: Path, shot: str) -> dict[str, Any]:
    values = {
        "project": "movies", "sequence": "sq", "shot": shot, "blend_file": str(blend),
        "frame_start": 1, "frame_end": 12, "chunk_size": 4, "output": str(out / "####"),
        "format": "FFMPEG", "movie": MOVIE,
    }  # fmt: skip
    return dict(api.ok({"item": "job", "action": "submit", "values": values}))


def ended(api: TcpApi, job_id: int) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        (job,) = api.ok({"item": "job", "action": "read", "filters": {"id": job_id}})
        return dict(job) if job["status"] in ("completed", "failed", "canceled") else None

    return dict(wait_for(final, 240, 0.2, what=f"job {job_id} to end"))


def counted_frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames,codec_name", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (stream,) = json.loads(out.stdout)["streams"]
    assert stream["codec_name"] == "mpeg4", stream
    return int(stream["nb_read_frames"])


def test_a_movie_job_ends_with_its_movie(scene: Path, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server").start()
    node = NodeProcess(server.master, "box", tmp_path / "node")
    out = tmp_path / "out"
    try:
        node.start()
        with server.tcp() as api:
            wait_for(lambda: api.ok({"item": "client", "action": "read"}), 60, what="the node")
            job = submit(api, scene, out, "sh010")
            assert job["format"] == "PNG" and job["outputs"][0]["status"] == "waiting", job
            final = ended(api, job["id"])
            assert final["status"] == "completed", final
            (output,) = final["outputs"]
            assert output["kind"] == "movie" and output["status"] == "done", output
            assert output["container"] == "MPEG4" and output["codec"] == "MPEG4"
            movie = Path(output["file"])
            assert movie == out / "0001-0012.mp4"
            assert counted_frames(movie) == 12
            frames = sorted(p.name for p in out.glob("*.png"))
            assert frames == [f"{n:04d}.png" for n in range(1, 13)], "the frames are kept"
            assert all(f["status"] == "done" for f in job_frames(api, job["id"]))
        # Downloadable: the link the dashboard shows, and `brender download`.
        with urllib.request.urlopen(server.http_url + output["url"], timeout=30) as answer:
            assert answer.read() == movie.read_bytes()
        got = tmp_path / "got"
        done = subprocess.run(
            [sys.executable, "-m", "brender.cli", "download", "--farm", server.http_url,
             str(job["id"]), str(got)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (got / "0001-0012.mp4").read_bytes() == movie.read_bytes()
        assert "movie" in done.stderr, done.stderr
        assert len(list(got.glob("*.png"))) == 12
    finally:
        stop_all([node, server])


def test_without_ffmpeg_the_job_fails_saying_why(scene: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bin"  # a PATH with no ffmpeg (the server needs nothing else on it)
    bare.mkdir()
    server = ServerProcess(tmp_path / "server", env={"PATH": str(bare)}).start()
    node = NodeProcess(server.master, "box", tmp_path / "node")
    out = tmp_path / "out"
    try:
        node.start()
        with server.tcp() as api:
            wait_for(lambda: api.ok({"item": "client", "action": "read"}), 60, what="the node")
            job = submit(api, scene, out, "nofff")
            final = ended(api, job["id"])
            assert final["status"] == "failed", final
            assert "ffmpeg is not installed on the server" in final["error"], final["error"]
            assert "frames are kept" in final["error"]
            assert final["outputs"][0]["status"] == "failed"
            assert final["frames"]["done"] == 12
            assert len(list(out.glob("*.png"))) == 12
    finally:
        stop_all([node, server])


def test_an_uploaded_ffmpeg_scene_becomes_a_movie_on_the_server(tmp_path: Path) -> None:
    """`brender submit --upload` reads the scene's FFmpeg output (MKV, MPEG-4, 30 fps) from the
    .blend; the frames come back to the server, which encodes them there."""
    blend = make_scene(tmp_path / "artist" / "mkv.blend", 1, 12, resolution=48)
    setup = (
        "import bpy; s = bpy.context.scene; s.render.fps = 30; "
        "s.render.image_settings.file_format = 'FFMPEG'; s.render.ffmpeg.format = 'MKV'; "
        "s.render.ffmpeg.codec = 'MPEG4'; bpy.ops.wm.save_mainfile()"
    )
    subprocess.run([BLENDER, "-b", str(blend), "--factory-startup", "--python-expr", setup],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    server = ServerProcess(tmp_path / "server").start()
    node = NodeProcess(server.master, "far", tmp_path / "node")
    got = tmp_path / "got"
    try:
        node.start()
        farm = ["--farm", server.http_url]
        submitted = subprocess.run(
            [sys.executable, "-m", "brender.cli", "submit", str(blend), "--upload", *farm,
             "--shot", "mkv", "--chunk-size", "4"],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        job = json.loads(submitted.stdout.strip().splitlines()[-1])
        assert job["storage"] == "upload" and job["format"] == "PNG", job
        assert job["movie"] == {"container": "MKV", "codec": "MPEG4", "fps": 30.0}, job
        done = subprocess.run(
            [sys.executable, "-m", "brender.cli", "download", *farm, "--wait", "--timeout",
             "240", str(job["id"]), str(got)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        final = json.loads(done.stdout.strip().splitlines()[-1])
        (output,) = final["outputs"]
        assert output["status"] == "done" and output["file"].endswith("0001-0012.mkv"), output
        assert Path(output["file"]).parent.name == f"job-{job['id']}", "on the server's store"
        assert counted_frames(got / "0001-0012.mkv") == 12
        assert len(list(got.glob("*.png"))) == 12
    finally:
        stop_all([node, server])
