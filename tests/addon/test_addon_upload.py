"""Submit with files, without Blender: the request's values, the worker's progress, and blob
uploads (only what the farm lacks, resumed when cut, refused when wrong) to a live server."""

from __future__ import annotations

import hashlib
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import addon_harness  # noqa: F401  (puts the repository root on sys.path)
import pytest
from farmctl import ServerProcess, wait_for

from addon import client, comms, download, payload, transfer, upload
from addon.errors import FarmError, FarmRefused, SettingsError
from brender import manifest as brender_manifest

TOKEN = "up-s3cret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("farm"), token=TOKEN).start()
    yield srv
    srv.stop()


def files_of(server: ServerProcess) -> transfer.Files:
    return transfer.Files(client.FarmClient(server.http_url, TOKEN))


@pytest.mark.parametrize(
    ("output", "pattern"),
    [
        ("/renders/sh010/####", "####"),
        ("//renders/sh010_####.png", "sh010_####.png"),
        ("/renders/sh010_", "sh010_####"),
        ("C:\\renders\\sh010_##", "sh010_##"),
        ("/renders/", ""),
        ("", ""),
        ("/renders/-x", ""),
    ],
)
def test_an_uploaded_jobs_output_is_its_file_name_pattern(output: str, pattern: str) -> None:
    assert payload.file_pattern(output) == pattern


def test_upload_values_replace_the_path_with_the_manifest() -> None:
    settings = payload.SubmitSettings("/p/sh010.blend", "p", "sq", "sh010", 1, 4,
                                      output="//renders/sh010_####")  # fmt: skip
    values = payload.submit_values(settings)
    wire = {"main": "sh010.blend", "files": {}}
    up = payload.upload_values(values, wire)
    assert "blend_file" not in up and up["upload"] is wire and up["output"] == "sh010_####"
    assert {k: v for k, v in up.items() if k not in ("upload", "output")} == {
        k: v for k, v in values.items() if k not in ("blend_file", "output")
    }


def test_the_output_folder_of_the_scene() -> None:
    assert payload.output_folder("//renders/####", "/p/sh010.blend") == "/p/renders"
    assert payload.output_folder("/r/sh010/", "/p/a.blend") == "/r/sh010/"
    assert payload.output_folder("/r/sh010_", "") == "/r"
    with pytest.raises(SettingsError, match="Save the file first"):
        payload.output_folder("//renders/", "")
    with pytest.raises(SettingsError, match="output path"):
        payload.output_folder("", "/p/a.blend")


def test_missing_files_are_named_for_the_artist() -> None:
    assert upload.missing_text(["/tex/a.png"]) == (
        "1 file this .blend uses is missing: /tex/a.png; the farm would render without them."
    )
    many = upload.missing_text([f"/t/{n}.png" for n in range(7)])
    assert many.startswith("7 files this .blend uses are missing: /t/0.png, ") and "2 more" in many


def test_frame_names_stay_in_the_folder() -> None:
    assert download.frame_name("/srv/renders/p/job-3/0001.png") == "0001.png"
    assert download.frame_name("C:\\renders\\0002.exr") == "0002.exr"
    for bad in ("", "/srv/renders/..", "/srv/.hidden"):
        with pytest.raises(FarmError):
            download.frame_name(bad)


def test_a_long_task_sends_progress_then_its_reply_and_stops_when_told() -> None:
    worker = comms.Worker(name="brender-test")
    try:
        ticket = worker.post("upload", comms.WithProgress(lambda note: [note(1), note(2), 3][-1]))
        replies: list[comms.Reply] = []
        wait_for(lambda: replies.extend(worker.drain()) or len(replies) >= 3, 10, what="replies")
        assert [(r.ticket, r.kind, r.data) for r in replies] == [
            (ticket, comms.PROGRESS, 1), (ticket, comms.PROGRESS, 2), (ticket, "upload", 3),
        ]  # fmt: skip
        # Disabling the add-on mid-task: the next progress call ends the task.
        inside, ended = threading.Event(), threading.Event()

        def long(note: comms.Notify) -> None:
            inside.set()
            try:
                while True:
                    note("more")
            except comms.Stopped:
                ended.set()
                raise

        worker.post("upload", comms.WithProgress(long))
        assert inside.wait(10)
    finally:
        assert worker.stop(timeout=5.0)
    assert ended.wait(5)


def test_only_what_the_farm_lacks_is_uploaded(server: ServerProcess, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "sh010.blend").write_bytes(b"BLENDER-v304" + b"main" * 1000)
    (tree / "lib" / "props.blend").write_bytes(b"BLENDER-v304" + b"lib" * 300_000)  # > 1 block
    (tree / "lib" / "copy.blend").write_bytes((tree / "lib" / "props.blend").read_bytes())
    made = brender_manifest.build(tree, tree / "sh010.blend")
    files = files_of(server)
    notes: list[upload.Progress] = []
    count, sent, had = upload.send_missing(files, tree, made, notes.append)
    sizes = {e.sha256: e.size for e in made.files.values()}
    assert (count, sent, had) == (2, sum(sizes.values()), 0)  # the copy is one blob
    assert notes[-1].fraction == 1.0 and notes[-1].text.startswith("Uploading 2/2 files")
    assert files.missing(made.to_wire()) == []
    assert upload.send_missing(files, tree, made, notes.append) == (0, 0, 2)


def test_a_cut_upload_resumes_and_a_wrong_one_is_refused(server: ServerProcess,
                                                         tmp_path: Path) -> None:  # fmt: skip
    data = bytes(range(256)) * 12_000  # 3 MB
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    first = 1_000_000
    # A first try that stopped after `first` bytes: the farm keeps that piece.
    piece = urllib.request.Request(
        f"{server.http_url}/blobs/{sha}", data=data[:first], method="PUT",
        headers={"Authorization": f"Bearer {TOKEN}",
                 "Content-Range": f"bytes 0-{first - 1}/{len(data)}"},
    )  # fmt: skip
    with urllib.request.urlopen(piece, timeout=10) as resp:
        assert resp.status == 202
    files = files_of(server)
    assert files.held(sha) == first
    counted: list[int] = []
    assert files.put_blob(sha, path, counted.append) == len(data) - first
    assert (
        sum(counted) == len(data) - first
        and files.missing(
            {"main": "a.blend", "files": {"a.blend": {"sha256": sha, "size": len(data)}}}
        )
        == []
    )
    wrong = "0" * 64
    with pytest.raises(FarmRefused, match="hash"):
        files.put_blob(wrong, path, lambda n: None)
    with pytest.raises(FarmError, match="refused the token"):
        transfer.Files(client.FarmClient(server.http_url, "nope")).missing(
            {"main": "a.blend", "files": {"a.blend": {"sha256": sha, "size": 1}}}
        )


def test_a_file_over_the_cap_is_refused_before_its_body_goes(tmp_path: Path) -> None:
    """The add-on uploads with the CLI's client (brender.transfer): a big body asks
    `Expect: 100-continue`, so the farm's refusal comes, in its own words, before any of it."""
    srv = ServerProcess(tmp_path / "farm", token=TOKEN, extra=["--max-file-size", "3M"]).start()
    try:
        big = tmp_path / "big.bin"
        with open(big, "wb") as f:
            f.truncate(64 * 1024 * 1024)  # sparse: costs no disk
        sent: list[int] = []
        with pytest.raises(FarmRefused, match="--max-file-size"):
            files_of(srv).put_blob("d" * 64, big, sent.append)
        assert sum(sent) == 0
    finally:
        srv.stop()
