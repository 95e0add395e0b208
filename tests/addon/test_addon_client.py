"""The add-on's HTTP client against a live brender-server, and its errors in an artist's words."""

from __future__ import annotations

import http.server
import socket
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import addon_harness  # noqa: F401  (puts the repository root on sys.path)
import pytest
from farmctl import ServerProcess

from addon import client, jobs, payload
from addon.errors import (
    FarmAnswerError,
    FarmRefused,
    FarmUnauthorized,
    FarmUnreachable,
    SettingsError,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("farm")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("tokenfarm"), token="s3cret").start()
    yield srv
    srv.stop()


def address(server: ServerProcess) -> str:
    return server.http_url.removeprefix("http://")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings(blend: str, **extra: Any) -> payload.SubmitSettings:
    values: dict[str, Any] = {"blend_file": blend, "project": "spring", "sequence": "sq01",
                              "shot": "sh010", "frame_start": 1, "frame_end": 12, **extra}  # fmt: skip
    return payload.SubmitSettings(**values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5:8080", ("10.0.0.5", 8080)),
        ("  render-master:9000 ", ("render-master", 9000)),
        ("farm", ("farm", 8080)),
        ("http://127.0.0.1:8081/", ("127.0.0.1", 8081)),
        ("http://127.0.0.1:8081/api", ("127.0.0.1", 8081)),
        ("[::1]:8080", ("::1", 8080)),
        ("https://farm:8443", ("farm", 8443)),
    ],
)
def test_addresses(text: str, expected: tuple[str, int]) -> None:
    assert client.parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "tls://farm:443", "farm:notaport", "farm:99999",
                                  "ftp://farm", "farm:8080/dashboard"])  # fmt: skip
def test_bad_addresses_say_how_to_write_one(text: str) -> None:
    with pytest.raises(SettingsError, match=r"address|host:port"):
        client.FarmClient(text)


def test_submit_read_and_verbs_on_a_live_farm(server: ServerProcess, tmp_path: Path) -> None:
    farm = client.FarmClient(address(server))
    blend = str(tmp_path / "sh010.blend")
    job = farm.submit(payload.submit_request(settings(blend, chunk_size=4, priority=70,
                                                      paused=True)))  # fmt: skip
    assert job["status"] == "paused" and job["frames"]["total"] == 12 and job["priority"] == 70
    other = farm.submit(payload.submit_request(settings(str(tmp_path / "other.blend"), shot="x")))

    snap = jobs.parse_snapshot(farm.batch(jobs.refresh_requests(blend)), blend)
    assert [j.id for j in snap.jobs][:2] == [job["id"], other["id"]]  # this file's first
    mine = snap.jobs[0]
    assert (mine.status, mine.done, mine.total, mine.progress) == ("paused", 0, 12, 0.0)
    assert mine.can_resume and mine.can_cancel and not mine.can_pause
    assert "spring" in snap.names.projects and "sq01" in snap.names.sequences_of("spring")
    assert {"sh010", "x"} <= set(snap.names.shots_of("spring", "sq01"))

    [resumed] = farm.job_verb(job["id"], "resume")
    assert resumed["status"] == "queued"
    [canceled] = farm.job_verb(job["id"], "cancel")
    assert canceled["status"] == "canceled"
    status = farm.status()
    assert status["version"] and "clients" in status


def test_a_checked_submit_with_no_node_online_is_sent_with_a_warning(
    server: ServerProcess, tmp_path: Path
) -> None:
    farm = client.FarmClient(address(server))
    request = payload.submit_request(settings(str(tmp_path / "c.blend"), file_version="4.5",
                                              shot="checked"))  # fmt: skip
    check = farm.check(request)
    assert (check["file_version"], check["nodes"]) == ("4.5", {"enabled": 0, "able": 0,
                                                               "blenders": []})  # fmt: skip
    done = farm.submit_checked(request)
    assert done.job is not None and done.job["file_version"] == "4.5"
    assert done.warning == "No node is online: the job will wait until one joins."
    with pytest.raises(FarmRefused, match="'file_version'"):
        farm.check(payload.submit_request(settings("/a.blend", file_version="four")))


@pytest.mark.parametrize(
    ("nodes", "confirm"),
    [({"enabled": 2, "able": 0}, True), ({"enabled": 2, "able": 1}, False),
     ({"enabled": 0, "able": 0}, False), (None, False)],
)  # fmt: skip
def test_the_artist_confirms_only_when_online_nodes_cannot_render_it(
    nodes: dict[str, int] | None, confirm: bool
) -> None:
    assert client.must_confirm({"nodes": nodes}) is confirm


def test_the_farms_own_validation_message_comes_through(server: ServerProcess) -> None:
    farm = client.FarmClient(address(server))
    request = payload.submit_request(settings("/films/a.blend"))
    request["values"]["priority"] = 500  # past the add-on's own checks, to hear the farm's
    with pytest.raises(FarmRefused) as info:
        farm.submit(request)
    assert info.value.code == "invalid_value"
    assert str(info.value) == "The farm refused the job: 'priority' must be at most 100 (got 500)"
    with pytest.raises(FarmRefused, match=r"^The farm refused to pause job 999999: ") as missing:
        farm.job_verb(999_999, "pause")
    assert missing.value.code == "not_found"


def test_a_stopped_farm_is_named(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(FarmUnreachable) as info:
        client.FarmClient(f"127.0.0.1:{port}").status()
    assert (
        str(info.value) == f"Cannot reach the farm at 127.0.0.1:{port} — is brender-server running?"
    )


def test_a_silent_farm_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(FarmUnreachable, match="did not answer in time"):
            client.FarmClient(f"127.0.0.1:{port}", timeout=0.3).status()


def test_unknown_hosts_are_named() -> None:
    exc = urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
    assert "Cannot find the farm at box:8080" in str(client.unreachable("box:8080", exc))


def test_tokens(token_server: ServerProcess) -> None:
    where = address(token_server)
    with pytest.raises(FarmUnauthorized, match=r"^The farm asks for a token"):
        client.FarmClient(where).status()
    with pytest.raises(FarmUnauthorized, match=r"^The farm refused the token"):
        client.FarmClient(where, token="wrong").status()
    assert client.FarmClient(where, token=" s3cret ").status()["version"]


class NotAFarm(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        status = 401 if self.path == "/locked/api" else 404
        body = b"<html>Not here</html>"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def web_server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotAFarm)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_something_else_at_the_address(web_server: str) -> None:
    with pytest.raises(FarmAnswerError, match="it is not a brender farm — check the address"):
        client.FarmClient(web_server).status()


def test_error_objects_become_sentences() -> None:
    conflict = {"code": "conflict", "message": "job 3 is completed"}
    assert str(client.refused(conflict, "a:1", False, "to resume job 3")) == (
        "The farm refused to resume job 3: job 3 is completed"
    )
    internal = client.refused({"code": "internal", "message": "boom"}, "a:1", False)
    assert str(internal) == "The farm hit an internal error (see its log): boom"
    assert isinstance(client.refused("nonsense", "a:1", False), FarmAnswerError)
    with pytest.raises(FarmAnswerError, match="not a brender farm"):
        client.data_of([1, 2], "a:1", False)
