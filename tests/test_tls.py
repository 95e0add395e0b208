"""TLS on both ports (issue 16, item 7), with certificates made in the test run: a real node
over `tls://` renders, the CLI submits and downloads over https, the console and the API
answer over TLS, a plain client is told what is wrong without hurting the server, and a
wrong CA or fingerprint is refused in one clear line."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from blender_scene import make_scene
from farmctl import NodeProcess, ServerProcess, stop_all, wait_for
from test_e2e_upload import brender
from tlscerts import Certs, tls_farm

from brender import tls

TOKEN = "tls-s3cret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[ServerProcess]:
    # 8 connections per address and port: a failed handshake that kept its place in the
    # accept gate would soon lock this test's clients out.
    with tls_farm(tmp_path_factory.mktemp("farm"), certs, TOKEN, ["--max-per-peer", "8"]) as farm:
        yield farm


def tls_lines(port: int, ca: Path, lines: list[bytes], done: Callable[[bytes], bool]) -> bytes:
    """Send `lines` over TLS to the TCP port and read until `done(what came)`."""
    ctx = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(b"".join(lines))
        got = b""
        while not done(got):
            block = sock.recv(65536)
            if not block:
                break
            got += block
        return got


def _json_line(got: bytes) -> bytes | None:
    whole = got[: got.rfind(b"\n") + 1]
    return next((x for x in whole.splitlines() if x.startswith(b"{")), None)


def api_over_tls(port: int, ca: Path, request: dict[str, Any]) -> dict[str, Any]:
    got = tls_lines(port, ca, [json.dumps(request).encode() + b"\n"], done=_json_line)
    line = _json_line(got)
    assert line is not None, got
    return dict(json.loads(line))


def tls_node(server: ServerProcess, tmp_path: Path, name: str, *flags: str) -> NodeProcess:
    """A node (not started) of this farm over `tls://`, with these TLS flags."""
    master = f"tls://{server.master}"
    return NodeProcess(master, name, tmp_path / name, token=TOKEN, extra=list(flags))


def https(url: str, ctx: ssl.SSLContext, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10, context=ctx) as resp:
        return json.loads(resp.read())


def test_both_ports_speak_tls_and_a_plain_client_is_told(
    server: ServerProcess, certs: Certs
) -> None:
    assert server.http_url.startswith("https://127.0.0.1:")
    status = {"item": "server", "action": "status", "token": TOKEN}
    assert api_over_tls(server.tcp_port, certs.ca, status)["ok"]
    # The console, as `openssl s_client` would reach it.
    console = tls_lines(server.tcp_port, certs.ca, [b"help\n"], lambda got: b"quit" in got)
    assert b"brender" in console and b"quit" in console
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    assert https(f"{server.http_url}/api", ctx, status)["ok"]

    # Plain TCP to the TLS port: one plain line saying why, then the close; no harm done.
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=10) as plain:
            plain.sendall(json.dumps(status).encode() + b"\n")
            answer = plain.makefile("rb").readline()
        error = json.loads(answer)
        assert error["ok"] is False and "this port speaks TLS" in error["error"]["message"]
    # Plain HTTP to the HTTPS port: closed, and the server goes on; a burst of them is one
    # log line, not one each.
    for _ in range(20):
        with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
            urllib.request.urlopen(server.http_url.replace("https", "http") + "/api", timeout=10)
    # Handshakes the client gives up on (it does not trust the certificate), on both ports.
    distrust = ssl.create_default_context(cafile=str(certs.other_ca))
    for port in (server.tcp_port, int(server.http_url.rsplit(":", 1)[1])) * 10:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with pytest.raises(ssl.SSLCertVerificationError):
            distrust.wrap_socket(raw, server_hostname="127.0.0.1")
        raw.close()
    assert https(f"{server.http_url}/api", ctx, status)["ok"]
    assert api_over_tls(server.tcp_port, certs.ca, status)["ok"]
    assert server.log().count("SSL Error on") <= 1
    assert server.log().count("TLS connection from 127.0.0.1 failed") <= 1
    # A peer that connects and says nothing is closed after the handshake timeout; meanwhile
    # the server answers others.
    silent = socket.create_connection(("127.0.0.1", server.tcp_port), timeout=10)
    assert api_over_tls(server.tcp_port, certs.ca, status)["ok"]
    silent.close()
    assert server.proc is not None and server.proc.poll() is None
    assert "Traceback" not in server.log()


def test_a_wrong_certificate_is_refused_in_one_clear_line(
    server: ServerProcess, certs: Certs
) -> None:
    farm = ["--farm", server.http_url, "--token", TOKEN]
    wrong_ca = brender("download", "1", "/nonexistent", *farm, "--tls-ca", str(certs.other_ca))
    assert wrong_ca.returncode == 1
    assert wrong_ca.stderr.startswith("brender: certificate for 127.0.0.1 not trusted: ")
    assert "Traceback" not in wrong_ca.stderr and len(wrong_ca.stderr.splitlines()) == 1
    pin = "AB:" * 31 + "AB"
    wrong_pin = brender("download", "1", "/nonexistent", *farm, "--tls-fingerprint", pin)
    assert wrong_pin.returncode == 1
    assert "certificate for 127.0.0.1 not trusted: its SHA-256 fingerprint is " in wrong_pin.stderr
    assert certs.fingerprint in wrong_pin.stderr and "not the pinned AB:AB" in wrong_pin.stderr
    # No CA and no pin: the system's CAs do not know this farm.
    system = brender("download", "1", "/nonexistent", *farm)
    assert "certificate for 127.0.0.1 not trusted" in system.stderr, system.stderr
    # A CA file for a plain http:// farm is a mistake, said so.
    plain = brender("download", "1", "/x", "--farm", "http://127.0.0.1:1", "--tls-ca", "x")
    assert "need a TLS address" in plain.stderr
    # The right pin works (the CA is not needed then).
    right = brender("download", "99", "/nonexistent", *farm, "--tls-fingerprint", certs.fingerprint)
    assert "the farm has no job 99" in right.stderr, right.stderr


def test_a_node_with_the_wrong_pin_says_so_once_and_keeps_trying(
    server: ServerProcess, certs: Certs, tmp_path: Path
) -> None:
    pin = "00" * 32
    node = tls_node(server, tmp_path, "wrong-pin", "--tls-fingerprint", pin, "--max-backoff", "0.5")
    plain = NodeProcess(server.master, "plain", tmp_path / "plain", token=TOKEN)
    other = tls_node(server, tmp_path, "other-ca", "--tls-ca", str(certs.other_ca))
    try:
        node.start()
        plain.start()
        other.start()
        wait_for(lambda: "not trusted" in node.log(), 60, what="the node's certificate error")
        wait_for(lambda: "speaks TLS" in plain.log(), 60, what="the plain node told why")
        wait_for(lambda: "not trusted" in other.log(), 60, what="the other CA refused")
        assert (
            "(certificate for 127.0.0.1 not trusted: unable to get local issuer certificate"
            " (check --tls-ca or --tls-fingerprint)); retrying" in other.log()
        ), other.log()
        time.sleep(3)  # several reconnects (0.5 s apart at most): still one line
        lines = [x for x in node.log().splitlines() if "not trusted" in x and " DEBUG " not in x]
        assert len(lines) == 1, lines
        told = [x for x in plain.log().splitlines() if "speaks TLS" in x and " DEBUG " not in x]
        assert len(told) == 1, told
        assert "certificate for 127.0.0.1 not trusted: its SHA-256 fingerprint is " in lines[0]
        assert node.proc is not None and node.proc.poll() is None  # it keeps trying
        assert "Traceback" not in node.log() + plain.log() + other.log()
    finally:
        stop_all([node, plain, other])


@pytest.mark.blender
def test_a_node_over_tls_renders_and_the_cli_submits_and_downloads(
    server: ServerProcess, certs: Certs, tmp_path: Path, blender: str
) -> None:
    scene = make_scene(tmp_path / "artist" / "tls.blend", 1, 2, samples=2, resolution=32)
    node = tls_node(server, tmp_path, "tls-node", "--tls-ca", str(certs.ca))
    farm = ["--farm", server.http_url, "--token", TOKEN, "--tls-ca", str(certs.ca)]
    try:
        node.start()
        submitted = brender("submit", str(scene), "--upload", *farm, "--frames", "1-2")
        assert submitted.returncode == 0, submitted.stderr
        job = json.loads(submitted.stdout.strip().splitlines()[-1])
        out = tmp_path / "frames"
        done = brender("download", str(job["id"]), str(out), *farm, "--wait", "--timeout", "150")
        assert done.returncode == 0, done.stderr + node.log()[-3000:]
        assert sorted(p.name for p in out.iterdir()) == ["0001.png", "0002.png"]
        assert f"serving the master at tls://{server.master}" in node.log()
    finally:
        node.stop()


@pytest.mark.blender
def test_the_local_node_connects_over_tls(certs: Certs, tmp_path: Path, blender: str) -> None:
    # The server pins its own certificate for its local node: this one names 127.0.0.1, but
    # the pin would hold for one that did not.
    status = {"item": "server", "action": "status", "token": TOKEN}
    with tls_farm(tmp_path / "farm", certs, TOKEN, ["--local-node", "--blender", blender]) as farm:
        wait_for(
            lambda: api_over_tls(farm.tcp_port, certs.ca, status)["data"]["clients"]["online"],
            60,
            what="the local node online over TLS",
        )
        assert f"-> tls://{farm.master}" in farm.log()


def test_fingerprints_and_settings() -> None:
    digits = "ab" * 32
    assert tls.normalise_fingerprint(":".join(["AB"] * 32)) == digits
    assert tls.normalise_fingerprint(f"sha256:{digits}") == digits
    assert tls.normalise_fingerprint(f"sha256 Fingerprint={digits.upper()}") == digits
    with pytest.raises(tls.TLSSettingsError, match="not a SHA-256 fingerprint"):
        tls.normalise_fingerprint("abc")
    with pytest.raises(tls.TLSSettingsError, match="not both"):
        tls.find_client_tls(True, "ca.pem", digits, {})
    assert tls.find_client_tls(False, None, None, {"BRENDER_TLS_CA": "x"}) is None
    env = {"BRENDER_TLS_FINGERPRINT": digits}
    assert tls.find_client_tls(True, None, None, env) == tls.ClientTLS("", digits)


@pytest.mark.parametrize(
    ("flags", "code", "words"),
    [
        (["--tls-cert", "/nonexistent.pem"], 1, "cannot use --tls-cert /nonexistent.pem"),
        (["--tls-key", "/x.key"], 2, "--tls-key needs --tls-cert"),
    ],
)
def test_a_bad_certificate_stops_the_server_with_its_name(
    tmp_path: Path, flags: list[str], code: int, words: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "brender.server.main", *flags, "--tcp-port", "0",
         "--http-port", "0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
