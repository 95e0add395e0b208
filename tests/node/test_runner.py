"""The Blender runner: real Blender for the real cases, tiny scripts for hangs and odd output."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import psutil
import pytest
from blender_scene import make_scene
from node_helpers import run, wait_for_condition, wait_gone

from brender.node.blender_log import Event, FrameSaved, FrameStarted, LineSplitter
from brender.node.chunk import ChunkResult, RenderOrder
from brender.node.runner import BlenderRunner, build_command


@pytest.fixture(scope="module")
def slow_scene(blender: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.4 s per frame on any machine, so a test can act in the middle of a chunk."""
    path = tmp_path_factory.mktemp("slow") / "slow.blend"
    return make_scene(path, 1, 100, resolution=96, seconds=0.4, blender=blender)


def order(scene: Path, out: Path, frames: list[int], chunk_id: int = 1) -> RenderOrder:
    return RenderOrder(chunk_id, str(scene), tuple(frames), str(out / "####"), "PNG")


def test_build_command_auto_exec_and_a_command_prefix() -> None:
    order = RenderOrder(7, "/p/a.blend", (4,), "/r/####", "PNG")
    assert build_command("blender", order, autoexec=True)[:4] == [
        "blender",
        "-b",
        "-y",
        "/p/a.blend",
    ]
    # The bpy engine: a child Python taking Blender's arguments, without -b.
    cmd = build_command(["python3", "-m", "x"], order, background=False)
    assert cmd[:5] == ["python3", "-m", "x", "--disable-autoexec", "/p/a.blend"]


def test_build_command_contiguous_and_not() -> None:
    contiguous = RenderOrder(7, "/p/a.blend", (4, 5, 6), "/r/####", "PNG")
    assert build_command("blender", contiguous) == [
        "blender",
        "-b",
        "--disable-autoexec",
        "/p/a.blend",
        "-o",
        "/r/####",
        "-F",
        "PNG",
        "-x",
        "1",
        "-j",
        "1",
        "-s",
        "4",
        "-e",
        "6",
        "-a",
    ]
    sparse = RenderOrder(7, "/p/a.blend", (4, 6, 9), "/r/####", "OPEN_EXR")
    assert build_command("/usr/bin/blender", sparse, threads=3)[-4:] == [
        "-t",
        "3",
        "-f",
        "4,6,9",
    ]
    single = RenderOrder(7, "/p/a.blend", (12,))
    assert build_command("blender", single) == [
        "blender",
        "-b",
        "--disable-autoexec",
        "/p/a.blend",
        "-x",
        "1",
        "-j",
        "1",
        "-s",
        "12",
        "-e",
        "12",
        "-a",
    ]


def test_line_splitter_cuts_overlong_lines() -> None:
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b"short\nand a ") == ["short"]
    assert splitter.feed(b"very long") == ["and a very [line cut]"]
    assert splitter.feed(b" line that goes on\nnext\r\n") == ["next"]
    assert splitter.feed(b"\xff tail") == []
    assert splitter.finish() == ["\ufffd tail"]


def test_renders_three_frames(blender: str, scene: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    result = run(BlenderRunner(blender).run(order(scene, tmp_path, [1, 2, 3]), events.append))
    assert result.ok, result
    assert result.exit_code == 0
    assert result.frames_done == [1, 2, 3]
    assert result.error is None
    assert not result.canceled
    files = sorted(tmp_path.glob("*.png"))
    assert [f.name for f in files] == ["0001.png", "0002.png", "0003.png"]
    assert all(f.stat().st_size > 0 for f in files)
    assert [e.frame for e in events if isinstance(e, FrameStarted)] == [1, 2, 3]
    saved = [e for e in events if isinstance(e, FrameSaved)]
    assert [(e.frame, e.path) for e in saved] == [
        (n, str(tmp_path / f"{n:04d}.png")) for n in (1, 2, 3)
    ]
    assert all(e.render_time > 0 for e in saved)
    # Each frame is announced before it is saved.
    assert events.index(FrameStarted(2)) > events.index(saved[0])


def test_renders_a_sparse_frame_list(blender: str, scene: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    result = run(
        BlenderRunner(blender, threads=1).run(order(scene, tmp_path, [2, 5, 7]), events.append)
    )
    assert result.ok, result
    assert result.frames_done == [2, 5, 7]
    assert sorted(f.name for f in tmp_path.glob("*.png")) == ["0002.png", "0005.png", "0007.png"]
    assert [e.frame for e in events if isinstance(e, FrameSaved)] == [2, 5, 7]


def test_missing_blend_file_fails_with_blenders_error(blender: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.blend"
    result = run(BlenderRunner(blender).run(order(missing, tmp_path, [1, 2]), lambda e: None))
    assert not result.ok
    assert result.exit_code == 1
    assert result.frames_done == []
    assert result.error is not None
    assert result.error.startswith(f"Error: Cannot read file '{missing}'")
    assert any("Cannot read file" in line for line in result.log_tail)


def test_no_camera_is_reported(blender: str, tmp_path: Path) -> None:
    nocam = make_scene(tmp_path / "nocam.blend", camera=False, blender=blender)
    result = run(BlenderRunner(blender).run(order(nocam, tmp_path, [1]), lambda e: None))
    assert not result.ok
    assert result.error == "Error: Cannot render, no camera"


def test_cancel_kills_the_process_group(blender: str, slow_scene: Path, tmp_path: Path) -> None:
    runner = BlenderRunner(blender)
    events: list[Event] = []

    async def scenario() -> tuple[ChunkResult, list[int]]:
        task = asyncio.create_task(
            runner.run(order(slow_scene, tmp_path, list(range(1, 50))), events.append)
        )
        await wait_for_condition(lambda: bool(events), 30, "Blender's first frame")
        pid = runner.pid
        assert pid is not None
        group = [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
        runner.cancel()
        return await task, group

    result, group = run(scenario())
    assert result.canceled
    assert not result.ok
    assert result.exit_code == -15
    assert runner.pid is None
    wait_gone(group)


def write_script(path: Path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


def test_silent_blender_is_killed_with_its_children(tmp_path: Path) -> None:
    # A stand-in that hangs in a child process: the whole group must go.
    fake = write_script(
        tmp_path / "hang",
        "import subprocess, sys\n"
        "print('Blender 3.4.1', flush=True)\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print('child', child.pid, flush=True)\n"
        "child.wait()\n",
    )
    runner = BlenderRunner(fake, silence_timeout=0.5, kill_grace=1.0)
    # Well before the stand-in's 60 s: only the silence timeout can end it this soon.
    result = run(runner.run(order(tmp_path / "a.blend", tmp_path, [1]), lambda e: None), 30)
    assert not result.ok
    assert result.error == "Blender printed nothing for 0.5 s"
    assert result.exit_code is not None and result.exit_code < 0
    child = int(next(line for line in result.log_tail if line.startswith("child")).split()[1])
    wait_gone([child])


def test_overlong_output_and_missing_frames(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    fake = write_script(
        tmp_path / "odd",
        "import sys\n"
        "print('x' * 3_000_000, flush=True)\n"
        "print('Fra:1 Mem:1M | Time:00:00.00 | Sync', flush=True)\n"
        f"open({str(out / '0001.png')!r}, 'wb').write(b'png')\n"
        f"print(\"Saved: '{out / '0001.png'}'\", flush=True)\n"
        "print('Fra:2 Mem:1M | Time:00:00.00 | Sync', flush=True)\n"
        f"print(\"Saved: '{out / 'empty.png'}'\", flush=True)\n"
        f"open({str(out / 'empty.png')!r}, 'wb').close()\n",
    )
    events: list[Event] = []
    result = run(
        BlenderRunner(fake).run(order(tmp_path / "a.blend", out, [1, 2, 3]), events.append)
    )
    assert [e.frame for e in events if isinstance(e, FrameSaved)] == [1]
    assert result.frames_done == [1]
    assert result.exit_code == 0
    assert not result.ok
    assert result.error is not None and "empty.png" in result.error
    assert all(len(line) <= 2001 for line in result.log_tail)


def test_exit_without_saving_names_the_frames(tmp_path: Path) -> None:
    fake = write_script(tmp_path / "lazy", "print('Blender 3.4.1')\n")
    result = run(
        BlenderRunner(fake).run(order(tmp_path / "a.blend", tmp_path, [5, 6]), lambda e: None)
    )
    assert result.exit_code == 0
    assert result.error == "Blender exited without saving frames 5, 6"
    assert result.log_tail == ["Blender 3.4.1"]


def test_blender_that_cannot_start(tmp_path: Path) -> None:
    runner = BlenderRunner(str(tmp_path / "no-blender"))
    result = run(runner.run(order(tmp_path / "a.blend", tmp_path, [1]), lambda e: None))
    assert not result.ok
    assert result.exit_code is None
    assert (
        result.error
        == f"cannot run Blender at '{tmp_path / 'no-blender'}': No such file or directory"
    )
    assert os.listdir(tmp_path) == []


def test_cancel_escalates_to_sigkill(tmp_path: Path) -> None:
    stubborn = write_script(
        tmp_path / "stubborn",
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('Fra:1 Mem:1M | Time:00:00.00 | Sync', flush=True)\n"
        "time.sleep(60)\n",
    )
    runner = BlenderRunner(stubborn, kill_grace=0.5)
    events: list[Event] = []

    async def scenario() -> tuple[ChunkResult, float]:
        task = asyncio.create_task(
            runner.run(order(tmp_path / "a.blend", tmp_path, [1]), events.append)
        )
        await wait_for_condition(lambda: bool(events), 10, "the first frame")
        started = time.monotonic()
        runner.cancel()
        return await task, time.monotonic() - started

    result, took = run(scenario(), 30)  # the stand-in would sleep 60 s
    assert result.canceled and result.exit_code == -9
    # SIGKILL only after the grace: a lower bound that no scheduling delay can break.
    assert took > 0.4  # (kill_grace=0.5, less a margin for timer resolution)


def test_cancel_while_starting(tmp_path: Path) -> None:
    fake = write_script(tmp_path / "slowpoke", "import time\ntime.sleep(60)\n")
    runner = BlenderRunner(fake)

    async def scenario() -> ChunkResult:
        task = asyncio.create_task(
            runner.run(order(tmp_path / "a.blend", tmp_path, [1]), lambda e: None)
        )
        runner.cancel()  # before the task even ran
        return await task

    result = run(scenario(), 10)
    assert result.canceled and not result.ok


def test_the_orders_hang_timeout_wins(tmp_path: Path) -> None:
    fake = write_script(
        tmp_path / "hang", "import time\nprint('Blender 3.4.1', flush=True)\ntime.sleep(60)\n"
    )
    runner = BlenderRunner(fake, silence_timeout=600)
    hung = RenderOrder(1, str(tmp_path / "a.blend"), (1,), timeout=0.5)
    result = run(runner.run(hung, lambda e: None), 10)
    assert result.error == "Blender printed nothing for 0.5 s"


def test_blenders_temporary_folder_is_the_nodes_and_goes_when_it_is_killed(
    blender: str, slow_scene: Path, tmp_path: Path
) -> None:
    # A killed Blender never removes its `blender_*` folder (and any render buffers in it):
    # each Blender gets one of its own under the work dir's tmp/, removed once it has exited.
    work = tmp_path / "work"
    work.mkdir()
    runner = BlenderRunner(blender, cwd=work)
    events: list[Event] = []
    temp = work / "tmp"

    def blenders_own() -> list[Path]:
        return list(temp.glob("blender-*/blender_*"))

    async def scenario() -> ChunkResult:
        task = asyncio.create_task(
            runner.run(order(slow_scene, tmp_path / "out", list(range(1, 50))), events.append)
        )
        await wait_for_condition(lambda: bool(events), 30, "Blender's first frame")
        assert blenders_own(), f"Blender's temporary folder is not under {temp}"
        runner.cancel()
        result = await task
        await wait_for_condition(lambda: not any(temp.iterdir()), 10, "its folder removed")
        return result

    assert run(scenario()).canceled
