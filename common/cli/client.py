"""The farm's HTTP API as the command line uses it: requests, blob uploads, frame downloads.

Standard library only. Bodies are streamed from and to files a block at a time; an upload
cut short resumes from what the farm holds (`GET /blobs/<sha>/partial`). A big upload asks
`Expect: 100-continue` first, so a farm that refuses it from its headers (a full store, a
file over its cap) is heard before any of the body is sent.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import select
import socket
import ssl
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brender.tls import ClientTLS, describe, https_connection

BLOCK = 1024 * 1024
TIMEOUT = 60.0
RETRIES = 3
EXPECT_OVER = 1024 * 1024
"""Bodies over this many bytes wait for the farm's `100 Continue` before they are sent."""
CONTINUE_WAIT = 5.0
"""Seconds to wait for it; a server that never says it gets the body anyway (RFC 9110)."""


class CliError(Exception):
    """Something the command line reports in one line and exits non-zero for."""


class Refused(CliError):
    """The farm answered with an error object."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})" if code not in message else message)
        self.status = status
        self.code = code


Progress = Callable[[int], None]


def farm_url_wants_tls(url: str) -> bool:
    return url.strip().lower().startswith("https://")


class FarmClient:
    def __init__(self, url: str, token: str | None, tls: ClientTLS | None = None) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"--farm must be an http:// or https:// address, not {url!r}")
        self.tls = (tls or ClientTLS()) if parts.scheme == "https" else None
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _connection(self) -> http.client.HTTPConnection:
        if self.tls is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        conn = https_connection(self.host, self.port, TIMEOUT, self.tls)
        try:
            conn.connect()  # the certificate checked here: its error is the one to tell
        except ssl.SSLError as exc:
            raise CliError(describe(exc, self.host) or str(exc)) from None
        except OSError as exc:
            raise CliError(f"cannot reach the farm at {self.url}: {exc}") from None
        return conn

    def _call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers={**self._headers(), **(headers or {})})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        except ConnectionRefusedError:
            raise CliError(f"cannot reach the farm at {self.url}: connection refused") from None
        except (OSError, http.client.HTTPException) as exc:
            raise CliError(f"cannot reach the farm at {self.url}: {exc}") from None
        finally:
            conn.close()

    def _json(self, status: int, raw: bytes) -> Any:
        try:
            answer = json.loads(raw)
        except ValueError:
            raise CliError(f"the farm at {self.url} answered HTTP {status} without JSON") from None
        if isinstance(answer, dict) and answer.get("ok") is False:
            error = answer.get("error") or {}
            code = str(error.get("code", "error"))
            message = str(error.get("message", ""))
            if code == "unauthorized":
                message = f"the farm refused the token: {message} (--token / BRENDER_TOKEN)"
            raise Refused(status, code, message)
        return answer["data"] if isinstance(answer, dict) and "data" in answer else answer

    def api(self, request: dict[str, Any]) -> Any:
        body = json.dumps(request).encode()
        status, _, raw = self._call("POST", "/api", body, {"Content-Type": "application/json"})
        return self._json(status, raw)

    def missing(self, manifest: dict[str, Any]) -> list[str]:
        status, _, raw = self._call("POST", "/blobs/missing", json.dumps({"manifest": manifest}))
        return list(self._json(status, raw)["missing"])

    def stats(self) -> dict[str, Any]:
        status, _, raw = self._call("GET", "/blobs")
        return dict(self._json(status, raw))

    def held(self, sha: str) -> int:
        """Bytes of `sha` the farm holds from an interrupted upload (0 if none)."""
        status, _, raw = self._call("GET", f"/blobs/{sha}/partial")
        return int(self._json(status, raw)["size"])

    def put_blob(self, sha: str, path: Path, progress: Progress) -> int:
        """Upload `path` as blob `sha`, resuming where an earlier try stopped; answers the
        bytes sent."""
        size = os.path.getsize(path)
        sent = 0
        for attempt in range(RETRIES):
            offset = self.held(sha)  # what an earlier, cut try left on the farm
            try:
                sent += self._put_from(sha, path, offset, size, progress)
                return sent
            except CliError as exc:
                if isinstance(exc, Refused) or attempt == RETRIES - 1:
                    raise
        return sent

    def _put_from(self, sha: str, path: Path, offset: int, size: int, progress: Progress) -> int:
        length = size - offset
        headers = {
            **self._headers(),
            "Content-Length": str(length),
            "Content-Range": f"bytes {offset}-{max(size - 1, 0)}/{size}",
        }
        # Over TLS the interim answer cannot be peeked at (_continued): the body goes at once,
        # and a refusal is read after the farm stops reading it (_answer_after).
        expect = length > EXPECT_OVER and self.tls is None
        if expect:
            headers["Expect"] = "100-continue"
        conn = self._connection()
        sent = 0
        try:
            conn.putrequest("PUT", f"/blobs/{sha}")
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.endheaders()
            if not expect or _continued(conn):
                try:
                    sent = _send_file(conn, path, offset, progress)
                except OSError as exc:
                    # The farm answered and closed before taking it all: read what it said.
                    status, raw = _answer_after(conn, exc)
                    self._json(status, raw)
                    raise
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise CliError(f"upload of {path.name} cut short: {exc}") from None
        finally:
            conn.close()
        self._json(status, raw)
        return sent

    def frame_sha(self, job_id: int, number: int) -> str | None:
        status, headers, _ = self._call("HEAD", f"/frames/{job_id}/{number}")
        if status != 200:
            return None
        return {k.lower(): v for k, v in headers.items()}.get("x-content-sha256")

    def get_frame(self, job_id: int, number: int, dest: Path) -> str:
        """Download a done frame to `dest` (via a temporary file); answers its SHA-256."""
        return self.get_file(f"/frames/{job_id}/{number}", dest, f"frame {number}")

    def get_file(self, path: str, dest: Path, what: str) -> str:
        """Download `path` of the farm (a frame, a job's movie) to `dest` via a temporary file;
        answers its SHA-256."""
        conn = self._connection()
        temp = dest.with_name(f".{dest.name}.part")
        try:
            conn.request("GET", path, headers=self._headers())
            resp = conn.getresponse()
            if resp.status != 200:
                self._json(resp.status, resp.read())
                raise CliError(f"{what}: HTTP {resp.status}")
            digest = hashlib.sha256()
            with open(temp, "wb") as f:
                while block := resp.read(BLOCK):
                    f.write(block)
                    digest.update(block)
        except (OSError, http.client.HTTPException) as exc:
            temp.unlink(missing_ok=True)
            raise CliError(f"cannot download {what} from {self.url}: {exc}") from None
        finally:
            conn.close()
        os.replace(temp, dest)
        return digest.hexdigest()


def _continued(conn: http.client.HTTPConnection) -> bool:
    """After headers with `Expect: 100-continue`: True to send the body (the farm said
    `100 Continue`, or nothing in time), False when its final answer came instead."""
    sock = conn.sock
    if sock is None:
        return True
    ready, _, _ = select.select([sock], [], [], CONTINUE_WAIT)
    if not ready:
        return True
    head = sock.recv(16, socket.MSG_PEEK)
    if not head.startswith(b"HTTP/1.1 100") and not head.startswith(b"HTTP/1.0 100"):
        return False  # the final answer: getresponse() reads it
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):  # a few dozen bytes: the status line, no headers
        byte = sock.recv(1)
        if not byte:
            break
        interim += byte
    return True


def _send_file(
    conn: http.client.HTTPConnection, path: Path, offset: int, progress: Progress
) -> int:
    sent = 0
    with open(path, "rb") as f:
        f.seek(offset)
        while block := f.read(BLOCK):
            conn.send(block)
            sent += len(block)
            progress(len(block))
    return sent


def _answer_after(conn: http.client.HTTPConnection, exc: OSError) -> tuple[int, bytes]:
    """The farm's answer to a request whose body it stopped reading (a broken pipe); the
    error again when there is none to read."""
    try:
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        raise exc from None
