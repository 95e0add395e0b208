"""The one rule for a submitter's paths (`blend_file`, `output`): data, never options or lines.

A path reaches Blender's command line and its log. A leading `-` would make Blender read it as
an option (`-P` runs a script), a newline lets a path forge a `Saved:` line in the log, and a
relative path resolves against whatever folder a node was started in. So a path must be
absolute (POSIX `/…`, which includes Blender's `//` for "next to the .blend", or Windows
`C:\\…`/`\\\\server\\share`) and hold no control character. The server checks it at submit;
the node checks every order again (defence in depth).
"""

from __future__ import annotations

import re

_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def path_problem(path: str, absolute: bool = True) -> str | None:
    """Why `path` may not be used as a job's path, or None when it may. `absolute=False`: a
    path inside an uploaded job's tree or a file-name pattern (`sh010_####`), which the node
    puts under its own folder (brender.manifest keeps it inside)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c in "\u2028\u2029\x85" for c in path):
        return "holds a control character (a newline, a tab, …)"
    if path.startswith("-"):
        return "starts with '-', which Blender would read as an option"
    if absolute and not (path.startswith("/") or _WINDOWS_ABSOLUTE.match(path)):
        return "is not an absolute path (give the full path, e.g. /projects/shot.blend)"
    return None
