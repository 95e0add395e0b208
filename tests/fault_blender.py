"""A stand-in for `blender` that runs the real Blender but fails on a chosen frame: it crashes
(dies by SIGSEGV) or hangs (stops Blender and itself), always or only the first time."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from blender_scene import BLENDER

SCRIPT = """#!{python}
import os, signal, subprocess, sys, time
REAL, MODE, FRAME, ONCE = {real!r}, {mode!r}, {frame}, {once!r}
args = sys.argv[1:]
if "-b" not in args:
    os.execv(REAL, [REAL] + args)
blender = subprocess.Popen([REAL] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
for raw in blender.stdout:
    sys.stdout.buffer.write(raw)
    sys.stdout.flush()
    if raw.startswith(b"Fra:%d " % FRAME) and not (ONCE and os.path.exists(ONCE)):
        if ONCE:
            open(ONCE, "w").close()
        if MODE == "crash":
            blender.kill()
            blender.wait()
            print("Segmentation fault (core dumped)", flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)
        blender.send_signal(signal.SIGSTOP)
        time.sleep(3600)
sys.exit(blender.wait())
"""


def fault_blender(path: Path, mode: str, frame: int, once: Path | None = None) -> Path:
    """Write the stand-in at `path`; `once`: a marker file, so the fault happens one time."""
    path.write_text(
        SCRIPT.format(
            python=sys.executable,
            real=BLENDER,
            mode=mode,
            frame=frame,
            once=str(once) if once else "",
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
