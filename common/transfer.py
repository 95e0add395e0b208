"""The farm's file endpoints (docs/api.md, Files) for every client: the `brender` CLI and the
add-on (which bundles this module in `_shared/`, so: standard library only, relative imports).

The upload protocol: send the manifest, the farm answers the blobs it lacks (`missing`), check
them against its limits (`plan`), stream only those (`put_blob`), each resumed from the bytes
the farm kept of a try that broke off (`GET /blobs/<sha>/partial`). A big body over plain HTTP
asks `Expect: 100-continue` first, so a farm that refuses it from its headers (a full store, a
file over its cap) is heard before any of it is sent. Downloads (`get_file`) stream to a
temporary file. Bodies go a block at a time both ways; a `Sent` callback hears of each block
and may raise to stop the transfer (the add-on's worker does when Blender disables it).
What differs between the clients is given: the TLS settings, the user agent, the timeouts,
the progress; each turns this module's errors into its own words.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import select
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .sizes import human
from .tls import ClientTLS, describe, https_connection

BLOCK = 1024 * 1024
TIMEOUT = 60.0
"""Seconds one block may take: files are large, the farm may be busy."""
RETRIES = 3
EXPECT_OVER = 1024 * 1024
"""Bodies over this many bytes wait for the farm's `100 Continue` before they are sent."""
CONTINUE_WAIT = 5.0
"""Seconds to wait for it; a server that never says it gets the body anyway (RFC 9110)."""

Sent = Callable[[int], None]
"""Told the size of each block as it goes (progress); it may raise to stop the transfer."""


class TransferError(Exception):
    """What went wrong talking to the farm's file endpoints, in one line."""


class Refused(TransferError):
    """The farm answered with its error object (`code`, `message`); not worth a retry."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})" if code not in message else message)
        self.status = status
        self.code = code
        self.message = message


class NotAFarm(TransferError):
    """Something answered, but not with a brender farm's JSON."""


class Unreachable(TransferError):
    """No connection to the farm (refused, no such host, a certificate not trusted)."""

    def __init__(self, text: str, cause: BaseException) -> None:
        super().__init__(text)
        self.cause = cause


class Cut(TransferError):
    """A transfer broke off midway (the connection went); another try may resume it."""


class TooMuch(TransferError):
    """A file over the farm's cap, or more than its store has room for: nothing was sent."""


class Meter(Protocol):
    """Progress of one upload: how much there is, each block, each file."""

    def start(self, files: int, total: int) -> None: ...

    def sent(self, n: int) -> None: ...

    def file_done(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What to upload: each lacking blob (its SHA-256 → its path in the tree) and its size."""

    todo: dict[str, str]
    sizes: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def plan(files: dict[str, Any], lacking: Iterable[str], limits: dict[str, Any]) -> Plan:
    """The blobs of a manifest's `files` (path → entry with `sha256`, `size`) the farm lacks,
    once checked against its `limits` (`GET /blobs`: `max_file_size`, `quota`, `bytes`)."""
    lacking = set(lacking)
    todo = {e.sha256: path for path, e in sorted(files.items()) if e.sha256 in lacking}
    sizes = {sha: files[path].size for sha, path in todo.items()}
    cap = int(limits.get("max_file_size") or 0)
    for sha, path in todo.items():
        if cap and sizes[sha] > cap:
            raise TooMuch(
                f"{path} is {human(sizes[sha])}, over the farm's limit of {human(cap)} per "
                "file: nothing was uploaded"
            )
    quota = int(limits.get("quota") or 0)
    room = quota - int(limits.get("bytes") or 0)
    total = sum(sizes.values())
    if quota and total > room:
        raise TooMuch(
            f"the farm's store has {human(max(room, 0))} free; this job needs {human(total)}: "
            "nothing was uploaded"
        )
    return Plan(todo, sizes)


class FarmFiles:
    """One farm's file endpoints at `scheme://host:port` (`tls` for https)."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        token: str | None,
        tls: ClientTLS | None = None,
        user_agent: str = "brender",
        timeout: float = TIMEOUT,
        transfer_timeout: float = TIMEOUT,
    ) -> None:
        self.tls = (tls or ClientTLS()) if scheme == "https" else None
        self.host, self.port = host, port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{port}"
        self.token = token
        self.user_agent = user_agent
        self.timeout = timeout  # of a request
        self.transfer_timeout = transfer_timeout  # of each block of a body

    # -- the connection ----------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        head = {"User-Agent": self.user_agent}
        if self.token:
            head["Authorization"] = f"Bearer {self.token}"
        return head

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        """A connected connection; `Unreachable` (with the TLS failure in words) if none."""
        conn: http.client.HTTPConnection
        timeout = timeout or self.timeout
        if self.tls is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        else:
            conn = https_connection(self.host, self.port, timeout, self.tls)
        try:
            conn.connect()  # a certificate is checked here: its error is the one to tell
        except ssl.SSLError as exc:
            conn.close()
            raise Unreachable(describe(exc, self.host) or str(exc), exc) from None
        except OSError as exc:
            conn.close()
            raise Unreachable(f"cannot reach the farm at {self.url}: {exc}", exc) from None
        return conn

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request: (status, headers with lower-case names, body)."""
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers={**self.headers(), **(headers or {})})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Cut(f"the farm at {self.url} did not answer: {exc}") from None
        finally:
            conn.close()

    def answer(self, status: int, raw: bytes) -> Any:
        """The `data` of a JSON answer, whatever the HTTP status; `Refused` for an error."""
        try:
            answer = json.loads(raw)
        except ValueError:
            raise NotAFarm(f"the farm at {self.url} answered HTTP {status} without JSON") from None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise NotAFarm(f"something answered at {self.url}, but it is not a brender farm")
        if answer["ok"] is False:
            error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
            assert isinstance(error, dict)
            raise Refused(status, str(error.get("code", "error")), str(error.get("message", "")))
        return answer.get("data")

    def json(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        data = None if body is None else json.dumps(body).encode()
        status, _, raw = self.call(method, path, data, headers)
        return self.answer(status, raw)

    # -- uploads -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The store: `bytes`, `max_file_size`, `quota` (0 for none)."""
        return dict(self.json("GET", "/blobs"))

    def missing(self, manifest: dict[str, Any]) -> list[str]:
        """The SHA-256 of each blob of `manifest` (its wire form) the farm lacks."""
        return [
            str(sha)
            for sha in self.json("POST", "/blobs/missing", {"manifest": manifest})["missing"]
        ]

    def held(self, sha: str) -> int:
        """Bytes of `sha` the farm kept from an upload that broke off (0 if none)."""
        return int(self.json("GET", f"/blobs/{sha}/partial")["size"])

    def put_blob(
        self, sha: str, path: Path, sent: Sent, on_retry: Callable[[], None] | None = None
    ) -> int:
        """Upload `path` as blob `sha`, resuming where a try that broke off stopped; answers
        the bytes sent. A refusal (wrong hash, over the cap or the quota) is not retried."""
        size = os.path.getsize(path)
        total = 0
        for attempt in range(RETRIES):
            offset = self.held(sha)  # what an earlier, cut try left on the farm
            try:
                total += self._put_from(sha, path, offset, size, sent)
                return total
            except Cut:
                if attempt == RETRIES - 1:
                    raise
                if on_retry is not None:
                    on_retry()
        return total

    def _put_from(self, sha: str, path: Path, offset: int, size: int, sent: Sent) -> int:
        length = size - offset
        headers = {
            **self.headers(),
            "Content-Length": str(length),
            "Content-Range": f"bytes {offset}-{max(size - 1, 0)}/{size}",
            "Content-Type": "application/octet-stream",
        }
        # Over TLS the interim answer cannot be peeked at (_continued): the body goes at once,
        # and a refusal is read after the farm stops reading it (_answer_after).
        expect = length > EXPECT_OVER and self.tls is None
        if expect:
            headers["Expect"] = "100-continue"
        conn = self.connection(self.transfer_timeout)
        count = 0
        try:
            conn.putrequest("PUT", f"/blobs/{sha}", skip_accept_encoding=True)
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.endheaders()
            if not expect or _continued(conn):
                try:
                    count = _send_file(conn, path, offset, sent)
                except OSError as exc:
                    # The farm answered and closed before taking it all: read what it said.
                    status, raw = _answer_after(conn, exc)
                    self.answer(status, raw)
                    raise
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Cut(f"the upload of {path.name} broke off: {exc}") from None
        finally:
            conn.close()
        self.answer(status, raw)
        return count

    def send_missing(
        self, root: Path, manifest: Any, limits: dict[str, Any], meter: Meter
    ) -> tuple[int, int, int]:
        """Upload the blobs of `manifest` (a `Manifest` of the tree at `root`) the farm lacks,
        within its `limits` (`stats`), telling `meter`. Answers (files sent, bytes sent, files
        the farm had)."""
        todo = plan(manifest.files, self.missing(manifest.to_wire()), limits)
        meter.start(len(todo.todo), todo.total)
        count = 0
        for sha, path in todo.todo.items():
            count += self.put_blob(sha, root / path, meter.sent)
            meter.file_done()
        return len(todo.todo), count, len(manifest.hashes()) - len(todo.todo)

    # -- downloads ---------------------------------------------------------------------------

    def frame_sha(self, job_id: int, number: int) -> str | None:
        """The SHA-256 of a done frame the farm holds (None when it has none)."""
        status, headers, _ = self.call("HEAD", f"/frames/{job_id}/{number}")
        if status == 401:
            raise Refused(status, "unauthorized", "a valid token is needed")
        return headers.get("x-content-sha256") if status == 200 else None

    def get_file(self, path: str, dest: Path, what: str, sent: Sent | None = None) -> str:
        """Download `path` of the farm (a frame, a job's movie) to `dest` via a temporary file;
        answers its SHA-256. `Refused` when the farm has none."""
        conn = self.connection(self.transfer_timeout)
        temp = dest.with_name(f".{dest.name}.part")
        digest = hashlib.sha256()
        try:
            conn.request("GET", path, headers=self.headers())
            resp = conn.getresponse()
            if resp.status != 200:
                self.answer(resp.status, resp.read())
                raise Refused(resp.status, "not_found", f"the farm has no file for {what}")
            with open(temp, "wb") as f:
                while block := resp.read(BLOCK):
                    f.write(block)
                    digest.update(block)
                    if sent is not None:
                        sent(len(block))
        except (OSError, http.client.HTTPException) as exc:
            temp.unlink(missing_ok=True)
            raise Cut(f"{what} could not be downloaded from {self.url}: {exc}") from None
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
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


def _send_file(conn: http.client.HTTPConnection, path: Path, offset: int, sent: Sent) -> int:
    count = 0
    with open(path, "rb") as f:
        f.seek(offset)
        while block := f.read(BLOCK):
            conn.send(block)
            count += len(block)
            sent(len(block))
    return count


def _answer_after(conn: http.client.HTTPConnection, exc: OSError) -> tuple[int, bytes]:
    """The farm's answer to a request whose body it stopped reading (a broken pipe); the
    error again when there is none to read."""
    try:
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        raise exc from None
