"""Every answer fits in one TCP line (`brender.wire.MAX_LINE`), whatever the rows: pages are cut
by bytes and say so, and paging on gets every row exactly once (docs/api.md, "Pages")."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farmctl import ServerProcess, TcpApi, wait_for

from brender import wire

FRAMES = 10_000
LONG = 4096  # the longest text a name or path may be (server/services/validate.py)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("pages") / "server").start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[TcpApi]:
    with server.tcp() as conn:
        yield conn


def line(api: TcpApi, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One request; its answer's line length and the answer, read as every brender client
    reads it (`wire.decode` refuses a line over the cap)."""
    api.send_raw(wire.encode(request))
    raw = api.file.readline()
    while not raw.startswith(b"{"):  # the console's greeting to a connection that waited
        raw = api.file.readline()
    return len(raw), wire.decode(raw)


def pages(api: TcpApi, request: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Every page of a read, each starting after the rows of the one before."""
    out: list[tuple[int, dict[str, Any]]] = []
    offset = 0
    while True:
        size, answer = line(api, {**request, "offset": offset})
        assert answer["ok"], answer
        out.append((size, answer))
        offset += len(answer["data"])
        if not answer["data"] or offset >= answer["total"]:
            return out


def rows_of(read: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for _, answer in read for row in answer["data"]]


def check_cut(read: list[tuple[int, dict[str, Any]]], total: int, asked: int) -> None:
    """Each line is under the cap; a page cut short by bytes says how many rows it holds."""
    assert len(read) > 1, "the rows were expected not to fit in one answer"
    for size, answer in read:
        assert size <= wire.MAX_LINE
        assert answer["total"] == total
        assert len(answer["data"]) <= answer["limit"] <= asked
    first = read[0][1]
    assert first["limit"] == len(first["data"]) < asked


def submit(api: TcpApi, shot: str, **values: Any) -> dict[str, Any]:
    base = {"project": "pages", "sequence": "sq", "shot": shot, "blend_file": f"/{shot}.blend"}
    return dict(api.ok({"item": "job", "action": "submit", "values": {**base, **values}}))


def job_row(api: TcpApi, job_id: int) -> dict[str, Any]:
    return dict(api.ok({"item": "job", "action": "read", "filters": {"id": job_id}})[0])


def test_10000_frames_come_in_pages_under_the_line_cap(api: TcpApi) -> None:
    job = submit(api, "frames", frame_end=FRAMES, paused=True)
    for order_by in ("number", "-number", None):
        read = pages(
            api,
            {
                "item": "frame",
                "action": "read",
                "filters": {"job_id": job["id"]},
                "order_by": order_by,
                "limit": 10_000,
                "id": "echoed in every page",
            },
        )
        check_cut(read, FRAMES, 10_000)
        assert all(answer["id"] == "echoed in every page" for _, answer in read)
        numbers = [row["number"] for row in rows_of(read)]
        expected = list(range(1, FRAMES + 1))
        assert numbers == (expected[::-1] if order_by == "-number" else expected)
        assert len({row["id"] for row in rows_of(read)}) == FRAMES


def test_a_verb_whose_answer_is_too_long_is_done_and_says_so(api: TcpApi) -> None:
    job = submit(api, "requeue", frame_end=FRAMES, paused=True)
    api.ok({"item": "job", "action": "cancel", "filters": {"id": job["id"]}})
    # `frame requeue` answers every frame it names: 10,000 rows are over 1 MiB.
    request = {"item": "frame", "action": "requeue", "filters": {"job_id": job["id"]}, "id": 7}
    size, answer = line(api, request)
    assert size <= wire.MAX_LINE
    assert answer["ok"] is False and answer["error"]["code"] == "too_large", answer
    assert "carried out" in answer["error"]["message"] and answer["id"] == 7
    assert job_row(api, job["id"])["frames"]["queued"] == FRAMES
    api.ok({"item": "job", "action": "delete", "filters": {"id": job["id"]}})


def test_big_job_rows_come_in_pages_under_the_line_cap(api: TcpApi) -> None:
    # Each job row carries its project, sequence and shot names: about 24 KiB at the longest.
    long = "x" * (LONG - 16)
    made = []
    for n in range(45):
        job = api.ok(
            {
                "item": "job",
                "action": "submit",
                "values": {
                    "project": f"big-{long}",
                    "sequence": f"sq-{long}",
                    "shot": f"{n:03d}-{long}",
                    "name": f"{n:03d}-{long}",
                    "blend_file": f"/{n:03d}/{long}.blend",
                    "output": f"/out/{n:03d}/{long}/####",
                    "frame_end": 1,
                    "paused": True,
                },
            }
        )
        made.append(job["id"])
    read = pages(
        api,
        {
            "item": "job",
            "action": "read",
            "filters": {"id": made},
            "limit": 1000,
            "order_by": "-id",
        },
    )
    check_cut(read, len(made), 1000)
    assert [row["id"] for row in rows_of(read)] == made[::-1]
    assert all(row["frames"]["total"] == 1 and row["shot"].endswith(long) for row in rows_of(read))


def long_name(name: str) -> str:
    return name + "-" + "h" * (LONG - len(name) - 1)


def hello(port: int, name: str) -> None:
    """A node that says hello with the longest texts a hello may carry, then goes."""
    long = long_name(name)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        file = sock.makefile("rwb")
        file.write(
            wire.encode(
                {
                    "type": "hello",
                    "protocol": wire.PROTOCOL_VERSION,
                    "node_id": uuid.uuid4().hex,
                    "name": long,
                    "hostname": long,
                    "mac_address": long,
                    "blender_version": long,
                    "cpus": 1,
                    "memory": 1,
                    "chunk": None,
                }
            )
        )
        file.flush()
        assert wire.decode(file.readline())["type"] == "welcome"


def test_big_client_rows_come_in_pages_under_the_line_cap(
    server: ServerProcess, api: TcpApi
) -> None:
    names = [f"node-{n:03d}" for n in range(60)]  # about 16 KiB a row
    for name in names:
        hello(server.tcp_port, name)
    read = pages(
        api,
        {
            "item": "client",
            "action": "read",
            "filters": {"name": [long_name(name) for name in names]},
            "order_by": "name",
            "limit": 1000,
        },
    )
    check_cut(read, len(names), 1000)
    assert [row["name"] for row in rows_of(read)] == [long_name(name) for name in names]


class FailingNode:
    """A node that fails the chunk it is given with a Blender log near the line cap."""

    def __init__(self, port: int, error: str, log_tail: list[str]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rwb")
        self.send(
            {
                "type": "hello",
                "protocol": wire.PROTOCOL_VERSION,
                "node_id": uuid.uuid4().hex,
                "name": "failing",
                "chunk": None,
            }
        )
        assert self.read()["type"] == "welcome"
        self.error, self.log_tail = error, log_tail

    def send(self, message: dict[str, Any]) -> None:
        data = wire.encode(message)
        assert len(data) <= wire.MAX_LINE
        self.file.write(data)
        self.file.flush()

    def read(self) -> dict[str, Any]:
        return wire.decode(self.file.readline())

    def fail_one_chunk(self) -> None:
        while (order := self.read())["type"] != "render":
            if order["type"] == "ping":
                self.send({"type": "pong", "t": order.get("t")})
        self.send(
            {
                "type": "chunk_done",
                "chunk_id": order["chunk_id"],
                "ok": False,
                "exit_code": 1,
                "error": self.error,
                "log_tail": self.log_tail,
            }
        )

    def close(self) -> None:
        self.sock.close()


def test_a_row_too_big_for_an_answer_comes_cut_short(
    server: ServerProcess, api: TcpApi, tmp_path: Path
) -> None:
    # The frame keeps Blender's error and last lines, the job its error and the node's reason
    # in its blocklist: each row is over the page budget on its own.
    error = "Error: " + "e" * 420_000
    log_tail = [f"{n:02d} " + "l" * 9_990 for n in range(50)]
    node = FailingNode(server.tcp_port, error, log_tail)
    try:
        job = submit(api, "failing", frame_end=1, max_attempts=1, priority=100)
        node.fail_one_chunk()
        wait_for(lambda: job_row(api, job["id"])["status"] == "failed", what="the job to fail")
    finally:
        node.close()
    for item in ("frame", "chunk", "job"):
        key = "job_id" if item != "job" else "id"
        size, answer = line(api, {"item": item, "action": "read", "filters": {key: job["id"]}})
        assert size <= wire.MAX_LINE and answer["ok"], (item, size)
        (row,) = answer["data"]
        assert row["truncated"] is True and row["status"] == "failed", item
        assert row["error"].endswith("…") and error[:1000] in row["error"], item
    # A row that fits is never marked.
    (project,) = api.ok({"item": "project", "action": "read", "filters": {"name": "pages"}})
    assert "truncated" not in project
