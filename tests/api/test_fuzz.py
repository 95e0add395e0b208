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

from brender import wire
from brender.server import api
from brender.server.http import MAX_BODY

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
STATUS = b'{"item": "server", "action": "status"}'
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
    """The fuzzer's TCP connection. Every line it sends is far below `wire.MAX_LINE`, so the
    server must answer each one with JSON and keep the connection open: a dropped connection
    (or no answer) fails that example. Only an over-size line may be answered and closed
    (test_tcp_line_size_limit). After a failure the next example gets a fresh connection, so
    that Hypothesis shrinks to the input that really broke it."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.api: TcpApi | None = None

    def _open(self) -> TcpApi:
        api = TcpApi(self.server.tcp_port)
        # The first line decides who is calling: make this an API connection, whatever the
        # fuzzer sends next (a first line not starting with "{" would open the console).
        api.send_raw(STATUS + b"\n")
        assert api.read_answer()["ok"]
        return api

    def ask(self, data: bytes) -> Any:
        assert len(data) + 1 <= wire.MAX_LINE, "the fuzzer only sends lines within the limit"
        if self.api is None:
            self.api = self._open()
        try:
            self.api.send_raw(data + b"\n")
            return self.api.read_answer()
        except (ConnectionError, OSError) as exc:
            self.api.close()
            self.api = None
            raise AssertionError(
                f"no JSON answer to a {len(data)}-byte line (within the {wire.MAX_LINE}-byte"
                f" limit), the connection was lost or went silent: {exc!r}; line: {data!r}"
            ) from exc

    def close(self) -> None:
        if self.api is not None:
            self.api.close()


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

    try:
        one()
    finally:
        conn.close()


def test_fuzz_http(server: ServerProcess) -> None:
    @FUZZ
    @given(st.one_of(anything, st.lists(requests, max_size=3)))
    def one(message: Any) -> None:
        answer = http_api(server.http_url, encode(message))
        for single in answer if isinstance(answer, list) else [answer]:
            check_answer(single)

    one()


# Small lines the random strategies above do not reach: every one needs a JSON answer.
AWKWARD = [
    rb'{"item": "\ud800", "action": "read"}',
    # A long integer sends the line through the stdlib parser, which must refuse surrogates too.
    rb'{"item": "\ud800", "action": "read", "limit": 1000000000000000}',
    rb'{"item": "job", "action": "read", "filters": {"name": "\udfff"},'
    rb' "offset": 1000000000000000}',
    rb'{"item": "job", "action": "read", "filters": {"name": "\udfff"}}',
    rb'{"item": "job", "action": "read", "limit": 1e400}',
    rb'{"item": "job", "action": "read", "limit": NaN}',
    rb'{"item": "job", "action": "read", "limit": -Infinity}',
    rb'{"item": "job", "action": "read", "id": 9007199254740993}',
    rb'{"item": "job", "action": "read", "id": 1000000000000000}',
    rb'{"item": "job", "action": "read", "offset": 1.5e308}',
    rb'{"item": "frame", "action": "read", "filters": {"number": 99999999999999999999}}',
    rb'{"item": "job", "action": "read", "filters": {"name": "\u0000"}}',
    rb'{"item": "job", "item": "client", "action": "read"}',
    b'{"item": "job", "action": "read", "filters": {"name": "\xe2\x80\xa8"}}',
    b"\xff\xfe{",
    b'{"item": "job", "action": "read"',
    b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}",
]


@pytest.mark.parametrize("line", AWKWARD)
def test_awkward_lines_get_json_answers_over_tcp(server: ServerProcess, line: bytes) -> None:
    conn = Connection(server)
    try:
        check_answer(conn.ask(line))
        assert conn.ask(STATUS)["ok"], "the connection must go on after the answer"
    finally:
        conn.close()


@pytest.mark.parametrize("line", AWKWARD)
def test_awkward_lines_get_json_answers_over_http(server: ServerProcess, line: bytes) -> None:
    try:
        answer = http_api(server.http_url, line)
    except ValueError as exc:  # the body was not JSON
        raise AssertionError(f"no JSON answer over HTTP to {line!r}: {exc}") from exc
    check_answer(answer)


def padded(size: int) -> bytes:
    """A JSON request of exactly `size` bytes (an unknown key the server refuses in JSON)."""
    empty = json.dumps({"item": "server", "action": "status", "pad": ""}).encode()
    data = json.dumps({"item": "server", "action": "status", "pad": "x" * (size - len(empty))})
    assert len(data) == size
    return data.encode()


def test_tcp_line_size_limit(server: ServerProcess) -> None:
    """The edges of `wire.MAX_LINE` (newline included): a line that fits is answered and the
    connection goes on; only a longer one gets `too_large` and a closed connection."""
    with TcpApi(server.tcp_port) as tcp:
        tcp.send_raw(STATUS + b"\n")
        assert tcp.read_answer()["ok"]
        tcp.send_raw(padded(wire.MAX_LINE - 1) + b"\n")
        answer = tcp.read_answer()
        check_answer(answer)
        assert answer["error"]["code"] == "bad_request", answer
        tcp.send_raw(STATUS + b"\n")
        assert tcp.read_answer()["ok"], "a line within the limit must not end the connection"
        tcp.send_raw(padded(wire.MAX_LINE + 1) + b"\n")
        answer = tcp.read_answer()
        assert answer["error"]["code"] == "too_large", answer
        with pytest.raises((ConnectionError, OSError)):
            tcp.send_raw(STATUS + b"\n")
            tcp.read_answer()


def test_http_body_over_the_cap_is_refused_in_json(server: ServerProcess) -> None:
    answer = http_api(server.http_url, padded(MAX_BODY + 1))
    assert answer["error"]["code"] == "too_large", answer


def test_http_batch_within_the_body_cap_is_served(server: ServerProcess) -> None:
    """A list of requests within MAX_BODY (8 MiB, docs/api.md) but over 1 MiB in all."""
    batch = [{"item": "server", "action": "status", "id": "x" * 3000} for _ in range(600)]
    body = json.dumps(batch).encode()
    assert wire.MAX_LINE < len(body) < MAX_BODY
    answer = http_api(server.http_url, body)
    assert isinstance(answer, list) and len(answer) == len(batch), answer
    for single in answer:
        check_answer(single)
        assert single["ok"], single


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
