"""Hypothesis on the node protocol: generated node messages (right shapes with wrong values,
wrong types, unknown types, chunks and frames the node does not hold) from a scripted node
over a real TCP connection to a real server. The server must keep answering, and no message
that is not valid for that node may change a job, chunk or frame row (read from the database
file itself before and after)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farmctl import ScriptedNode, ServerProcess, frame_file, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brender import framepath, messages, wire


class Farm:
    """A server with jobs in every state a report could aim at: a chunk the fuzzed node holds,
    one another node holds, queued ones and a paused job's."""

    def __init__(self, base: Path) -> None:
        self.server = ServerProcess(base / "server", extra=["--node-timeout", "3600"]).start()
        self.out = base / "out"
        with self.server.tcp() as api:
            self.running = self.submit(api, "run", frame_end=4, chunk_size=2)
            self.fuzzed = ScriptedNode(self.server.tcp_port, "fuzzed", timeout=10)
            self.order = self.fuzzed.expect("render")
            self.other = ScriptedNode(self.server.tcp_port, "other", timeout=10)
            self.other_order = self.other.expect("render")
            self.queued = self.submit(api, "queued", frame_end=6, chunk_size=2)
            self.paused = self.submit(api, "paused", frame_end=3, paused=True)
            chunks = api.ok({"item": "chunk", "action": "read"})
        self.held = int(self.order["chunk_id"])
        self.chunk_ids = sorted(int(c["id"]) for c in chunks)
        self.db = wait_for(lambda: next(self.server.data_dir.glob("*.db"), None), 5, what="db")

    def submit(self, api: Any, shot: str, **values: Any) -> int:
        values = {"project": "fuzz", "sequence": "sq", "shot": shot, "blend_file": "/f.blend",
                  "frame_start": 1, "output": str(self.out / shot / "####"), **values}  # fmt: skip
        return int(api.ok({"item": "job", "action": "submit", "values": values})["id"])

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            return {
                table: db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
                for table in ("job", "chunk", "frame")
            }

    def valid_for_the_node(self, raw: Any) -> bool:
        """Whether this line is a true report of the fuzzed node (it would change rows)."""
        try:
            message = messages.from_node(raw)
        except (messages.MessageError, AttributeError, TypeError):
            return False
        order = self.order
        if isinstance(message, messages.FrameDone):
            return (
                message.chunk_id == self.held
                and message.frame in order["frames"]
                and framepath.names_frame(
                    order["output"], message.frame, order["format"], message.output_file
                )
            )
        if isinstance(message, (messages.ChunkDone, messages.Rejected)):
            return message.chunk_id == self.held
        return False

    def close(self) -> None:
        self.fuzzed.close()
        self.other.close()
        self.server.stop()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    f = Farm(tmp_path_factory.mktemp("fuzz-nodes"))
    try:
        yield f
    finally:
        f.close()


TYPES = ["frame", "chunk_done", "progress", "rejected", "system", "ping", "pong", "hello",
         "welcome", "render", "cancel", "ack", "bogus", "", None, 3, ["frame"]]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 8),
    st.sampled_from([2**63, -(2**63) - 1, 10**12, 1e400, float("-inf")]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)


def node_messages(farm: Farm) -> st.SearchStrategy[Any]:
    order = farm.order
    ids = [*farm.chunk_ids, 0, -1, max(farm.chunk_ids) + 1]
    paths = [frame_file(order, n) for n in (1, 2, 3)] + [
        "/etc/passwd", "", str(farm.out / "queued" / "0001.png"), "/x\nSaved: '/etc/passwd'",
    ]  # fmt: skip

    # The held chunk, the other node's, and one of each other job's, most of the time.
    near = [farm.held, int(farm.other_order["chunk_id"]), ids[2], ids[-4]]
    chunk = st.one_of(st.sampled_from(near), st.sampled_from(ids))
    frame = st.sampled_from([1, 2, 3, 5, 0, -1])
    path = st.sampled_from(paths)
    text = st.text(max_size=8)
    flag = st.booleans()
    number = st.floats(0, 1e6)
    small = st.integers(-9, 9)

    def corrupt(drawn: tuple[dict[str, Any], str | None, Any]) -> dict[str, Any]:
        message, name, value = drawn
        return message if name is None else {**message, name: value}

    def shape(kind: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        """The message with right types and wrong values; half the time one field (or one
        more) of a wrong type."""
        return st.tuples(
            st.fixed_dictionaries({"type": st.just(kind), **fields}, optional={"seq": small}),
            st.one_of(st.none(), st.sampled_from([*fields, "extra"])),
            scalars,
        ).map(corrupt)

    shapes = [
        shape("frame", chunk_id=chunk, frame=frame, output_file=path, render_time=number),
        shape("chunk_done", chunk_id=chunk, ok=flag, exit_code=small, canceled=flag,
              frames_done=st.lists(frame, max_size=3), error=text,
              log_tail=st.lists(text, max_size=2),
              saved=st.lists(st.fixed_dictionaries(
                  {"frame": frame, "output_file": path, "render_time": number}), max_size=2)),
        shape("progress", chunk_id=chunk, frame=frame, phase=st.sampled_from(messages.PHASES),
              samples=small, total=small, remaining=number),
        shape("rejected", chunk_id=chunk, reason=text, outside_roots=flag,
              file_version=st.sampled_from(["4.5", "9.9", "2.79", "3.4", "x"])),
        shape("system", command=st.sampled_from(["info", "memory"]), request=small,
              data=st.dictionaries(st.text(max_size=3), scalars, max_size=2)),
        shape("ping", t=number),
        shape("pong", t=number),
        shape("hello", node_id=text, name=text, token=text),
    ]  # fmt: skip
    anything = st.fixed_dictionaries(
        {"type": st.sampled_from(TYPES)},
        optional={"chunk_id": chunk, "frame": frame, "output_file": path, "ok": scalars},
    )
    reports = shapes[:4]  # what could change rows, twice as often as the rest
    one = st.one_of(*reports, *shapes, anything, st.binary(max_size=40))
    return st.lists(one, min_size=1, max_size=4)


NODE_FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_node_messages_change_nothing_they_should_not(farm: Farm) -> None:
    start = farm.rows()
    assert len(start["chunk"]) == len(farm.chunk_ids) and start["frame"]
    count = [0]

    @NODE_FUZZ
    @given(node_messages(farm))
    def one(batch: list[Any]) -> None:
        before = farm.rows()  # each example on its own: a change is blamed on its lines
        lines = [
            m if isinstance(m, bytes) else json.dumps(m).encode()
            for m in batch
            if not (isinstance(m, dict) and farm.valid_for_the_node(m))  # true reports may
        ]
        for line in lines:
            assert len(line) < wire.MAX_LINE
            farm.fuzzed.send_line(line)
        count[0] += len(lines)
        farm.fuzzed.settle(float(count[0]))
        assert farm.rows() == before, f"rows changed after one of {lines!r}"

    one()
    assert farm.rows() == start
    # The server answers everyone still, and both nodes still hold their chunks.
    with farm.server.tcp() as api:
        status = api.ok({"item": "server", "action": "status"})
        assert status["clients"]["busy"] == 2, status
    assert count[0] > 200
    assert "Traceback" not in farm.server.log()
