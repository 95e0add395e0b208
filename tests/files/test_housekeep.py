"""Housekeeping of the file store on a real server: blobs no job references go after
`--keep-files` days (from the upload or the last job that used them), deleting a job lets go
of its inputs, `force` removes its frames and nothing outside its folder, and `server status`
counts the store."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest
from farmctl import ServerProcess, wait_for
from test_blob_http import TOKEN, call
from test_frame_put import BLEND, submit_uploaded

from brender.server.housekeep import remove_frames

DAY = 86400


def files(server: ServerProcess) -> dict[str, Any]:
    answer = server.http({"item": "server", "action": "status"})
    return dict(answer["data"]["files"])


def age_store(server: ServerProcess, days: float) -> None:
    """Make every blob and partial upload look last used `days` ago."""
    then = time.time() - days * DAY
    for path in (server.data_dir / "files").rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def restart(server: ServerProcess, sweeps: int) -> None:
    """Stop and start: the sweep runs at start (wait for the `sweeps`-th one's log line)."""
    server.stop()
    server.start()
    wait_for(lambda: server.log().count("file store swept") >= sweeps, 30, what="the sweep")


def test_retention_release_and_force(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", token=TOKEN, extra=["--keep-files", "1"]).start()
    try:
        blend = hashlib.sha256(BLEND).hexdigest()
        first, second = submit_uploaded(server, "x"), submit_uploaded(server, "y")
        orphan = os.urandom(1000)
        orphan_sha = hashlib.sha256(orphan).hexdigest()
        assert call(server, "PUT", f"/blobs/{orphan_sha}", orphan)[0] == 201
        piece = {"Content-Range": "bytes 0-49/100"}  # half of an upload, kept as partial
        assert call(server, "PUT", f"/blobs/{'a' * 64}", b"x" * 50, piece)[0] == 202
        stored = files(server)
        assert stored["count"] == 3 and stored["quota"] == 500 * 1024**3, stored
        assert stored["bytes"] > len(BLEND) + 1000, stored  # and the manifest

        # Old, but used by the jobs: only the orphan and the stale partial go.
        age_store(server, 2)
        restart(server, 2)
        assert call(server, "GET", f"/blobs/{orphan_sha}")[0] == 404
        assert call(server, "GET", f"/blobs/{'a' * 64}/partial")[1]["data"]["size"] == 0
        assert call(server, "GET", f"/blobs/{blend}")[0] == 200
        assert files(server)["count"] == 2

        # Deleting the first job releases nothing the second still uses.
        assert server.http({"item": "job", "action": "delete", "filters": {"id": first}})["ok"]
        age_store(server, 2)
        restart(server, 3)
        assert call(server, "GET", f"/blobs/{blend}")[0] == 200

        # Force-deleting the second removes its frames, and only its own folder.
        job = server.http({"item": "job", "action": "read", "filters": {"id": second}})
        folder = Path(job["data"][0]["output"]).parent
        assert folder.name == f"job-{second}"
        folder.mkdir(parents=True)
        (folder / "0001.png").write_bytes(b"png")
        beside = folder.parent / "keep.png"
        beside.write_bytes(b"not the job's")
        answer = server.http({"item": "job", "action": "delete", "filters": {"id": second},
                              "values": {"force": True}})  # fmt: skip
        assert answer["ok"], answer
        assert not folder.exists() and beside.read_bytes() == b"not the job's"
        # Released now: kept for --keep-files days from the deletion, then gone.
        restart(server, 4)
        assert call(server, "GET", f"/blobs/{blend}")[0] == 200
        age_store(server, 2)
        restart(server, 5)
        assert call(server, "GET", f"/blobs/{blend}")[0] == 404
        assert files(server) == {"count": 0, "bytes": 0, "quota": 500 * 1024**3}
    finally:
        server.stop()


def test_sweep_runs_periodically(tmp_path: Path) -> None:
    # 0.00005 days is 4.3 s, swept about every second.
    server = ServerProcess(tmp_path / "server", token=TOKEN, extra=["--keep-files", "0.00005"])
    server.start()
    try:
        blob = os.urandom(100)
        sha = hashlib.sha256(blob).hexdigest()
        assert call(server, "PUT", f"/blobs/{sha}", blob)[0] == 201
        wait_for(lambda: call(server, "GET", f"/blobs/{sha}")[0] == 404, 30, 0.2,
                 what="the unused blob swept")  # fmt: skip
        assert files(server)["count"] == 0
    finally:
        server.stop()


def test_remove_frames_stays_in_the_jobs_folder(tmp_path: Path) -> None:
    root = tmp_path / "renders"
    outside = tmp_path / "elsewhere" / "job-7"
    outside.mkdir(parents=True)
    (outside / "0001.png").write_bytes(b"x")
    assert remove_frames(root, 7, str(outside / "####")) is None  # outside the root
    link = root / "p" / "s" / "x" / "job-7"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    assert remove_frames(root, 7, str(link / "####")) is None  # a link out of it
    wrong = root / "p" / "s" / "x" / "job-8"
    wrong.mkdir()
    assert remove_frames(root, 7, str(wrong / "####")) is None  # another job's folder
    assert remove_frames(root, 7, str(root / "####")) is None  # the root itself
    assert (outside / "0001.png").exists() and wrong.exists()
    link.unlink()
    own = root / "p" / "s" / "x" / "job-7"
    own.mkdir()
    (own / "0001.png").write_bytes(b"x")
    assert remove_frames(root, 7, str(own / "####")) == own.resolve()
    assert not own.exists() and wrong.exists()


@pytest.mark.parametrize("days", ["-1", "soon"])
def test_keep_files_checked(days: str) -> None:
    from brender.server.config import ConfigError, load

    with pytest.raises((ConfigError, SystemExit)):
        load(["--keep-files", days])
