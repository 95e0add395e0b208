"""`brender-server`: open the database, listen on TCP and HTTP, run until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from brender.server import actions, api
from brender.server.accept import Gate, port_cap, raise_fd_limit
from brender.server.blobs import BlobStore
from brender.server.config import ConfigError, ServerConfig, load
from brender.server.db import open_database
from brender.server.errors import FarmError
from brender.server.farm import Farm, FarmSettings
from brender.server.housekeep import Housekeeper
from brender.server.http import MAX_BODY, listen_http, make_app
from brender.server.local_node import LocalNode
from brender.server.store import Store
from brender.server.tcp import FarmTCP
from brender.tls import TLSSettingsError, server_context

log = logging.getLogger("brender.server")

BACKLOG = 4096
"""Connections the kernel queues before they are accepted: a farm of 1,000 nodes reconnecting
at once after a restart (with Tornado's 128 the rest waited out SYN retries of 1 s and more)."""


def _display_url(url: str) -> str:
    """The database URL without its password, for the start-up line."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(config: ServerConfig) -> int:
    # The certificate first: a wrong one stops the start before the database is opened.
    tls = server_context(config.tls_cert, config.tls_key) if config.tls_cert else None
    api.install(actions.routes())
    db = open_database(config.db_url)
    store = Store(db)
    store.start()
    farm = Farm(
        FarmSettings(
            output_root=config.output_root, token=config.token, node_timeout=config.node_timeout
        ),
        store,
    )
    farm.blobs = BlobStore(config.data_dir / "files", config.max_file_size, config.store_quota)
    await asyncio.to_thread(farm.blobs.start)
    farm.start()
    sweeper = asyncio.create_task(Housekeeper(farm.blobs, config.keep_files).run())

    fds = raise_fd_limit()
    cap = config.max_connections or port_cap(fds)
    # HTTP first: a node's `welcome` tells it the HTTP port (uploaded jobs' files, frames).
    http = HTTPServer(
        make_app(farm),
        max_body_size=MAX_BODY + 1024 * 1024,
        xheaders=False,
        idle_connection_timeout=config.idle_timeout,  # between requests; a body may be long
    )
    http_sockets = bind_sockets(config.http_port, address=config.host, backlog=BACKLOG)
    http_listeners = listen_http(http, http_sockets, Gate(cap, config.max_per_peer), tls)
    http_port = http_sockets[0].getsockname()[1]
    farm.settings.http_port = http_port
    tcp = FarmTCP(farm, Gate(cap, config.max_per_peer), idle=config.idle_timeout, tls=tls)
    tcp_sockets = bind_sockets(config.tcp_port, address=config.host, backlog=BACKLOG)
    tcp.listen(tcp_sockets)
    tcp_port = tcp_sockets[0].getsockname()[1]
    log.info("open-file limit %d: each port takes up to %d connections", fds, cap)

    tcp_scheme, http_scheme = ("tls://", "https") if tls is not None else ("", "http")
    print(
        f"brender-server: tcp {tcp_scheme}{_addr(config.host, tcp_port)} "
        f"http {http_scheme}://{_addr(config.host, http_port)} db {_display_url(config.db_url)}",
        flush=True,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("event loop: %s", type(loop).__module__.split(".")[0])
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    node = None
    if config.local_node:
        node = LocalNode(config, tcp_port)
        farm.local_node = node.state
        await node.start()

    await stop.wait()
    log.info("shutting down")
    sweeper.cancel()
    tcp.stop()
    for listener in http_listeners:
        listener.close()
    if node is not None:
        await node.stop()
    farm.stop()
    await store.drain()  # the last tick's rows (a few milliseconds of work at most)
    store.close()
    db.close()
    return 0


Runner = Callable[[Coroutine[Any, Any, int]], int]


def event_loop() -> Runner:
    """How to run the server: on uvloop's event loop where it is installed (a dependency on
    Linux and macOS), else on asyncio's; `BRENDER_LOOP=asyncio` or `=uvloop` chooses. Under
    load the two carry the same frames a second, but uvloop answers an idle node about twice
    as fast (dispatch-latency p99 0.9-1.2 ms against 2.1-2.4 ms at 1 node, 3.9-4.5 against
    4.8-5.4 ms at 1,000; alternated runs in bench/RESULTS.md)."""
    choice = os.environ.get("BRENDER_LOOP", "auto")
    if choice not in ("uvloop", "asyncio", "auto"):
        raise ConfigError(f"BRENDER_LOOP must be uvloop, asyncio or auto, not {choice!r}")
    if choice == "asyncio":
        return asyncio.run
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("BRENDER_LOOP=uvloop, but uvloop is not installed") from None
        return asyncio.run
    return uvloop.run


GC_THRESHOLDS = (50_000, 20, 100)
"""Python's cyclic collector, tuned for a server that holds every queued chunk in memory: at
the default (700, 10, 10) the short-lived rows and messages of a busy tick outlive two young
collections, so full collections ran over the whole heap once or twice a second, 16-83 ms
each with 100,000 queued chunks (the loop stopped for that long): in a 100,000-frame
`throughput` run 3,046 collections took 1,455 ms, 21 of them full. With these: 104
collections, 75 ms in all, none full (bench/RESULTS.md, 2026-12-02)."""


def main(argv: list[str] | None = None) -> int:
    try:
        config = load(argv)
        run = event_loop()
    except ConfigError as exc:
        print(f"brender-server: {exc}", file=sys.stderr)
        return 2
    gc.set_threshold(*GC_THRESHOLDS)
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    try:
        return run(serve(config))
    except (FarmError, OSError, TLSSettingsError) as exc:
        print(f"brender-server: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
