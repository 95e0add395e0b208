"""The huey instance huey's own consumer runs in `python -m bench peers`:

    huey_consumer bench.hueyapp.huey -w 4 -k thread ...

Its SQLite file, durability and record folder come from the environment
(bench/hueypeer.py `Consumer` sets them); importing this module opens the file.
"""

from __future__ import annotations

from bench.hueypeer import from_environment

huey, noop = from_environment()
