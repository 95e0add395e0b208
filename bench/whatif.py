"""What the proposed server fixes would buy: the server's own service functions, timed in this
process on a scratch SQLite database, against the changes bench/RESULTS.md proposes.

`python -m bench.whatif [--quick]`. Nothing here changes the server's files: a proposed
variant is a function below, run only inside this process. The figures are database work per
operation, without the network and JSON the scenarios measure (`python -m bench NAME --try …`
measures bench/proposals.py's changes end to end).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.report import format_table
from brender.server.db import open_database
from brender.server.models import Chunk, Client, Frame, Job, database, now
from brender.server.services import clients, jobs, work
from brender.server.states import ChunkStatus, FrameStatus

FRAME_DONE_SQL = (
    "UPDATE frame SET status = 'done', client_id = ?, output_file = ?, render_time = ?, "
    "finished_at = ?, error = '' WHERE chunk_id = ? AND number = ? "
    "AND status IN ('queued', 'rendering')"
)


@contextmanager
def clock(results: dict[str, float], key: str, per: int = 1) -> Iterator[None]:
    start = time.perf_counter()
    yield
    results[key] = (time.perf_counter() - start) / per * 1000  # ms per operation


def fresh_db(folder: Path, name: str) -> None:
    if database.obj is not None and not database.is_closed():
        database.close()
    open_database(f"sqlite:///{folder / name}")


def submit(folder: Path, frames: int, chunk: int, name: str) -> Job:
    values = {"project": "p", "sequence": "s", "shot": name, "blend_file": "/x.blend"}
    values.update(frame_start=1, frame_end=frames, chunk_size=chunk)
    return jobs.submit(values, folder)


def cycle(client_id: int, claim: Callable[[int], dict[str, Any] | None], n: int) -> None:
    """n chunks of one frame: claimed, their frame saved, ended (one node, as at 1 node)."""
    for _ in range(n):
        order = claim(client_id)
        assert order is not None
        work.frame_done(client_id, order["chunk_id"], order["frames"][0], "/o.png", 0.1)
        work.chunk_finished(client_id, order["chunk_id"], True, 0, "", [])


def chunk_cycles(folder: Path, queued: int, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    fresh_db(folder, f"cycle-{queued}.db")
    client = clients.register({"node_id": "whatif", "name": "whatif"})
    submit(folder, queued, 1, "cycle")
    with clock(out, "claim + frame + chunk end (today)", n):
        cycle(client.id, work.claim_next, n)
    return out


def frame_reports(folder: Path, frames: int) -> dict[str, float]:
    """Saving `frames` frame reports: one commit each (today), one transaction per batch of
    100 (a loop tick's worth), and one executemany of fixed SQL per batch."""
    out: dict[str, float] = {}
    fresh_db(folder, "frames.db")
    client = clients.register({"node_id": "whatif", "name": "whatif"})
    job = submit(folder, frames * 3, 50, "frames")
    Chunk.update(status=ChunkStatus.RUNNING.value, client=client.id).execute()
    Frame.update(status=FrameStatus.RENDERING.value, client=client.id).execute()
    rows = list(Frame.select(Frame.chunk, Frame.number).where(Frame.job == job.id).tuples())
    parts = [rows[:frames], rows[frames : 2 * frames], rows[2 * frames :]]
    with clock(out, "frame_done, a commit each (today)", frames):
        for chunk_id, number in parts[0]:
            work.frame_done(client.id, chunk_id, number, "/o.png", 0.1)
    with clock(out, "frame_done, one transaction per 100", frames):
        for first in range(0, frames, 100):
            with database.atomic():
                for chunk_id, number in parts[1][first : first + 100]:
                    work.frame_done(client.id, chunk_id, number, "/o.png", 0.1)
    with clock(out, "executemany of fixed SQL per 100", frames):
        for first in range(0, frames, 100):
            batch = [
                (client.id, "/o.png", 0.1, now(), c, n) for c, n in parts[2][first : first + 100]
            ]
            with database.atomic():
                database.cursor().executemany(FRAME_DONE_SQL, batch)
    return out


def _chunk_rows(job_id: int, first: int, last: int, size: int) -> list[tuple[int, int, int]]:
    """The job's chunk rows, inserted as today; answers (id, first frame, last frame)."""
    spans = [(s, min(s + size - 1, last)) for s in range(first, last + 1, size)]
    fields = [Chunk.job, Chunk.frame_start, Chunk.frame_end, Chunk.status]
    for i in range(0, len(spans), 2000):
        rows = [(job_id, a, b, ChunkStatus.QUEUED.value) for a, b in spans[i : i + 2000]]
        Chunk.insert_many(rows, fields=fields).execute()
    query = Chunk.select(Chunk.id, Chunk.frame_start, Chunk.frame_end).where(
        Chunk.job == job_id, Chunk.frame_start >= first
    )
    return list(query.order_by(Chunk.frame_start).tuples())


def submits(folder: Path, frames: int) -> dict[str, float]:
    """A job's rows: `job submit` as the server does it, and by executemany of fixed SQL."""
    out: dict[str, float] = {}
    fresh_db(folder, "submit.db")
    with clock(out, f"job submit, {frames} frames in chunks of 50 (today)"):
        submit(folder, frames, 50, "a")
    fields = "job_id, chunk_id, number, status, output_file, attempts, error, log_tail"
    job = submit(folder, 1, 1, "b")
    with clock(out, "the same rows by executemany of fixed SQL"), database.atomic():
        spans = _chunk_rows(job.id, 2, frames + 1, 50)
        database.cursor().executemany(
            f"INSERT INTO frame ({fields}) VALUES (?, ?, ?, 'queued', '', 0, '', '')",
            [(job.id, cid, n) for cid, a, b in spans for n in range(a, b + 1)],
        )
    counts = jobs.frame_counts([job.id])[job.id]
    assert counts == {"queued": frames + 1}, counts
    return out


def shutdown(folder: Path, nodes: int) -> dict[str, float]:
    """What a busy node's disconnect costs the loop (offline + requeue): a network blip that
    drops 1,000 nodes at once costs 1,000 of these. (No longer paid at SIGTERM: be685e5.)"""
    out: dict[str, float] = {}
    fresh_db(folder, "shutdown.db")
    ids = [clients.register({"node_id": f"n{i}", "name": f"n{i}"}).id for i in range(nodes)]
    submit(folder, nodes * 50, 50, "busy")
    for cid in ids:
        assert work.claim_next(cid) is not None
    with clock(out, f"a busy node disconnecting, {nodes} of them, per node", nodes):
        for cid in ids:
            clients.set_offline(cid)
            work.requeue_client(cid, "shutdown")
    assert Client.select().count() == nodes
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.whatif", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # the services log every requeue
    quick = args.quick
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="brender-whatif-") as tmp:
        folder = Path(tmp)
        for queued in (2_000, 20_000 if quick else 100_000):
            for name, ms in chunk_cycles(folder, queued, 20 if quick else 100).items():
                rows.append({"what": f"{name}, {queued} queued chunks", "ms each": ms})
        for part in (
            frame_reports(folder, 1000 if quick else 5000),
            submits(folder, 20_000 if quick else 100_000),
            shutdown(folder, 100 if quick else 1000),
        ):
            rows.extend({"what": k, "ms each": v} for k, v in part.items())
    for row in rows:
        row["per s"] = 1000 / row["ms each"]
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
