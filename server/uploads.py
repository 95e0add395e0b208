"""HTTP for files: the blob store (`/blobs/…`) and rendered frames (`/frames/<job>/<n>`).

Bodies are streamed: a PUT is written to a partial file and hashed as it arrives, a GET is
sent a block at a time, so no file is ever held in memory whole. Handlers parse, cap sizes,
authenticate (the farm token, `Authorization: Bearer …`) and call the store; docs/api.md
lists the endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tornado.web
from tornado.iostream import StreamClosedError

from brender import wire
from brender.manifest import Manifest, ManifestError, check_path, hash_file
from brender.messages import UPLOAD_KEY_HEADER
from brender.server.api import file_refusal
from brender.server.blobs import BLOCK, BlobError, BlobStore, Upload, check_name
from brender.server.errors import FarmError
from brender.server.farm import Farm
from brender.server.services import packed

log = logging.getLogger(__name__)

MAX_MISSING_BODY = 32 * 1024 * 1024
DISCARD_MAX = 8 * 1024 * 1024
"""A PUT refused from its headers, without `Expect: 100-continue`, whose body is at most this
long is read and thrown away before the answer, so the client reads the answer instead of
a broken pipe; a longer one is answered at once and the connection closed."""
RANGE = re.compile(r"^bytes (\d+)-(\d+|\*)?(?:/(\d+|\*))?$")


class FileHandler(tornado.web.RequestHandler):
    """What the file endpoints share: the token and JSON errors."""

    def initialize(self, farm: Farm, store: BlobStore) -> None:
        self.farm = farm
        self.store = store

    def check_xsrf_cookie(self) -> None:
        """A token header authenticates, not a cookie."""

    def authed(self) -> bool:
        request = self.request
        refusal = file_refusal(
            self.farm.settings.token, request.headers.get("Authorization", ""), request.arguments
        )
        if refusal:
            self.fail(401, "unauthorized", refusal)
        return refusal is None

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(wire.encode({"ok": True, "data": data}))

    def fail(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(wire.encode({"ok": False, "error": {"code": code, "message": message}}))

    def fail_with(self, exc: FarmError) -> None:
        status = exc.status if isinstance(exc, BlobError) else _STATUS.get(exc.code, 400)
        self.fail(status, exc.code, exc.message)

    async def send_file(self, path: Path, head: bool) -> int:
        """Stream `path` (its size and SHA-256 in the headers); answers the bytes sent."""
        size = path.stat().st_size
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(size))
        if head:
            self.finish()
            return 0
        sent = 0
        with open(path, "rb") as f:
            while block := await asyncio.to_thread(f.read, BLOCK):
                self.write(block)
                try:
                    await self.flush()
                except StreamClosedError:
                    return sent
                sent += len(block)
        self.finish()
        return sent


_STATUS = {
    "conflict": 409,
    "not_found": 404,
    "invalid_value": 422,
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
}


class StoreStatsHandler(FileHandler):
    """`GET /blobs`: the store's size, caps, and the bytes taken in and sent since start."""

    async def get(self) -> None:
        if not self.authed():
            return
        stats = self.store.stats
        self.reply(
            {
                "files": stats.files,
                "bytes": stats.bytes,
                "received": stats.received,
                "served": stats.served,
                "max_file_size": self.store.max_file,
                "quota": self.store.quota,
            }
        )


class MissingHandler(FileHandler):
    """`POST /blobs/missing` with `{"manifest": {...}}` or `{"hashes": [...]}`."""

    async def post(self) -> None:
        if not self.authed():
            return
        try:
            body = wire.loads(self.request.body, MAX_MISSING_BODY)
            if not isinstance(body, dict):
                raise FarmError("send {'manifest': {...}} or {'hashes': [...]}")
            if "manifest" in body:
                hashes: dict[str, int] = Manifest.parse(body["manifest"]).hashes()
            else:
                listed = body.get("hashes")
                if not isinstance(listed, list) or not all(isinstance(h, str) for h in listed):
                    raise FarmError("'hashes' must be a list of SHA-256 strings")
                hashes = {check_name(h): 0 for h in listed}
            missing = await asyncio.to_thread(self.store.claim, hashes)  # a submit follows
        except wire.WireError as exc:
            return self.fail(400, exc.code, exc.message)
        except ManifestError as exc:
            return self.fail(422, "invalid_value", f"manifest: {exc}")
        except FarmError as exc:
            return self.fail_with(exc)
        self.reply({"missing": missing, "bytes": sum(hashes[h] for h in missing)})


class PartialHandler(FileHandler):
    """`GET /blobs/<sha>/partial`: how many bytes of an interrupted upload the farm holds."""

    async def get(self, sha: str) -> None:
        if not self.authed():
            return
        try:
            stored = self.store.has(sha)
            held = 0 if stored else self.store.partial_size(sha)
        except BlobError as exc:
            return self.fail_with(exc)
        self.reply({"sha256": sha, "stored": stored, "size": held})


@tornado.web.stream_request_body
class BlobHandler(FileHandler):
    """`PUT /blobs/<sha>` (streamed, hashed as it arrives; `?offset=N` or `Content-Range:
    bytes N-…` appends to an interrupted upload), `GET`/`HEAD /blobs/<sha>`."""

    upload: Upload | None = None
    broken: BlobError | None = None
    early: Callable[[], None] | None = None
    """An answer decided from the headers, given once the body has been read and dropped."""
    total: int | None = None
    """The whole file's size when `Content-Range` says it: a shorter body is a piece."""

    async def prepare(self) -> None:
        if self.request.method != "PUT" or not self.authed():
            return
        sha = self.path_args[0]
        try:
            if self.store.has(sha):
                size = self.store.path(sha).stat().st_size
                answer = {"sha256": sha, "size": size, "stored": True}
                return self._answer_early(lambda: self.reply(answer))
            offset, length = self._extent()
            self.request.connection.set_max_body_size(self.store.max_file + 1)  # type: ignore[union-attr]
            self.upload = await asyncio.to_thread(self.store.begin, sha, offset, length)
        except BlobError as exc:
            return self._answer_early(functools.partial(self.fail_with, exc))

    def _answer_early(self, answer: Callable[[], None]) -> None:
        """Answer now when the client waits for `100 Continue` or sends no body (or too long
        a one: then the connection closes); else once its body is read and dropped."""
        length_text = self.request.headers.get("Content-Length", "")
        length = int(length_text) if length_text.isdigit() else 0
        expects = self.request.headers.get("Expect", "").lower() == "100-continue"
        if expects or not 0 < length <= DISCARD_MAX:
            return answer()
        self.request.connection.set_max_body_size(DISCARD_MAX)  # type: ignore[union-attr]
        self.early = answer

    def _extent(self) -> tuple[int, int | None]:
        """Where the body goes (its offset) and its length, when the client said."""
        length_text = self.request.headers.get("Content-Length")
        length = int(length_text) if length_text and length_text.isdigit() else None
        offset_text = self.get_query_argument("offset", None)
        content_range = self.request.headers.get("Content-Range")
        if content_range:
            match = RANGE.match(content_range.strip())
            if match is None:
                raise BlobError(f"cannot read Content-Range {content_range!r}", "bad_request", 400)
            offset_text = match.group(1)
            total = match.group(3)
            self.total = int(total) if total and total.isdigit() else None
        if offset_text is None:
            return 0, length
        if not offset_text.isdigit():
            raise BlobError("'offset' must be a whole number of bytes", "bad_request", 400)
        return int(offset_text), length

    def data_received(self, chunk: bytes) -> None:
        if self.upload is None or self.broken is not None:
            return  # nothing to keep (an early answer's body is dropped)
        try:
            self.upload.write(chunk)
        except BlobError as exc:
            self.broken = exc
            self.upload.close()

    async def put(self, sha: str) -> None:
        if self.early is not None:
            return self.early()
        upload = self.upload
        if upload is None:
            return
        if self.broken is not None:
            return self.fail_with(self.broken)
        if self.total is not None and upload.size < self.total:
            upload.close()  # one piece of several: the next PUT appends
            return self.reply({"sha256": sha, "size": upload.size, "stored": False}, 202)
        try:
            size = await asyncio.to_thread(upload.finish)
        except BlobError as exc:
            log.warning("upload of %s refused: %s", sha, exc.message)
            return self.fail_with(exc)
        self.reply({"sha256": sha, "size": size, "stored": True}, 201)

    async def get(self, sha: str) -> None:
        await self._send(sha, head=False)

    async def head(self, sha: str) -> None:
        await self._send(sha, head=True)

    async def _send(self, sha: str, head: bool) -> None:
        if not self.authed():
            return
        try:
            path = self.store.path(sha)
        except BlobError as exc:
            return self.fail_with(exc)
        if not path.is_file():
            return self.fail(404, "not_found", f"this farm holds no file {sha}")
        self.store.stats.served += await self.send_file(path, head)

    def on_connection_close(self) -> None:
        """A cut upload keeps what arrived: the next PUT resumes from there."""
        if self.upload is not None:
            log.info("upload of %s cut after %d bytes", self.upload.sha, self.upload.size)
            self.upload.close()

    def on_finish(self) -> None:
        if self.upload is not None:
            self.upload.close()


@tornado.web.stream_request_body
class FrameHandler(FileHandler):
    """`PUT /frames/<job>/<n>?name=0001.png`: a node sends a frame it saved, with the upload
    key of the order that gave it the frame (`X-Brender-Upload-Key`: 403 without it or with
    a wrong one, 409 when the frame's chunk is not the node's now); the farm keeps it in the
    job's output folder and answers its path there. `GET`/`HEAD` send a done
    frame back (its SHA-256 in `X-Content-SHA256`), whatever the job's storage."""

    part: Any = None
    target: Path | None = None
    digest: Any = None
    size = 0
    broken: str | None = None

    async def prepare(self) -> None:
        if self.request.method != "PUT" or not self.authed():
            return
        job_id, number = int(self.path_args[0]), int(self.path_args[1])
        key = self.request.headers.get(UPLOAD_KEY_HEADER, "")
        if not key:
            return self.fail(
                403,
                "forbidden",
                f"no {UPLOAD_KEY_HEADER}: send the upload key of the frame's order",
            )
        try:
            name = check_path(self.get_query_argument("name", ""))
            if "/" in name:
                raise ManifestError("a file name, not a path")
            scheduler = self.farm.scheduler
            live = scheduler.jobs.get(job_id)
            self.target = packed.frame_target(
                live, job_id, number, name, key, scheduler.retired_keys
            )
        except ManifestError as exc:
            return self.fail(422, "invalid_value", f"'name': {exc}")
        except FarmError as exc:
            return self.fail_with(exc)
        self.request.connection.set_max_body_size(self.store.max_file + 1)  # type: ignore[union-attr]
        folder = self.target.parent
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        self.part = open(folder / f".{name}.{number}.part", "wb")  # noqa: SIM115
        self.digest = hashlib.sha256()

    def data_received(self, chunk: bytes) -> None:
        if self.part is None or self.broken:
            return
        self.size += len(chunk)
        if self.size > self.store.max_file:
            self.broken = f"frame over this farm's cap of {self.store.max_file} bytes per file"
            return
        self.part.write(chunk)
        self.digest.update(chunk)

    async def put(self, job: str, number: str) -> None:
        if self.part is None or self.target is None:
            return
        part_path = Path(self.part.name)
        self.part.close()
        self.part = None
        if self.broken:
            part_path.unlink(missing_ok=True)
            return self.fail(413, "too_large", self.broken)
        os.replace(part_path, self.target)
        log.info("job %s frame %s: %s received (%d bytes)", job, number, self.target, self.size)
        self.reply(
            {"path": str(self.target), "size": self.size, "sha256": self.digest.hexdigest()}, 201
        )

    async def get(self, job: str, number: str) -> None:
        await self._send(int(job), int(number), head=False)

    async def head(self, job: str, number: str) -> None:
        await self._send(int(job), int(number), head=True)

    async def _send(self, job_id: int, number: int, head: bool) -> None:
        if not self.authed():
            return
        try:
            path = packed.frame_file(job_id, number)
        except FarmError as exc:
            return self.fail_with(exc)
        self.set_header("X-Content-SHA256", (await asyncio.to_thread(hash_file, path)).sha256)
        self.set_header("X-Frame-Name", path.name)
        await self.send_file(path, head)

    def on_connection_close(self) -> None:
        self._drop_part()

    def on_finish(self) -> None:
        self._drop_part()

    def _drop_part(self) -> None:
        if self.part is not None:
            with contextlib.suppress(OSError):
                self.part.close()
                Path(self.part.name).unlink(missing_ok=True)
            self.part = None


def routes(farm: Farm, store: BlobStore) -> list[tuple[str, type, dict[str, Any]]]:
    args = {"farm": farm, "store": store}
    sha = r"([^/]{1,128})"
    return [
        (r"/blobs", StoreStatsHandler, args),
        (r"/blobs/missing", MissingHandler, args),
        (rf"/blobs/{sha}/partial", PartialHandler, args),
        (rf"/blobs/{sha}", BlobHandler, args),
        (r"/frames/([0-9]{1,15})/([0-9]{1,9})", FrameHandler, args),
    ]
