"""The blob store over HTTP on a real server: a wrong hash is refused, a cut upload resumes,
the caps and the token answer with JSON errors."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farmctl import ServerProcess, wait_for

TOKEN = "blob-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(
        tmp_path / "server", token=TOKEN, extra=["--max-file-size", "3M", "--store-quota", "5M"]
    ).start()
    try:
        yield s
    finally:
        s.stop()


def call(server: ServerProcess, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    url = urllib.parse.urlsplit(server.http_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={**AUTH, **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return resp.status, json.loads(raw)
        return resp.status, raw
    finally:
        conn.close()


def refused_early(server: ServerProcess, path: str, length: int, **headers: str) -> tuple[int, Any]:
    """A PUT the server refuses from its headers alone: sent with `Expect: 100-continue`,
    as a careful client does, so the answer comes before any of the body."""
    url = urllib.parse.urlsplit(server.http_url)
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{extra}"
        f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode())
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            block = sock.recv(65536)
            if not block:
                break
            raw += block
    status_line, _, rest = raw.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def test_wrong_hash_refused(server: ServerProcess) -> None:
    data = os.urandom(200_000)
    sha = hashlib.sha256(data).hexdigest()
    status, answer = call(server, "PUT", f"/blobs/{sha}", data[:-1] + bytes([data[-1] ^ 1]))
    assert status == 400 and answer["error"]["code"] == "hash_mismatch", answer
    assert call(server, "GET", f"/blobs/{sha}")[0] == 404
    assert call(server, "GET", f"/blobs/{sha}/partial")[1]["data"]["size"] == 0
    status, answer = call(server, "PUT", f"/blobs/{sha}", data)
    assert status == 201 and answer["data"] == {"sha256": sha, "size": len(data), "stored": True}
    assert call(server, "GET", f"/blobs/{sha}") == (200, data)


def test_cut_upload_resumes(server: ServerProcess) -> None:
    data = os.urandom(2 * 1024 * 1024 + 123)
    sha = hashlib.sha256(data).hexdigest()
    half = len(data) // 2
    url = urllib.parse.urlsplit(server.http_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head = (
            f"PUT /blobs/{sha} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[:half])
    # The server keeps what arrived, and says how much.
    held = wait_for(
        lambda: call(server, "GET", f"/blobs/{sha}/partial")[1]["data"]["size"] == half,
        10, what="the cut upload's bytes held",
    )  # fmt: skip
    assert held
    status, answer = refused_early(server, f"/blobs/{sha}?offset=1", len(data) - 1)
    assert status == 409 and f"resume at offset {half}" in answer["error"]["message"]
    status, answer = call(
        server, "PUT", f"/blobs/{sha}", data[half:],
        {"Content-Range": f"bytes {half}-{len(data) - 1}/{len(data)}"},
    )  # fmt: skip
    assert status == 201, answer
    assert call(server, "GET", f"/blobs/{sha}") == (200, data)
    missing = call(
        server, "POST", "/blobs/missing", json.dumps({"hashes": [sha, "0" * 64]}).encode()
    )
    assert missing[1]["data"]["missing"] == ["0" * 64]


def test_caps_and_token(server: ServerProcess) -> None:
    status, answer = refused_early(server, f"/blobs/{'b' * 64}", 3 * 1024 * 1024 + 1)
    assert status == 413 and answer["error"]["code"] == "too_large", answer
    for i in range(2):
        blob = bytes([i]) * (2 * 1024 * 1024)
        assert call(server, "PUT", f"/blobs/{hashlib.sha256(blob).hexdigest()}", blob)[0] == 201
    status, answer = refused_early(server, f"/blobs/{'c' * 64}", 2 * 1024 * 1024)
    assert status == 507 and answer["error"]["code"] == "quota", answer  # 6 MiB > 5 MiB
    status, answer = call(server, "GET", "/blobs", headers={"Authorization": "Bearer wrong"})
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    assert call(server, "GET", "/blobs/not-a-hash")[0] == 400
    stats = call(server, "GET", "/blobs")[1]["data"]
    assert stats["files"] == 2 and stats["bytes"] == 4 * 1024 * 1024


def test_refusal_heard_without_expect(server: ServerProcess) -> None:
    """A client that sends its body without waiting still reads the refusal: a body up to
    8 MiB is read and dropped first."""
    for i in range(2):
        blob = bytes([i + 10]) * (2 * 1024 * 1024)
        assert call(server, "PUT", f"/blobs/{hashlib.sha256(blob).hexdigest()}", blob)[0] == 201
    body = os.urandom(2 * 1024 * 1024)
    status, answer = call(server, "PUT", f"/blobs/{hashlib.sha256(body).hexdigest()}", body)
    assert status == 507 and answer["error"]["code"] == "quota", answer
    # An already stored blob is answered so too.
    blob = bytes([10]) * (2 * 1024 * 1024)
    status, answer = call(server, "PUT", f"/blobs/{hashlib.sha256(blob).hexdigest()}", blob)
    assert status == 200 and answer["data"]["stored"] is True, answer


def test_cli_client_hears_refusals(server: ServerProcess, tmp_path: Path) -> None:
    """The CLI's client asks `Expect: 100-continue` for a big body: a file far over the cap
    (the server closes at once) and one over the quota both show the server's own words."""
    from brender.cli.client import FarmClient, Refused

    client = FarmClient(server.http_url, TOKEN)
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(Refused) as refused:
        client.put_blob("d" * 64, big, lambda n: None)
    assert refused.value.status == 413 and "--max-file-size" in str(refused.value)
    for i in range(2):
        blob = bytes([i + 20]) * (2 * 1024 * 1024)
        assert call(server, "PUT", f"/blobs/{hashlib.sha256(blob).hexdigest()}", blob)[0] == 201
    over = tmp_path / "over.bin"
    over.write_bytes(os.urandom(2 * 1024 * 1024 + 1))
    sha = hashlib.sha256(over.read_bytes()).hexdigest()
    sent: list[int] = []
    with pytest.raises(Refused) as refused:
        client.put_blob(sha, over, sent.append)
    assert refused.value.code == "quota" and "the farm's store is full" in str(refused.value)
    assert sum(sent) == 0  # refused before any of the body went
