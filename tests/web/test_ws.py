"""The `/ws` event socket: token, coalescing, unsubscribing, and a real server's events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from farmctl import ServerProcess, async_wait_for
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.websocket import WebSocketClientConnection, websocket_connect

from brender.server import ws
from brender.server.farm import Farm, FarmSettings
from brender.server.http import make_app
from brender.server.store import Store

TOKEN = "ws-token"


async def connect(url: str, token: str | None) -> WebSocketClientConnection:
    conn = await websocket_connect(HTTPRequest(url, connect_timeout=20, request_timeout=20))
    await conn.write_message(json.dumps({"type": "hello", "token": token}))
    return conn


async def next_message(conn: WebSocketClientConnection, timeout: float = 10.0) -> Any:
    raw = await asyncio.wait_for(conn.read_message(), timeout)
    return None if raw is None else json.loads(raw)


class InProcess:
    """A farm (no database: the socket never needs one) behind the real app on a free port."""

    def __init__(self, token: str | None = TOKEN) -> None:
        # No table is ever written; the store's writer runs for its commits, which is when
        # the farm's events reach their listeners.
        self.store = Store(pw.SqliteDatabase(":memory:"))
        self.store.start()
        self.farm = Farm(FarmSettings(output_root=Path("/nonexistent"), token=token), self.store)
        sock, port = bind_unused_port()
        self.server = HTTPServer(make_app(self.farm))
        self.server.add_sockets([sock])
        self.url = f"ws://127.0.0.1:{port}/ws"

    def stop(self) -> None:
        self.server.stop()
        self.store.close()


@asynccontextmanager
async def in_process(token: str | None = TOKEN) -> AsyncIterator[InProcess]:
    """An `InProcess` farm, stopped however the test ends."""
    farm = InProcess(token)
    try:
        yield farm
    finally:
        farm.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_a_wrong_or_missing_token_is_refused() -> None:
    async def main() -> None:
        async with in_process() as farm:
            for token in ("wrong", None, ""):
                conn = await connect(farm.url, token)
                assert await next_message(conn) is None
                assert conn.close_code == ws.CLOSE_UNAUTHORIZED
                assert "unauthorized" in (conn.close_reason or "")
            assert farm.farm.listeners == []

    run(main())


def test_the_first_message_must_be_hello(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "HELLO_TIMEOUT", 0.3)

    async def main() -> None:
        async with in_process() as farm:
            conn = await websocket_connect(farm.url)
            await conn.write_message('{"type": "subscribe"}')
            assert await next_message(conn) is None
            assert conn.close_code == ws.CLOSE_BAD_MESSAGE
            quiet = await websocket_connect(farm.url)
            assert await next_message(quiet) is None  # said nothing: closed after the timeout
            assert quiet.close_code == ws.CLOSE_NO_HELLO

    run(main())


def test_a_burst_is_one_message_of_ids_and_closing_unsubscribes() -> None:
    async def main() -> None:
        async with in_process() as farm:
            conn = await connect(farm.url, TOKEN)
            welcome = await next_message(conn)
            assert welcome["type"] == "welcome"
            assert len(farm.farm.listeners) == 1

            # 10,000 frame reports over 1,000 chunks, and some job and client changes, in one
            # tick (no await in between: the same event loop cannot flush halfway).
            for chunk in range(1, 1001):
                for number in range(10):
                    farm.farm.emit("frame", {"chunk_id": chunk, "number": number})
            farm.farm.emit("chunk", {"id": 5000, "job_id": 7})
            farm.farm.emit("job", {"id": 8, "deleted": True})
            farm.farm.emit("client", {"id": 3})
            farm.farm.emit("project", {"id": 2})
            farm.farm.emit("job", {"id": "not an id"})  # ignored, never raised into the farm

            message = await next_message(conn)
            assert message["type"] == "changes"
            assert message["chunk"] == [*range(1, 1001), 5000]
            assert message["job"] == [7, 8]
            assert message["client"] == [3]
            assert message["project"] == [2]
            assert message["deleted"] == {"job": [8]}
            # A deliberate quiet spell: every event above went out in that one message, so
            # nothing may follow, however the loop is scheduled.
            with pytest.raises(asyncio.TimeoutError):
                await next_message(conn, timeout=ws.COALESCE * 3)

            conn.close()
            await async_wait_for(
                lambda: not farm.farm.listeners, 10, what="the closed socket to unsubscribe"
            )
            farm.farm.emit("job", {"id": 1})  # a closed dashboard is not called any more

    run(main())


def test_too_many_ids_of_a_kind_become_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "MAX_IDS", 50)

    async def main() -> None:
        async with in_process(token=None) as farm:
            conn = await connect(farm.url, None)
            assert (await next_message(conn))["type"] == "welcome"
            for chunk in range(200):
                farm.farm.emit("frame", {"chunk_id": chunk, "number": 1})
            farm.farm.emit("job", {"id": 1})
            message = await next_message(conn)
            assert message["chunk"] == "all" and message["job"] == [1]

    run(main())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("ws") / "server", token=TOKEN).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_real_server_pushes_api_changes(server: ServerProcess) -> None:
    url = server.http_url.replace("http://", "ws://") + "/ws"

    async def main() -> None:
        conn = await connect(url, TOKEN)
        assert (await next_message(conn))["type"] == "welcome"
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            None,
            server.http,
            {
                "item": "job",
                "action": "submit",
                "values": {
                    "project": "ws",
                    "sequence": "sq",
                    "shot": "sh",
                    "blend_file": "/x.blend",
                    "frame_end": 10,
                    "paused": True,
                },
            },
        )
        job_id = answer["data"]["id"]
        message = await next_message(conn)
        assert job_id in message["job"]
        conn.close()

        refused = await connect(url, "wrong")
        assert await next_message(refused) is None
        assert refused.close_code == ws.CLOSE_UNAUTHORIZED

    run(main())


def test_the_page_and_its_files_are_served(server: ServerProcess) -> None:
    async def main() -> None:
        from tornado.httpclient import AsyncHTTPClient

        client = AsyncHTTPClient()
        page = await client.fetch(server.http_url + "/")
        assert b'<script type="module" src="/static/js/main.js">' in page.body
        assert page.headers["Cache-Control"] == "no-cache"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        script = await client.fetch(server.http_url + "/static/js/main.js")
        assert "javascript" in script.headers["Content-Type"]
        with pytest.raises(HTTPClientError) as missing:
            await client.fetch(server.http_url + "/static/nothing.js")
        assert missing.value.code == 404
        with pytest.raises(HTTPClientError) as outside:
            await client.fetch(server.http_url + "/static/../ws.py")
        assert outside.value.code in (403, 404)

    run(main())
