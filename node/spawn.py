"""How the node starts a Blender (or the `bpy` engine's child Python): in its own process
group, killed with the node (PDEATHSIG), with a temporary folder of its own that goes when it
exits. The runners (runner.py, warm.py) start every process through `spawn`."""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

READ_SIZE = 64 * 1024
"""Bytes read of a Blender's output at a time."""

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, Blender gets SIGKILL if the node dies (even by
    kill -9), so a lost node never leaves a Blender rendering behind. Only a plain libc call
    here (libc was loaded in the parent), as a forked child of a threaded process must."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


TEMP_DIR = "tmp"
"""Under the work dir: each Blender's own temporary folder (TMPDIR), removed when it ends."""

_cleanups: set[asyncio.Task[None]] = set()


def clear_temp(work_dir: Path) -> None:
    """Remove what Blenders of an earlier run of this node left (a node killed with -9 takes
    its Blenders with it, PDEATHSIG, before they can tidy up)."""
    shutil.rmtree(work_dir / TEMP_DIR, ignore_errors=True)


async def spawn(
    cmd: Sequence[str], cwd: Path | None, stdin: int = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    """Start Blender in its own process group (its pid is the group's id), output on one pipe,
    to be killed with the node (PDEATHSIG).

    With a `cwd` (the node's work dir), Blender gets a temporary folder of its own there
    (TMPDIR), removed once it has exited: a Blender that is killed (a cancel, a hang, a warm
    Blender let go) never tidies its `blender_*` folder and its render buffers up itself."""
    env = None
    temp = None
    if cwd is not None:
        (cwd / TEMP_DIR).mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix="blender-", dir=cwd / TEMP_DIR))
        env = {**os.environ, "TMPDIR": str(temp)}
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            cwd=cwd,
            env=env,
            limit=READ_SIZE * 16,
        )
    except BaseException:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        raise
    if temp is not None:
        task = asyncio.create_task(_remove_after(proc, temp))
        _cleanups.add(task)
        task.add_done_callback(_cleanups.discard)
    return proc


async def _remove_after(proc: asyncio.subprocess.Process, temp: Path) -> None:
    await proc.wait()
    await asyncio.to_thread(shutil.rmtree, temp, True)
