"""A job's movie: what the scene asked for (Blender's FFmpeg container and codec, its frame
rate), and the finishing step that encodes the job's frame images into it with FFmpeg.

The encoding runs as a subprocess on the event loop (asyncio), never blocking it: the frames
are linked in order into a temporary folder, `ffmpeg` writes `.<name>.part` next to them, and
the part becomes the movie only when FFmpeg succeeded. The frames always stay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brender.server.errors import InvalidValue

log = logging.getLogger(__name__)

# Blender's `scene.render.ffmpeg.format` → (file extension, FFmpeg muxer).
CONTAINERS: dict[str, tuple[str, str]] = {
    "MPEG4": ("mp4", "mp4"),
    "MKV": ("mkv", "matroska"),
    "QUICKTIME": ("mov", "mov"),
    "AVI": ("avi", "avi"),
    "WEBM": ("webm", "webm"),
    "OGG": ("ogv", "ogg"),
    "MPEG1": ("mpg", "mpeg"),
    "MPEG2": ("mpg", "dvd"),
    "DV": ("dv", "dv"),
    "FLASH": ("flv", "flv"),
}
# Blender's `scene.render.ffmpeg.codec` → FFmpeg's encoder (the AVI_* formats → MJPEG, RAW).
CODECS: dict[str, str] = {
    "H264": "libx264",
    "H265": "libx265",
    "MPEG4": "mpeg4",
    "MPEG1": "mpeg1video",
    "MPEG2": "mpeg2video",
    "AV1": "libaom-av1",
    "WEBM": "libvpx-vp9",
    "THEORA": "libtheora",
    "PNG": "png",
    "FFV1": "ffv1",
    "HUFFYUV": "huffyuv",
    "QTRLE": "qtrle",
    "DNXHD": "dnxhd",
    "PRORES": "prores_ks",
    "DV": "dvvideo",
    "FLASH": "flv",
    "MJPEG": "mjpeg",
    "RAW": "rawvideo",
}
YUV420 = frozenset({"H264", "H265", "MPEG4", "MPEG1", "MPEG2", "AV1", "WEBM", "THEORA", "FLASH"})
"""Codecs whose usual pixel format halves the chroma: the frames are padded to even sizes."""

DEFAULT = {"container": "MPEG4", "codec": "H264", "fps": 24.0}

# A movie's status, in the job row's `movie_status` (and the job read's `outputs`).
WAITING, ENCODING, DONE, FAILED, NOT_MADE = "waiting", "encoding", "done", "failed", "not made"


@dataclass(frozen=True)
class MovieSpec:
    container: str
    codec: str
    fps: float

    def to_dict(self) -> dict[str, Any]:
        return {"container": self.container, "codec": self.codec, "fps": self.fps}


def check_spec(value: Any) -> MovieSpec:
    """The `movie` of a submit: `{"container": "MPEG4", "codec": "H264", "fps": 24}`, every
    key optional (MPEG-4, H.264, 24 fps), names as Blender's FFmpeg settings spell them."""
    if not isinstance(value, dict):
        raise InvalidValue('\'movie\' must be an object: {"container", "codec", "fps"}')
    unknown = sorted(set(value) - set(DEFAULT))
    if unknown:
        raise InvalidValue(f"unknown key(s) in 'movie': {', '.join(unknown)}")
    data = {**DEFAULT, **value}
    container, codec, fps = data["container"], data["codec"], data["fps"]
    if not isinstance(container, str) or container.upper() not in CONTAINERS:
        raise InvalidValue(
            f"'movie.container' {container!r} is not one of {', '.join(sorted(CONTAINERS))}"
        )
    if not isinstance(codec, str) or codec.upper() not in CODECS:
        raise InvalidValue(f"'movie.codec' {codec!r} is not one of {', '.join(sorted(CODECS))}")
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= 1000:
        raise InvalidValue(f"'movie.fps' must be a number of frames a second (0-1000], not {fps!r}")
    return MovieSpec(container.upper(), codec.upper(), float(fps))


def movie_path(output: str, start: int, end: int, spec: MovieSpec) -> Path:
    """Where the movie goes: next to the frames, named as Blender names a movie
    (`/renders/sh010/####` → `/renders/sh010/0001-0012.mp4`)."""
    pattern = Path(output)
    width = max(4, pattern.name.count("#"))
    prefix = pattern.name.replace("#", "")
    ext = CONTAINERS[spec.container][0]
    return pattern.parent / f"{prefix}{start:0{width}d}-{end:0{width}d}.{ext}"


def ffmpeg_command(
    ffmpeg: str, frames_dir: Path, ext: str, spec: MovieSpec, out: Path
) -> list[str]:
    """FFmpeg's arguments for frames `frames_dir/000001.<ext>`, … into `out`."""
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-framerate", f"{spec.fps:g}", "-start_number", "1",
        "-i", str(frames_dir / f"%06d.{ext}"),
        "-c:v", CODECS[spec.codec],
    ]  # fmt: skip
    if spec.codec in YUV420:
        cmd += ["-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    return [*cmd, "-f", CONTAINERS[spec.container][1], str(out)]


class MovieError(Exception):
    """Why a movie was not made (the job's `error` says it)."""


async def encode(frames: Sequence[Path], target: Path, spec: MovieSpec) -> Path:
    """Encode `frames` (in order) into `target`; raise MovieError with FFmpeg's words."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MovieError("ffmpeg is not installed on the server (not on its PATH)")
    if not frames:
        raise MovieError("the job has no frame to encode")
    missing = [p for p in frames if not p.is_file()]
    if missing:
        raise MovieError(f"{len(missing)} frame file(s) are not on the server, e.g. {missing[0]}")
    ext = frames[0].suffix.lstrip(".") or "png"
    part = target.with_name(f".{target.name}.part")
    with tempfile.TemporaryDirectory(prefix="brender-movie-") as temp:
        for i, frame in enumerate(frames, 1):
            os.symlink(frame.resolve(), Path(temp) / f"{i:06d}.{ext}")
        cmd = ffmpeg_command(ffmpeg, Path(temp), ext, spec, part)
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await proc.communicate()
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            part.unlink(missing_ok=True)
            raise
    if proc.returncode != 0:
        part.unlink(missing_ok=True)
        lines = err.decode(errors="replace").strip().splitlines()
        tail = "; ".join(lines[-3:]) or "no message"
        raise MovieError(f"ffmpeg exited with code {proc.returncode}: {tail}")
    part.replace(target)
    return target


FrameFiles = Callable[[int], Awaitable[list[Path]]]
Ended = Callable[[int, Path | None, str], None]


class Finisher:
    """Runs each job's finishing step once its frames are done: one task per job."""

    def __init__(self, frame_files: FrameFiles, ended: Ended) -> None:
        self.frame_files = frame_files
        self.ended = ended
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def start(self, job_id: int, target: Path, spec: MovieSpec) -> None:
        if job_id not in self.tasks:
            task = asyncio.get_running_loop().create_task(self._run(job_id, target, spec))
            self.tasks[job_id] = task

    def cancel(self, job_id: int) -> None:
        task = self.tasks.pop(job_id, None)
        if task is not None:
            task.cancel()

    async def _run(self, job_id: int, target: Path, spec: MovieSpec) -> None:
        try:
            frames = await self.frame_files(job_id)
            log.info("job %d: encoding %d frames into %s", job_id, len(frames), target)
            made = await encode(frames, target, spec)
        except asyncio.CancelledError:
            raise
        except MovieError as exc:
            log.warning("job %d: no movie: %s", job_id, exc)
            self.tasks.pop(job_id, None)
            self.ended(job_id, None, f"movie: {exc}; the frames are kept")
            return
        except Exception as exc:
            log.exception("job %d: the movie's encoding failed", job_id)
            self.tasks.pop(job_id, None)
            self.ended(job_id, None, f"movie: {exc}; the frames are kept")
            return
        log.info("job %d: movie %s made", job_id, made)
        self.tasks.pop(job_id, None)
        self.ended(job_id, made, "")
