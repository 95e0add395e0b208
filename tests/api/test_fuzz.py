"""Thousands of random and mutated requests over TCP and HTTP: every one gets a JSON answer,
the server stays up, and the database stays consistent."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from farmctl import ServerProcess, TcpApi, http_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brender.server import api

# The real items and actions, plus plurals, case and nonsense the server must refuse.
ITEMS = [*api.ITEMS, "projects", "jobs", "JOB", "nope", ""]
ACTIONS = [*api.ACTIONS, "fly", ""]
FIELDS = [
    "id",
    "name",
    "project",
    "sequence",
    "shot",
    "blend_file",
    "frame_start",
    "frame_end",
    "chunk_size",
    "priority",
    "output",
    "format",
    "status",
    "job_id",
    "number",
    "project_id",
    "sequence_id",
    "shot_id",
    "force",
    "frames",
    "paused",
    "root",
    "max_attempts",
    "bogus",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.sampled_from([2**53 + 1, -(2**63), 10**7, 0]),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["queued", "done", "PNG", "sh", "p", "/x.blend"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
field_maps = st.dictionaries(
    st.sampled_from(FIELDS), st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=6
)
requests = st.fixed_dictionaries(
    {"item": st.sampled_from(ITEMS), "action": st.sampled_from(ACTIONS)},
    optional={
        "filters": field_maps,
        "values": field_maps,
        "id": scalars,
        "limit": scalars,
        "offset": scalars,
        "order_by": st.sampled_from(["id", "-priority", "number", "-nope", "", 3]),
    },
)
anything = st.one_of(requests, values, st.binary(max_size=64).map(lambda b: b))


def encode(message: Any) -> bytes:
    if isinstance(message, bytes):
        return message.replace(b"\n", b" ")
    return json.dumps(message).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("fuzz") / "server").start()
    yield srv
    srv.stop()


class Connection:
    """One TCP connection, reopened when the server closes it (as it must after a bad line)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.api = TcpApi(server.tcp_port)

    def ask(self, data: bytes) -> Any:
        try:
            self.api.send_raw(data + b"\n")
            return self.api.read_answer()
        except (ConnectionError, OSError):
            self.api.close()
            self.api = TcpApi(self.server.tcp_port)
            self.api.send_raw(b'{"item": "server", "action": "status"}\n')
            return self.api.read_answer()


def check_answer(answer: Any) -> None:
    assert isinstance(answer, dict), answer
    assert isinstance(answer["ok"], bool), answer
    if not answer["ok"]:
        assert set(answer["error"]) == {"code", "message"}
        assert answer["error"]["code"] != "internal", answer


FUZZ = settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_fuzz_tcp(server: ServerProcess) -> None:
    conn = Connection(server)

    @FUZZ
    @given(anything)
    def one(message: Any) -> None:
        data = encode(message)
        if not data.strip():
            return
        check_answer(conn.ask(data))

    one()
    conn.api.close()


def test_fuzz_http(server: ServerProcess) -> None:
    @FUZZ
    @given(st.one_of(anything, st.lists(requests, max_size=3)))
    def one(message: Any) -> None:
        answer = http_api(server.http_url, encode(message))
        for single in answer if isinstance(answer, list) else [answer]:
            check_answer(single)

    one()


def test_after_fuzz_alive_and_consistent(server: ServerProcess) -> None:
    with server.tcp() as api:
        status = api.ok({"item": "server", "action": "status"})
    db = sqlite3.connect(server.data_dir / "brender.db")
    orphans = {
        "sequence": "SELECT COUNT(*) FROM sequence WHERE project_id NOT IN (SELECT id FROM project)",
        "shot": "SELECT COUNT(*) FROM shot WHERE sequence_id NOT IN (SELECT id FROM sequence)",
        "job": "SELECT COUNT(*) FROM job WHERE shot_id NOT IN (SELECT id FROM shot)",
        "chunk": "SELECT COUNT(*) FROM chunk WHERE job_id NOT IN (SELECT id FROM job)",
        "frame": "SELECT COUNT(*) FROM frame WHERE job_id NOT IN (SELECT id FROM job)"
        " OR chunk_id NOT IN (SELECT id FROM chunk)",
    }
    for table, sql in orphans.items():
        assert db.execute(sql).fetchone()[0] == 0, f"orphan {table} rows"
    frames = dict(db.execute("SELECT status, COUNT(*) FROM frame GROUP BY status").fetchall())
    assert status["frames"] == frames
    jobs = dict(db.execute("SELECT status, COUNT(*) FROM job GROUP BY status").fetchall())
    assert status["jobs"] == jobs
    # Every job's frames lie inside its range, once each.
    bad = db.execute(
        "SELECT COUNT(*) FROM frame f JOIN job j ON f.job_id = j.id "
        "WHERE f.number < j.frame_start OR f.number > j.frame_end"
    ).fetchone()[0]
    assert bad == 0
    db.close()
