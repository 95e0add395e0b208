"""A 2 GiB file travels without any process holding it: `brender submit --upload` packs a
scene that uses it, the server stores it, a node fetches it and renders the job, and the peak
resident memory of each of the three processes stays under 200 MB.

The file is sparse on the artist's side (mostly zero, made with `truncate`); the pack, the
server's store and the node's cache each hold a real copy, so the test needs about 6 GiB of
free disk under the temporary folder. Peaks are exact: the kernel's `VmHWM` for the server
and the node (read before they stop), and `wait4`'s `ru_maxrss` for the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from blender_scene import BLENDER, _run_blender, scene_lines
from farmctl import NodeProcess, ServerProcess, TcpApi, job_status, wait_for
from test_e2e_upload import FETCHED, UPLOADED, last_json

pytestmark = pytest.mark.blender

TOKEN = "big-s3cret"
BIG = 2 * 1024**3
LIMIT = 200 * 1024**2
DISK_NEEDED = 3 * BIG + 512 * 1024**2


def make_scene_using(path: Path, big: Path) -> Path:
    """The tiny test scene with an image datablock (kept by a fake user, used by nothing
    that renders) whose file is `big`: BAT packs it as a dependency; Blender never reads
    it, as images load only when something needs their pixels."""
    lines = scene_lines(path, 1, 1, 4, 32, True, False)[:-1]
    lines += [
        "img = bpy.data.images.new('big', 4, 4)",
        "img.source = 'FILE'",
        f"img.filepath = {str(big)!r}",
        "img.use_fake_user = True",
        f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r}, relative_remap=True)",
    ]
    _run_blender(BLENDER, lines, path)
    return path


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Starts the CLI and reaps it with its resource usage. Linux counts a child's memory before
its exec (a copy of its parent's) in its peak, so the CLI is started from this small process,
not from pytest, which has grown to hundreds of MiB by the end of a full run."""


def submit_measured(log_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """`brender submit …` as a process of its own; answers what it did and its peak RSS (an
    upper bound: it includes the launcher's few MiB from before the CLI's exec)."""
    out, err, peak = log_dir / "submit.out", log_dir / "submit.err", log_dir / "submit.peak"
    cli = [sys.executable, "-m", "brender.cli", "submit", *args]
    with open(out, "w") as stdout, open(err, "w") as stderr:
        code = subprocess.call([sys.executable, "-c", LAUNCHER, str(peak), *cli],
                               stdout=stdout, stderr=stderr)  # fmt: skip
    done = subprocess.CompletedProcess(cli, code, out.read_text(), err.read_text())
    return done, int(peak.read_text()) * 1024


def test_two_gib_file_round_trip(blender: str, tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    if free < DISK_NEEDED:
        pytest.skip(f"needs {DISK_NEEDED >> 20} MiB free under {tmp_path}, has {free >> 20}")
    artist = tmp_path / "artist"
    big = artist / "assets" / "huge.exr"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:  # sparse: a few real bytes at each end, holes between
        f.write(b"brender big file\n")
        f.truncate(BIG)
        f.seek(BIG - 16)
        f.write(b"end of big file\n")
    scene = make_scene_using(artist / "shot.blend", big)
    server = ServerProcess(tmp_path / "server", token=TOKEN).start()
    node = NodeProcess(server.master, "big-1", tmp_path / "node", token=TOKEN).start()
    farm = ["--farm", server.http_url, "--token", TOKEN]
    try:
        submitted, cli_peak = submit_measured(
            tmp_path, str(scene), "--upload", *farm, "--frames", "1-1"
        )
        job = last_json(submitted)
        up = UPLOADED.search(submitted.stderr)
        assert up is not None and int(up[1]) == 2 and int(up[2]) > BIG, submitted.stderr
        with TcpApi(server.tcp_port, TOKEN) as api:
            wait_for(lambda: job_status(api, job["id"])["status"] == "completed", 600, 0.5,
                     what="the job rendered")  # fmt: skip
        fetched = [m for m in FETCHED.finditer(node.log()) if int(m[1]) == job["id"]]
        assert sum(int(m[3]) for m in fetched) > BIG, node.log()[-3000:]
        assert server.proc is not None and node.proc is not None
        server_peak, node_peak = peak_rss(server.proc.pid), peak_rss(node.proc.pid)
        print(
            f"peak RSS: cli {cli_peak >> 20} MiB, server {server_peak >> 20} MiB, "
            f"node {node_peak >> 20} MiB",
            file=sys.stderr,
        )
        assert cli_peak < LIMIT, f"the CLI peaked at {cli_peak >> 20} MiB"
        assert server_peak < LIMIT, f"the server peaked at {server_peak >> 20} MiB"
        assert node_peak < LIMIT, f"the node peaked at {node_peak >> 20} MiB"
    finally:
        node.stop()
        server.stop()
