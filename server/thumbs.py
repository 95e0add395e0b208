"""Thumbnails of rendered frames for the dashboard: `GET /thumb/<frame_id>?size=320`.

The server reads the frame's output file where it can see it (shared storage, or a node on the
same machine). PNG, JPEG, TIFF, BMP, WebP and Targa are scaled down by Pillow on a small thread
pool, so the event loop never decodes an image; anything else (OpenEXR, a file this machine
cannot see) gets a placeholder image that says why.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import tornado.web
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from tornado.ioloop import IOLoop

from brender import wire
from brender.server.api import file_refusal
from brender.server.errors import NotFound
from brender.server.farm import Farm
from brender.server.models import Frame, Job

log = logging.getLogger(__name__)

PREVIEWABLE = ["PNG", "JPEG", "TIFF", "BMP", "WEBP", "TGA"]
"""Pillow's names of the formats that get a real preview (never a format it merely guesses)."""

DEFAULT_SIZE = 320
MIN_SIZE = 32
MAX_SIZE = 1024
CACHE_ENTRIES = 256
BACKGROUND = (32, 36, 44)


@dataclass(frozen=True)
class Thumb:
    data: bytes
    content_type: str
    placeholder: str = ""  # why there is no real preview; "" for a real one


_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="brender-thumbs")
_cache: OrderedDict[tuple[object, ...], Thumb] = OrderedDict()
_cache_lock = threading.Lock()


# -- services: which file, and its thumbnail ----------------------------------------------------


def frame_output(frame_id: int) -> str:
    """The file a frame was saved to; `NotFound` (with what to do) when there is none yet, or
    when the file is not in the job's own output folder (a report the farm cannot vouch for)."""
    frame = (
        Frame.select(Frame.id, Frame.job, Frame.number, Frame.status, Frame.output_file)
        .where(Frame.id == frame_id)
        .first()
    )
    if frame is None:
        raise NotFound(f"no frame with id {frame_id}")
    if not frame.output_file:
        raise NotFound(
            f"frame {frame.number} of job {frame.job_id} has no output file yet ({frame.status})"
        )
    job = Job.select(Job.output, Job.blend_file).where(Job.id == frame.job_id).first()
    folder = output_folder(job.output, job.blend_file) if job is not None else ""
    if not folder or not inside(str(frame.output_file), folder):
        log.warning("frame %d: %r is outside its job's output folder %r; not served",
                    frame_id, frame.output_file, folder)  # fmt: skip
        raise NotFound(
            f"frame {frame.number} of job {frame.job_id} has no file in its job's folder"
        )
    return str(frame.output_file)


def output_folder(pattern: str, blend_file: str) -> str:
    """The folder a job's output pattern writes into (`//` is the .blend's folder, as Blender
    reads it); "" when it names none."""
    if pattern.startswith("//"):
        pattern = os.path.join(os.path.dirname(blend_file), pattern[2:])
    return os.path.dirname(pattern) if os.path.isabs(pattern) else ""


def inside(path: str, folder: str) -> bool:
    """`path`, links resolved, is in `folder` or below it."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def thumbnail(path: str, size: int) -> Thumb:
    """A JPEG (or PNG, when it has transparency) at most `size` pixels on its longer side, or a
    placeholder. Cached by path, modification time and file size. Runs on the thread pool."""
    try:
        st = os.stat(path)
    except OSError:
        return placeholder("file not on the server's disk", size)
    if path.lower().endswith(".exr"):
        return placeholder("OpenEXR: no preview", size)
    key = (path, st.st_mtime_ns, st.st_size, size)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    thumb = _render(path, size)
    if not thumb.placeholder:
        with _cache_lock:
            _cache[key] = thumb
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
    return thumb


def _render(path: str, size: int) -> Thumb:
    try:
        with Image.open(path, formats=PREVIEWABLE) as opened:
            opened.draft("RGB", (size, size))  # JPEG decodes at a smaller scale: much faster
            opened.thumbnail((size, size))
            img = _to_8bit(opened)
            img.load()
    except UnidentifiedImageError:
        return placeholder("format has no preview", size)
    except Image.DecompressionBombError:
        return placeholder("too large to preview", size)
    except (OSError, ValueError, SyntaxError) as exc:
        log.info("cannot thumbnail %s: %s", path, exc)
        return placeholder("unreadable image", size)
    out = io.BytesIO()
    if img.mode in ("RGBA", "LA") and _translucent(img):
        img.save(out, "PNG", optimize=True)
        return Thumb(out.getvalue(), "image/png")
    img.convert("RGB").save(out, "JPEG", quality=85)
    return Thumb(out.getvalue(), "image/jpeg")


def _translucent(img: Image.Image) -> bool:
    lowest = img.getchannel("A").getextrema()[0]
    return isinstance(lowest, int | float) and lowest < 255


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float images (TIFF, 16-bit grey PNG) as 8-bit ones a browser can show."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if img.mode == "F":
        return img.point(lambda v: v * 255).convert("L")
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        return img.convert("RGBA")
    return img


def placeholder(reason: str, size: int) -> Thumb:
    """A dark 16:9 picture that says why there is no preview."""
    key = ("placeholder", reason, size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    width, height = size, max(18, size * 9 // 16)
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=max(8, size // 18))
    draw.multiline_text(
        (width / 2, height / 2),
        f"no preview\n{reason}",
        fill=(160, 168, 184),
        font=font,
        anchor="mm",
        align="center",
    )
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    thumb = Thumb(out.getvalue(), "image/png", reason)
    with _cache_lock:
        _cache[key] = thumb
    return thumb


# -- transport ----------------------------------------------------------------------------------


class ThumbHandler(tornado.web.RequestHandler):
    """`GET /thumb/<frame_id>?size=320`; the token as `Authorization: Bearer …` only. The page
    fetches the picture with that header and shows it as a `blob:` URL: a token in a URL would
    reach access logs, proxies and the browser's history (docs/api.md)."""

    def initialize(self, farm: Farm) -> None:
        self.farm = farm

    def _error(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(wire.encode({"ok": False, "error": {"code": code, "message": message}}))

    async def get(self, frame_id: str) -> None:
        request = self.request
        refusal = file_refusal(
            self.farm.settings.token, request.headers.get("Authorization", ""), request.arguments
        )
        if refusal:
            return self._error(401, "unauthorized", refusal)
        raw_size = self.get_query_argument("size", str(DEFAULT_SIZE))
        if not raw_size.isdigit():
            return self._error(422, "invalid_value", "size must be a whole number of pixels")
        size = max(MIN_SIZE, min(MAX_SIZE, int(raw_size)))
        try:
            if len(frame_id) > 15:
                raise NotFound(f"no frame with id {frame_id}")
            path = frame_output(int(frame_id))
        except NotFound as exc:
            return self._error(404, exc.code, exc.message)
        thumb = await IOLoop.current().run_in_executor(_pool, thumbnail, path, size)
        self.set_header("Content-Type", thumb.content_type)
        # Revalidated each time: a requeued frame is saved again under the same id.
        self.set_header("Cache-Control", "private, no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        if thumb.placeholder:
            self.set_header("X-Brender-Preview", f"placeholder: {thumb.placeholder}")
        self.finish(thumb.data)
