"""The movie's finishing step without a farm: the request, the name, FFmpeg's command, and a
real FFmpeg encoding real PNG frames (or saying why it cannot)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from brender.server import movie
from brender.server.errors import InvalidValue
from brender.server.services import jobs


def test_a_request_is_checked_with_blender_names_and_defaults() -> None:
    assert movie.check_spec({}) == movie.MovieSpec("MPEG4", "H264", 24.0)
    spec = movie.check_spec({"container": "mkv", "codec": "FFV1", "fps": 25})
    assert spec == movie.MovieSpec("MKV", "FFV1", 25.0)
    for bad, words in [
        ({"container": "MP5"}, r"movie\.container"),
        ({"codec": 3}, r"movie\.codec"),
        ({"fps": 0}, r"movie\.fps"),
        ({"fps": True}, r"movie\.fps"),
        ({"speed": 2}, "unknown key"),
    ]:
        with pytest.raises(InvalidValue, match=words):
            movie.check_spec(bad)
    with pytest.raises(InvalidValue, match="must be an object"):
        movie.check_spec("MPEG4")


def test_a_movie_format_renders_png_frames_and_keeps_the_movie() -> None:
    base = {"project": "p", "sequence": "s", "shot": "sh", "blend_file": "/x.blend"}
    data = jobs.check_submit({**base, "format": "FFMPEG", "movie": {"codec": "MPEG4"}})
    assert data["format"] == "PNG" and data["movie_status"] == "waiting"
    assert json.loads(data["movie"]) == {"container": "MPEG4", "codec": "MPEG4", "fps": 24.0}
    avi = jobs.check_submit({**base, "format": "AVI_JPEG"})
    assert json.loads(avi["movie"])["codec"] == "MJPEG"
    exr = jobs.check_submit({**base, "format": "OPEN_EXR", "movie": {}})
    assert exr["format"] == "OPEN_EXR", "an image format stays the frames' format"
    assert "movie" not in jobs.check_submit({**base, "format": "PNG"})
    with pytest.raises(InvalidValue, match=r"movie\.codec"):
        jobs.check_submit({**base, "format": "FFMPEG", "movie": {"codec": "DIVX"}})


def test_the_movie_is_named_as_blender_names_one() -> None:
    spec = movie.MovieSpec("MPEG4", "MPEG4", 24.0)
    assert movie.movie_path("/r/sh010/####", 1, 12, spec) == Path("/r/sh010/0001-0012.mp4")
    mkv = movie.MovieSpec("MKV", "FFV1", 24.0)
    assert movie.movie_path("/r/sh_######", 5, 9, mkv) == Path("/r/sh_000005-000009.mkv")


def frames(folder: Path, count: int, size: tuple[int, int] = (33, 21)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(1, count + 1):
        path = folder / f"{n:04d}.png"
        Image.new("RGB", size, (n * 20 % 255, 80, 160)).save(path)
        paths.append(path)
    return paths


def counted_frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


def test_ffmpeg_encodes_the_frames_in_order(tmp_path: Path) -> None:
    pictures = frames(tmp_path / "f", 12)  # odd sizes: padded for yuv420p
    spec = movie.MovieSpec("MPEG4", "H264", 24.0)
    target = tmp_path / "f" / "0001-0012.mp4"
    assert asyncio.run(movie.encode(pictures, target, spec)) == target
    assert counted_frames(target) == 12
    assert all(p.is_file() for p in pictures), "the frames stay"
    assert not list((tmp_path / "f").glob(".*.part"))


def test_no_ffmpeg_and_a_failing_ffmpeg_say_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pictures = frames(tmp_path / "f", 2, (64, 64))
    target = tmp_path / "f" / "0001-0002.mp4"
    # DNxHD takes only a few sizes and rates: FFmpeg refuses 64x64 at 24 fps.
    with pytest.raises(movie.MovieError, match="ffmpeg exited with code"):
        asyncio.run(movie.encode(pictures, target, movie.MovieSpec("QUICKTIME", "DNXHD", 24.0)))
    assert not target.exists() and not list((tmp_path / "f").glob(".*.part"))
    with pytest.raises(movie.MovieError, match="frame file"):
        asyncio.run(movie.encode([*pictures, tmp_path / "gone.png"], target, movie.MovieSpec(
            "MPEG4", "MPEG4", 24.0)))  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(movie.MovieError, match="ffmpeg is not installed"):
        asyncio.run(movie.encode(pictures, target, movie.MovieSpec("MPEG4", "MPEG4", 24.0)))


def test_the_job_stays_active_until_its_movie_exists(db: object, tmp_path: Path) -> None:
    from schedkit import Kit, run

    from brender.server.models import Job

    async def body(k: Kit) -> None:
        started: list[int] = []
        k.s.finishing = lambda job: started.append(job.id)
        job = await k.job(frame_end=2, chunk_size=2, format="FFMPEG")
        other = await k.job(frame_end=2, chunk_size=2, format="FFMPEG", shot="b")
        n1 = k.node("n1")
        for _ in (job, other):
            order = k.claim(n1)
            assert order is not None and order.format == "PNG"
            k.saved(n1, order, 1)
            k.saved(n1, order, 2)
            k.ended(n1, order.chunk_id)
        await k.committed()
        assert started == [job.id, other.id]
        row = Job.get_by_id(job.id)
        assert (row.status, row.movie_status) == ("active", "encoding")
        k.s.movie_ended(job.id, tmp_path / "0001-0002.mp4", "")
        k.s.movie_ended(other.id, None, "movie: ffmpeg exited with code 1: bad; frames kept")
        await k.committed()
        row = Job.get_by_id(job.id)
        assert (row.status, row.movie_status) == ("completed", "done")
        assert row.movie_file == str(tmp_path / "0001-0002.mp4")
        failed = Job.get_by_id(other.id)
        assert (failed.status, failed.movie_status) == ("failed", "failed")
        assert failed.error.startswith("movie: ffmpeg exited")
        assert k.statuses(other.id) == ["done", "done"], "the frames stay done"

    run(db, tmp_path, body)  # type: ignore[arg-type]


def test_a_movie_format_is_refused_in_an_update(db: object, tmp_path: Path) -> None:
    from schedkit import Kit, run

    from brender.server.services import changes

    async def body(k: Kit) -> None:
        job = await k.job(frame_end=2, paused=True)
        with pytest.raises(InvalidValue, match="makes a movie"):
            changes.update(type(job), {"id": job.id}, {"format": "FFMPEG"})

    run(db, tmp_path, body)  # type: ignore[arg-type]
