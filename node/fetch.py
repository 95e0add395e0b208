"""The node's HTTP side of the master: fetching blobs (verified by hash) and sending frames.

Blocking calls on the standard library's `http.client`, run in a worker thread by the caller;
every body is streamed a block at a time, never held whole.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import ssl
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brender.messages import UPLOAD_KEY_HEADER
from brender.tls import ClientTLS, describe, https_connection

BLOCK = 1024 * 1024
TIMEOUT = 60.0


class FetchError(Exception):
    """A transfer that failed; `permanent` when trying again cannot help (a 4xx answer);
    `status` is the master's HTTP answer, when it gave one."""

    def __init__(self, message: str, permanent: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


class FarmFiles:
    """The master's `/blobs` and `/frames` endpoints. `base_url` is asked at each call: the
    master says its HTTP port in each `welcome`."""

    def __init__(
        self, base_url: Callable[[], str | None], token: str | None, tls: ClientTLS | None = None
    ) -> None:
        self._base_url = base_url
        self._token = token
        self._tls = tls
        self.fetched_bytes = 0
        self.sent_bytes = 0
        self.upload_keys: dict[int, str] = {}
        """Chunk id → the upload key its frames are sent with: its order's, or the one a
        `welcome` gave when the master kept the chunk on this node after a reconnect."""

    def _connect(self) -> tuple[http.client.HTTPConnection, str]:
        base = self._base_url()
        if not base:
            raise FetchError("the master has not said its HTTP port (an older master?)")
        url = urllib.parse.urlsplit(base)
        host = url.hostname or "127.0.0.1"
        if url.scheme != "https":
            return http.client.HTTPConnection(host, url.port, timeout=TIMEOUT), url.path.rstrip("/")
        conn = https_connection(host, url.port or 443, TIMEOUT, self._tls or ClientTLS())
        try:
            conn.connect()  # the certificate checked now, so its error is the one reported
        except ssl.SSLError as exc:
            raise FetchError(describe(exc, host) or str(exc)) from None
        return conn, url.path.rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def get_blob(self, sha: str, dest: Path) -> int:
        """Download blob `sha` to `dest`, checking its hash; answers its size."""
        try:
            conn, prefix = self._connect()
            try:
                conn.request("GET", f"{prefix}/blobs/{sha}", headers=self._headers())
                resp = conn.getresponse()
                if resp.status != 200:
                    raise _refused(resp, f"fetching {sha}")
                digest = hashlib.sha256()
                size = 0
                with open(dest, "wb") as f:
                    while block := resp.read(BLOCK):
                        f.write(block)
                        digest.update(block)
                        size += len(block)
                        self.fetched_bytes += len(block)
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"fetching {sha}: {exc}") from exc
        if digest.hexdigest() != sha:
            dest.unlink(missing_ok=True)
            raise FetchError(f"fetched {sha} but it hashes to {digest.hexdigest()}")
        return size

    def put_frame(self, job_id: int, frame: int, path: Path, key: str) -> str:
        """Send a saved frame to the master with its chunk's upload key (a header, never in
        the URL); answers its path on the master."""
        query = urllib.parse.urlencode({"name": path.name})
        try:
            conn, prefix = self._connect()
            try:
                size = os.path.getsize(path)
                with open(path, "rb") as body:
                    conn.request(
                        "PUT",
                        f"{prefix}/frames/{job_id}/{frame}?{query}",
                        body=body,
                        headers={
                            **self._headers(),
                            "Content-Length": str(size),
                            UPLOAD_KEY_HEADER: key,
                        },
                    )
                resp = conn.getresponse()
                if resp.status not in (200, 201):
                    raise _refused(resp, f"sending frame {frame}")
                answer: Any = json.loads(resp.read())
            finally:
                conn.close()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise FetchError(f"sending frame {frame}: {exc}") from exc
        self.sent_bytes += size
        return str(answer["data"]["path"])


def _refused(resp: http.client.HTTPResponse, what: str) -> FetchError:
    try:
        error = json.loads(resp.read(64 * 1024))["error"]
        text = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        text = f"HTTP {resp.status}"
    permanent = 400 <= resp.status < 500
    return FetchError(f"{what}: the master answered {text}", permanent, resp.status)
