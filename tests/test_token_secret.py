"""The token stays secret (issue 16, item 6): out of `ps`, out of the access log."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from farmctl import NodeProcess, ServerProcess, http_api, wait_for

SECRET = "tok-3f9c1d-never-in-ps"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


def test_server_and_node_read_the_token_from_a_file(tmp_path: Path, token_file: Path) -> None:
    server = ServerProcess(tmp_path / "farm", extra=["--token-file", str(token_file)]).start()
    node = NodeProcess(
        server.master, "n1", tmp_path / "n1", extra=["--token-file", str(token_file)]
    )
    try:
        node.start()
        read = {"item": "client", "action": "read"}
        wait_for(lambda: http_api(server.http_url, read, SECRET)["data"], 60, what="n1 online")
        assert http_api(server.http_url, read)["error"]["code"] == "unauthorized"
        for proc in (server.proc, node.proc):
            assert proc is not None
            assert SECRET not in " ".join(psutil.Process(proc.pid).cmdline())
        # A token in a URL (as a thumbnail link had it) stays out of the log.
        url = f"{server.http_url}/thumb/99999?token={SECRET}"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url, timeout=10)
        wait_for(lambda: "/thumb/99999" in server.log(), 10, what="the access log line")
        assert SECRET not in server.log() and SECRET not in node.log()
    finally:
        node.stop()
        server.stop()


@pytest.mark.parametrize(("content", "words"), [(None, "cannot read the token file"),
                                                ("\n  \n", "is empty")])  # fmt: skip
def test_a_bad_token_file_is_named(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "brender.server.main", "--token-file", str(path), "--tcp-port",
         "0", "--http-port", "0", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and words in done.stderr, done.stderr
