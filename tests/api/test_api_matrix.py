"""Every item x action, over TCP and HTTP, on SQLite and on PostgreSQL, against real processes."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dbs import KINDS, fresh_database
from farmctl import NodeProcess, ServerProcess, wait_for

from brender.server import api

ITEMS = list(api.ITEMS)
ACTIONS = list(api.ACTIONS)
# The specification: which item x action cells do something. Every other cell must answer
# `unsupported_action`.
SUPPORTED = {
    "project": {"create", "read", "update", "delete"},
    "sequence": {"create", "read", "update", "delete"},
    "shot": {"create", "read", "update", "delete"},
    "job": {
        "create",
        "read",
        "update",
        "delete",
        "submit",
        "check",
        "pause",
        "resume",
        "cancel",
        "requeue",
    },
    "chunk": {"read"},
    "frame": {"read", "requeue"},
    "client": {"read", "update", "delete", "enable", "disable", "info"},
    "server": {"status"},
}

Call = Callable[[dict[str, Any]], dict[str, Any]]


class Farm:
    def __init__(self, server: ServerProcess, node: NodeProcess) -> None:
        self.server = server
        self.node = node
        self.tcp_api = server.tcp()


@pytest.fixture(scope="module", params=KINDS)
def farm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    with fresh_database(request.param, tmp) as url:
        server = ServerProcess(tmp / "server", db_url=url).start()
        # A real node, kept disabled so that it never renders the fake jobs made here.
        node = NodeProcess(server.master, f"api-node-{request.param}", tmp / "node")
        try:
            node.start()
            with server.tcp() as api:
                try:
                    wait_for(
                        lambda: api.ok({"item": "client", "action": "read"}),
                        60,
                        what="the node to connect",
                    )
                except AssertionError as exc:  # seen once in CI: say what the two said
                    raise AssertionError(
                        f"{exc}\n-- node log --\n{node.log()[-3000:]}"
                        f"\n-- server log --\n{server.log()[-3000:]}"
                    ) from None
                api.ok({"item": "client", "action": "disable", "filters": {}})
            yield Farm(server, node)
        finally:
            node.stop()
            server.stop()


@pytest.fixture(params=["tcp", "http"])
def call(request: pytest.FixtureRequest, farm: Farm) -> Call:
    if request.param == "tcp":
        return farm.tcp_api.request
    return farm.server.http


def ok(call: Call, request: dict[str, Any]) -> Any:
    answer = call(request)
    assert answer["ok"] is True, answer
    return answer["data"]


def err(call: Call, request: dict[str, Any], code: str) -> str:
    answer = call(request)
    assert answer["ok"] is False and answer["error"]["code"] == code, answer
    return str(answer["error"]["message"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def submit(call: Call, **values: Any) -> dict[str, Any]:
    base = {
        "project": unique("p"),
        "sequence": "sq",
        "shot": "sh",
        "blend_file": "/nope.blend",
        "frame_start": 1,
        "frame_end": 10,
        "chunk_size": 4,
        "paused": True,
    }
    return dict(ok(call, {"item": "job", "action": "submit", "values": {**base, **values}}))


UNSUPPORTED = [(i, a) for i, a in itertools.product(ITEMS, ACTIONS) if a not in SUPPORTED[i]]


@pytest.mark.parametrize(("item", "action"), UNSUPPORTED)
def test_unsupported_cells(call: Call, item: str, action: str) -> None:
    message = err(call, {"item": item, "action": action}, "unsupported_action")
    assert item in message


def test_plural_items_and_echoed_id(call: Call) -> None:
    answer = call({"item": "projects", "action": "read", "id": "req-1"})
    assert answer["ok"] and answer["id"] == "req-1"


def test_project_sequence_shot_crud(call: Call) -> None:
    name = unique("proj")
    project = ok(call, {"item": "project", "action": "create", "values": {"name": name}})
    err(call, {"item": "project", "action": "create", "values": {"name": name}}, "conflict")
    seq = ok(
        call,
        {
            "item": "sequence",
            "action": "create",
            "values": {"project_id": project["id"], "name": "sq01"},
        },
    )
    err(
        call,
        {"item": "sequence", "action": "create", "values": {"project_id": 10**9, "name": "x"}},
        "not_found",
    )
    shot = ok(
        call,
        {
            "item": "shot",
            "action": "create",
            "values": {
                "sequence_id": seq["id"],
                "name": "sh010",
                "blend_file": "/a.blend",
                "frame_start": 1,
                "frame_end": 24,
            },
        },
    )
    err(
        call,
        {
            "item": "shot",
            "action": "create",
            "values": {"sequence_id": seq["id"], "name": "bad", "frame_start": 5, "frame_end": 1},
        },
        "invalid_value",
    )
    (updated,) = ok(
        call,
        {
            "item": "project",
            "action": "update",
            "filters": {"id": project["id"]},
            "values": {"root": "/projects/x"},
        },
    )
    assert updated["root"] == "/projects/x"
    ok(
        call,
        {
            "item": "sequence",
            "action": "update",
            "filters": {"id": seq["id"]},
            "values": {"name": "sq02"},
        },
    )
    (shot2,) = ok(
        call,
        {
            "item": "shot",
            "action": "update",
            "filters": {"id": shot["id"]},
            "values": {"frame_end": 48},
        },
    )
    assert shot2["frame_end"] == 48
    found = call({"item": "shot", "action": "read", "filters": {"sequence_id": seq["id"]}})
    assert found["total"] == 1 and found["data"][0]["name"] == "sh010"
    # Deleting the project takes its sequences and shots along.
    ok(call, {"item": "project", "action": "delete", "filters": {"id": project["id"]}})
    assert ok(call, {"item": "shot", "action": "read", "filters": {"id": shot["id"]}}) == []
    assert ok(call, {"item": "sequence", "action": "read", "filters": {"id": seq["id"]}}) == []
    err(
        call, {"item": "project", "action": "delete", "filters": {"id": project["id"]}}, "not_found"
    )


def test_job_submit_create_read_update_delete(call: Call) -> None:
    job = submit(call)
    assert job["status"] == "paused" and job["frames"]["total"] == 10
    chunks = ok(call, {"item": "chunk", "action": "read", "filters": {"job_id": job["id"]}})
    assert [(c["frame_start"], c["frame_end"]) for c in chunks] == [(1, 4), (5, 8), (9, 10)]
    again = ok(
        call,
        {"item": "job", "action": "create", "values": {"shot_id": job["shot_id"], "paused": True}},
    )
    assert again["shot_id"] == job["shot_id"] and again["blend_file"] == "/nope.blend"
    (upd,) = ok(
        call,
        {
            "item": "job",
            "action": "update",
            "filters": {"id": job["id"]},
            "values": {"priority": 90, "name": "renamed", "frame_end": 20},
        },
    )
    assert upd["priority"] == 90 and upd["name"] == "renamed" and upd["frames"]["total"] == 20
    err(
        call,
        {
            "item": "job",
            "action": "update",
            "filters": {"id": job["id"]},
            "values": {"priority": 101},
        },
        "invalid_value",
    )
    err(
        call,
        {
            "item": "job",
            "action": "update",
            "filters": {"id": job["id"]},
            "values": {"colour": "red"},
        },
        "invalid_value",
    )
    page = call(
        {
            "item": "job",
            "action": "read",
            "filters": {"id": [job["id"], again["id"]]},
            "order_by": "-priority",
        }
    )
    assert page["total"] == 2 and page["data"][0]["id"] == job["id"]
    ok(call, {"item": "job", "action": "delete", "filters": {"id": job["id"]}})
    assert ok(call, {"item": "frame", "action": "read", "filters": {"job_id": job["id"]}}) == []
    assert ok(call, {"item": "chunk", "action": "read", "filters": {"job_id": job["id"]}}) == []


def test_job_verbs_and_requeue(call: Call) -> None:
    job = submit(call)
    (resumed,) = ok(call, {"item": "job", "action": "resume", "filters": {"id": job["id"]}})
    assert resumed["status"] == "queued"
    (paused,) = ok(call, {"item": "job", "action": "pause", "filters": {"id": job["id"]}})
    assert paused["status"] == "paused"
    (canceled,) = ok(call, {"item": "job", "action": "cancel", "filters": {"id": job["id"]}})
    assert canceled["status"] == "canceled" and canceled["frames"]["canceled"] == 10
    err(call, {"item": "job", "action": "pause", "filters": {"id": job["id"]}}, "conflict")
    (back,) = ok(
        call,
        {
            "item": "job",
            "action": "requeue",
            "filters": {"id": job["id"]},
            "values": {"frames": [1, 2]},
        },
    )
    assert back["status"] == "queued" and back["frames"]["queued"] == 2
    frames = ok(
        call,
        {"item": "frame", "action": "requeue", "filters": {"job_id": job["id"], "number": [3, 4]}},
    )
    assert [f["status"] for f in frames] == ["queued", "queued"]
    err(call, {"item": "job", "action": "cancel", "filters": {"id": 10**9}}, "not_found")


def test_frame_read_pages(call: Call) -> None:
    job = submit(call, frame_start=1, frame_end=2500, chunk_size=10)
    page = call(
        {
            "item": "frame",
            "action": "read",
            "filters": {"job_id": job["id"]},
            "order_by": "-number",
            "limit": 100,
            "offset": 200,
        }
    )
    assert page["total"] == 2500 and len(page["data"]) == 100
    assert page["data"][0]["number"] == 2300
    err(call, {"item": "frame", "action": "read", "limit": 10**6}, "invalid_value")
    err(call, {"item": "frame", "action": "read", "filters": {"nope": 1}}, "invalid_value")


def test_clients(call: Call, farm: Farm) -> None:
    (client,) = ok(call, {"item": "client", "action": "read", "filters": {"name": farm.node.name}})
    assert client["online"] is True and client["blender_version"]
    (on,) = ok(call, {"item": "client", "action": "enable", "filters": {"id": client["id"]}})
    assert on["status"] == "enabled"
    (off,) = ok(
        call,
        {
            "item": "client",
            "action": "update",
            "filters": {"id": client["id"]},
            "values": {"status": "disabled"},
        },
    )
    assert off["status"] == "disabled"
    (info,) = ok(call, {"item": "client", "action": "info", "filters": {"id": client["id"]}})
    assert info["info"]["cpus"] >= 1 and "memory" in info["info"]
    err(
        call,
        {
            "item": "client",
            "action": "update",
            "filters": {"id": client["id"]},
            "values": {"status": "sleepy"},
        },
        "invalid_value",
    )
    err(call, {"item": "client", "action": "delete", "filters": {"id": client["id"]}}, "conflict")


def test_server_status(call: Call) -> None:
    status = ok(call, {"item": "server", "action": "status"})
    assert status["version"] and status["uptime"] >= 0
    assert status["clients"]["online"] >= 1 and isinstance(status["frames"], dict)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"item": "nope", "action": "read"}, "unknown_item"),
        ({"item": "job", "action": "fly"}, "unknown_action"),
        ({"item": "job"}, "bad_request"),
        ({"item": "job", "action": "read", "filters": [1]}, "bad_request"),
        ({"item": "job", "action": "read", "surprise": 1}, "bad_request"),
        ({"item": "job", "action": "submit", "values": {"project": "p"}}, "invalid_value"),
        (
            {
                "item": "job",
                "action": "submit",
                "values": {
                    "project": "p",
                    "sequence": "s",
                    "shot": "x",
                    "blend_file": "/a.blend",
                    "frame_start": 10,
                    "frame_end": 1,
                },
            },
            "invalid_value",
        ),
        (
            {
                "item": "job",
                "action": "submit",
                "values": {
                    "project": "p",
                    "sequence": "s",
                    "shot": "x",
                    "blend_file": "/a.blend",
                    "chunk_size": -1,
                },
            },
            "invalid_value",
        ),
    ],
)
def test_errors(call: Call, request_: dict[str, Any], code: str) -> None:
    err(call, request_, code)
