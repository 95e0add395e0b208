"""Server changes bench/RESULTS.md proposes, tried without editing the server.

`python -m bench NAME --try nodelay,claim-index` (or `--try all`) runs a scenario against a
server started as `python -m bench.proposals NAMES -- <brender-server arguments>`: the
server's own code, with these patches applied in its process only. Each patch's docstring
names the file and function it stands for; none of them is meant to be merged as written.
They wrap the server's functions rather than copy them where they can, but they follow the
server's internals: when those change, re-check them (`python -m bench NAME --toy --try all`).

Earlier proposals are in the server now and left this list: the (job, status, frame_start)
index with a two-step claim and an indexed EXISTS before counting a job's frames (571f35c),
fixed SQL for reports and claims (00e610b), bulk frame rows at submit and no per-node writes
at SIGTERM (be685e5).
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PATCHES: dict[str, Callable[[], None]] = {}
UNSAFE = {"checkpoint-thread"}
"""Patches that measured a gain but broke something: never part of `all`, only named."""

WAL_LIMIT = 32 * 2**20  # bytes of WAL after which the checkpoint thread insists (RESTART)
SLICE = 0.005  # seconds a dispatch pass may run before it lets the loop read the nodes


def patch(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = fn
        return fn

    return register


@patch("nodelay")
def nodelay() -> None:
    """server/tcp.py FarmTCPServer.handle_stream: `stream.set_nodelay(True)` first. Without
    it, an order written right after a pong waits (Nagle) for the node's delayed ACK: ~40 ms."""
    from brender.server.tcp import FarmTCPServer

    original = FarmTCPServer.handle_stream

    async def handle_stream(self: FarmTCPServer, stream: Any, address: Any) -> None:
        stream.set_nodelay(True)
        await original(self, stream, address)

    FarmTCPServer.handle_stream = handle_stream  # type: ignore[method-assign]


@patch("checkpoint-thread")
def checkpoint_thread() -> None:
    """server/db.py open_database: `PRAGMA wal_autocheckpoint = 0`, and a daemon thread with
    its own connection checkpoints instead, so copying the WAL back into the database (and its
    fsync) no longer happens inside a commit on the loop. UNSAFE as it stands: PASSIVE
    checkpoints alone never catch up under sustained writes and the WAL grew to 10 GB in the
    throughput run (it is only reused from its start after a complete checkpoint); the RESTART
    this version runs past `WAL_LIMIT` takes the write lock, and the loop's deferred
    transactions that read first and then write fail at once with "database is locked" (six
    chunk ends lost in a 1,000-node run). A safe version needs the loop's write transactions
    to begin IMMEDIATE, so they wait for the checkpoint instead of failing."""
    import brender.server.main as server_main

    opener = server_main.open_database

    def open_database(url: str) -> Any:
        db = opener(url)
        path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
        if path and path != ":memory:":
            db.execute_sql("PRAGMA wal_autocheckpoint = 0")
            wal = Path(path + "-wal")

            def checkpoints() -> None:
                con = sqlite3.connect(path, check_same_thread=False, timeout=5.0)
                while True:
                    time.sleep(0.2)
                    big = wal.exists() and wal.stat().st_size > WAL_LIMIT
                    with contextlib.suppress(sqlite3.Error):
                        con.execute(f"PRAGMA wal_checkpoint({'RESTART' if big else 'PASSIVE'})")

            threading.Thread(target=checkpoints, name="checkpoints", daemon=True).start()
        return db

    server_main.open_database = open_database  # type: ignore[assignment]


@patch("carve-by-job")
def carve_by_job() -> None:
    """server/services/work.py _carve: find the carved frames by (job_id, number), the unique
    index, instead of by chunk_id then number: the chunk index walks every frame the big
    chunk still has (22 ms per claim on a 100,000-frame job here, 0.12 ms by job)."""
    from brender.server.models import Chunk, Frame
    from brender.server.services import work
    from brender.server.states import ChunkStatus

    def _carve(chunk: Any, frames: int) -> Any:
        start, last = chunk.frame_start, chunk.frame_start + frames - 1
        moved = (
            Chunk.update(frame_start=start + frames)
            .where(
                Chunk.id == chunk.id,
                Chunk.status == ChunkStatus.QUEUED.value,
                Chunk.frame_start == start,
            )
            .execute()
        )
        if not moved:
            return None
        head = Chunk.create(job=chunk.job_id, frame_start=start, frame_end=last)
        Frame.update(chunk=head.id).where(
            Frame.job == chunk.job_id, Frame.number.between(start, last), Frame.chunk == chunk.id
        ).execute()
        return head

    work._carve = _carve


@patch("dispatch-slices")
def dispatch_slices() -> None:
    """server/farm.py Farm._dispatch: after `SLICE` seconds a pass stops claiming and kicks
    itself again, so the nodes' reports and pings are read between claims and a long pass
    (1,000 idle nodes) cannot make the liveness check drop healthy nodes. Wraps the server's
    own pass: past the deadline `claim_next` answers None and `has_queued_work` True."""
    from brender.server.farm import Farm
    from brender.server.services import work

    dispatch, claim, has_work = Farm._dispatch, work.claim_next, work.has_queued_work
    state = {"deadline": float("inf"), "cut": 0.0}

    def claim_next(client_id: int, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        if time.perf_counter() > state["deadline"]:
            state["cut"] = 1.0
            return None
        return claim(client_id, *args, **kwargs)

    def has_queued_work() -> bool:
        return bool(state["cut"]) or has_work()

    def _dispatch(self: Farm) -> None:
        state["deadline"], state["cut"] = time.perf_counter() + SLICE, 0.0
        try:
            dispatch(self)
        finally:
            state["deadline"] = float("inf")
        if state["cut"]:
            self.kick()

    work.claim_next = claim_next
    work.has_queued_work = has_queued_work
    Farm._dispatch = _dispatch  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    """`NAMES -- server arguments`: apply the patches, then run brender-server."""
    cut = argv.index("--") if "--" in argv else len(argv)
    wanted = expand(",".join(argv[:cut]))
    rest = argv[cut + 1 :]
    import brender.server.main as server_main

    for name in wanted:
        PATCHES[name]()
    print(f"bench.proposals: server with {', '.join(wanted)}", file=sys.stderr, flush=True)
    return server_main.main(rest)


def expand(spec: str) -> list[str]:
    """`all` (every patch but the unsafe ones) or a comma list of patch names, checked."""
    if spec.strip() == "all":
        return [n for n in PATCHES if n not in UNSAFE]
    names = [n for n in spec.split(",") if n]
    unknown = [n for n in names if n not in PATCHES]
    if unknown:
        raise SystemExit(f"unknown proposal(s) {unknown}; known: {', '.join(PATCHES)}")
    return names


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
