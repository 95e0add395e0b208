"""The farm's file endpoints (docs/api.md, Files) with urllib only. No `bpy` here.

Bodies are streamed a block at a time both ways, so neither a large texture nor a frame is
ever held in memory whole. An upload cut short resumes from the bytes the farm kept
(`GET /blobs/<sha>/partial`), as `brender submit` does. Used from the worker thread only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from . import __version__
from .client import FarmClient, data_of, refused, unreachable
from .errors import FarmError

log = logging.getLogger(__name__)

BLOCK = 1024 * 1024
TRANSFER_TIMEOUT = 60.0  # seconds a block may take: files are large, the farm is busy
RETRIES = 3

Sent = Callable[[int], None]
"""Told the size of each block as it goes (progress); it may raise to stop the transfer."""


class Cut(FarmError):
    """A transfer broke off midway (the connection went); another try may resume it."""


class Files:
    """Blob uploads and frame downloads for the farm `client` talks to."""

    def __init__(self, client: FarmClient) -> None:
        self.client = client
        self.base = client.base
        self.opener = client.opener

    def _request(
        self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> urllib.request.Request:
        head = {"User-Agent": f"brender-addon/{__version__}", **(headers or {})}
        if self.client.token:
            head["Authorization"] = f"Bearer {self.client.token}"
        return urllib.request.Request(self.base + path, data=data, headers=head, method=method)

    def _json(self, request: urllib.request.Request, timeout: float | None = None) -> Any:
        """The `data` of a JSON answer, whatever the HTTP status; FarmError for a refusal."""
        try:
            with self.opener.open(request, timeout=timeout or self.client.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            exc.close()
        except (urllib.error.URLError, OSError) as exc:
            raise unreachable(self.client.address, exc) from exc
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        return data_of(answer, self.client.address, bool(self.client.token), "the upload")

    def stats(self) -> dict[str, Any]:
        """The store: `bytes`, `max_file_size`, `quota` (0 for none)."""
        return dict(self._json(self._request("GET", "/blobs")))

    def missing(self, manifest: dict[str, Any]) -> list[str]:
        """The SHA-256 of each blob of `manifest` the farm lacks."""
        body = json.dumps({"manifest": manifest}).encode()
        req = self._request("POST", "/blobs/missing", body, {"Content-Type": "application/json"})
        return [str(sha) for sha in self._json(req)["missing"]]

    def held(self, sha: str) -> int:
        """Bytes of `sha` the farm kept from an upload that was cut off (0 if none)."""
        return int(self._json(self._request("GET", f"/blobs/{sha}/partial"))["size"])

    def put_blob(self, sha: str, path: Path, sent: Sent) -> int:
        """Upload `path` as blob `sha`, resuming where a try that broke off stopped; answers
        the bytes sent. A refusal (wrong hash, over the cap or the quota) is not retried."""
        size = os.path.getsize(path)
        total = 0
        for attempt in range(RETRIES):
            offset = self.held(sha)
            try:
                total += self._put_from(sha, path, offset, size, sent)
                return total
            except Cut:
                if attempt == RETRIES - 1:
                    raise
                log.info("brender: upload of %s cut short, resuming", path.name)
        return total

    def _put_from(self, sha: str, path: Path, offset: int, size: int, sent: Sent) -> int:
        headers = {
            "Content-Length": str(size - offset),
            "Content-Range": f"bytes {offset}-{max(size - 1, 0)}/{size}",
            "Content-Type": "application/octet-stream",
        }
        with open(path, "rb") as f:
            f.seek(offset)
            body = _Counted(f, sent)
            req = self._request("PUT", f"/blobs/{sha}", body, headers)
            try:
                with self.opener.open(req, timeout=TRANSFER_TIMEOUT) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                raw = exc.read()
                exc.close()
            except (urllib.error.URLError, OSError) as exc:
                if body.count == 0 and _refused_connection(exc):
                    raise unreachable(self.client.address, exc) from exc
                raise Cut(f"The upload of {path.name} broke off: {exc}") from exc
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        data_of(answer, self.client.address, bool(self.client.token), f"{path.name}")
        return body.count

    def frame_sha(self, job_id: int, number: int) -> str | None:
        """The SHA-256 of a done frame the farm holds (None when it has none)."""
        try:
            with self.opener.open(
                self._request("HEAD", f"/frames/{job_id}/{number}"), timeout=self.client.timeout
            ) as response:
                return response.headers.get("X-Content-SHA256")
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 401:
                raise refused(
                    {"code": "unauthorized"}, self.client.address, bool(self.client.token)
                ) from exc
            return None
        except (urllib.error.URLError, OSError) as exc:
            raise unreachable(self.client.address, exc) from exc

    def get_frame(self, job_id: int, number: int, dest: Path, sent: Sent) -> str:
        """Download a done frame to `dest` through a temporary file; answers its SHA-256."""
        temp = dest.with_name(f".{dest.name}.part")
        digest = hashlib.sha256()
        try:
            with self.opener.open(
                self._request("GET", f"/frames/{job_id}/{number}"), timeout=TRANSFER_TIMEOUT
            ) as response, open(temp, "wb") as f:  # fmt: skip
                while block := response.read(BLOCK):
                    f.write(block)
                    digest.update(block)
                    sent(len(block))
        except urllib.error.HTTPError as exc:
            temp.unlink(missing_ok=True)
            raw = exc.read()
            exc.close()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            data_of(answer, self.client.address, bool(self.client.token), f"frame {number}")
            raise FarmError(f"The farm has no file for frame {number}") from exc
        except (urllib.error.URLError, OSError) as exc:
            temp.unlink(missing_ok=True)
            raise Cut(f"Frame {number} could not be downloaded: {exc}") from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        os.replace(temp, dest)
        return digest.hexdigest()


class _Counted:
    """A file body for urllib that tells `sent` of each block read (http.client reads it)."""

    def __init__(self, f: IO[bytes], sent: Sent) -> None:
        self.f, self.sent, self.count = f, sent, 0

    def read(self, n: int = BLOCK) -> bytes:
        block = self.f.read(min(n, BLOCK) if n and n > 0 else BLOCK)
        if block:
            self.count += len(block)
            self.sent(len(block))
        return block


def _refused_connection(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
