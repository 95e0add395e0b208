"""A stand-in for `blender` that runs the real Blender but fails on a chosen frame: it crashes
(dies by SIGSEGV) or hangs (stops Blender and itself), always or only the first few times."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from blender_scene import BLENDER

SCRIPT = """#!{python}
import os, signal, subprocess, sys, time
REAL, MODE, FRAME, ONCE, TIMES = {real!r}, {mode!r}, {frame}, {once!r}, {times}
args = sys.argv[1:]
if "-b" not in args:
    os.execv(REAL, [REAL] + args)
blender = subprocess.Popen([REAL] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
for raw in blender.stdout:
    sys.stdout.buffer.write(raw)
    sys.stdout.flush()
    if not raw.startswith(b"Fra:%d " % FRAME):
        continue
    count = int(open(ONCE).read() or 1) if ONCE and os.path.exists(ONCE) else 0
    if not (ONCE and count >= TIMES):
        if ONCE:
            with open(ONCE, "w") as marker:
                marker.write(str(count + 1))
        if MODE == "crash":
            blender.kill()
            blender.wait()
            print("Segmentation fault (core dumped)", flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)
        blender.send_signal(signal.SIGSTOP)
        time.sleep(3600)
sys.exit(blender.wait())
"""


def fault_blender(
    path: Path, mode: str, frame: int, once: Path | None = None, times: int = 1
) -> Path:
    """Write the stand-in at `path`; `once`: a marker file (it counts the faults), so the fault
    happens `times` times only, whichever stand-in sharing the marker runs."""
    path.write_text(
        SCRIPT.format(
            python=sys.executable,
            real=BLENDER,
            mode=mode,
            frame=frame,
            once=str(once) if once else "",
            times=times,
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# A stand-in that runs the real Blender, but with the warm control script (`--python X`)
# replaced by a hook: `broken` is not Python at all (the warm Blender never gets ready);
# `raise` runs the real script with `render_frame` raising on FRAME (a control-script crash
# mid-chunk), the first time only when ONCE names a marker file. Cold runs pass untouched.
SCRIPT_STAND_IN = """#!{python}
import os, sys
REAL, HOOK = {real!r}, {hook!r}
args = sys.argv[1:]
if "--python" in args:
    at = args.index("--python") + 1
    os.environ["FAULT_WARM_SCRIPT"] = args[at]
    args[at] = HOOK
os.execv(REAL, [REAL] + args)
"""

RAISE_HOOK = """
import os, runpy, sys
script = os.environ["FAULT_WARM_SCRIPT"]
sys.path.insert(0, os.path.dirname(script))
import bpy_render
FRAME, ONCE = {frame}, {once!r}
real = bpy_render.render_frame
def render_frame(scene, frame):
    if frame == FRAME and not (ONCE and os.path.exists(ONCE)):
        if ONCE:
            open(ONCE, "w").close()
        raise RuntimeError("injected fault in the control script at frame %d" % frame)
    return real(scene, frame)
bpy_render.render_frame = render_frame
runpy.run_path(script, run_name="__main__")
"""


def script_fault_blender(path: Path, mode: str, frame: int = 0, once: Path | None = None) -> Path:
    """Write the control-script stand-in at `path` (`mode`: "broken" or "raise")."""
    hook = path.with_name(path.name + "-hook.py")
    if mode == "broken":
        hook.write_text("this is not Python (\n")
    else:
        hook.write_text(RAISE_HOOK.format(frame=frame, once=str(once) if once else ""))
    path.write_text(SCRIPT_STAND_IN.format(python=sys.executable, real=BLENDER, hook=str(hook)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
