"""One render node: the connection, the order handler and the runner, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psutil

from brender import messages
from brender.node import sysinfo
from brender.node.cache import BlobCache
from brender.node.chunk import Runner
from brender.node.config import NodeConfig
from brender.node.connection import Connection
from brender.node.errors import NodeError, Unauthorized
from brender.node.fetch import FarmFiles
from brender.node.orders import OrderHandler
from brender.node.packed import PackedRunner
from brender.node.runner import BlenderRunner
from brender.node.spawn import clear_temp
from brender.node.warm import WarmRunner

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_UNAUTHORIZED = 3

SHUTDOWN_FLUSH = 1.0
"""Seconds a stopping node gives the master to read its last frame reports."""


async def run_node(
    config: NodeConfig, stop: asyncio.Event | None = None, runner: Runner | None = None
) -> int:
    """Serve the master until `stop` is set; the process exit code.

    Returns `EXIT_UNAUTHORIZED` when the master refuses the token (retrying is pointless) and
    `EXIT_CONFIG` when Blender or the work dir is unusable. `runner` replaces the default
    `WarmRunner` (a Blender per file, `config.warm`) or one-Blender-per-chunk `BlenderRunner`.
    """
    try:
        engines = config.engines
        if engines is None:
            engines = await asyncio.to_thread(sysinfo.engines, config.blender_specs)
        version = engines[0].version
        node_id = await asyncio.to_thread(sysinfo.node_id, config.work_dir)
    except NodeError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    psutil.cpu_percent(interval=None)  # so `system info` measures from now, without blocking
    await asyncio.to_thread(clear_temp, config.work_dir)
    if stop is None:
        stop = asyncio.Event()
    runner_is_warm = runner is None and config.warm  # a runner given by a caller is its own
    if runner is None:
        runner = BlenderRunner(
            config.blender,
            threads=config.threads,
            cwd=config.work_dir,
            silence_timeout=config.silence_timeout,
            engines=engines,
            allow_autoexec=config.allow_autoexec,
        )
        if config.warm:
            runner = WarmRunner(
                runner, idle_timeout=config.warm_idle, memory_limit=config.warm_memory
            )
    # Uploaded jobs: their files fetched into the cache, their frames sent back (packed.py).
    files = FarmFiles(lambda: connection.http_url, config.token, config.tls)
    cache = BlobCache(config.work_dir / "cache", config.cache_size)
    runner = PackedRunner(runner, files, cache, config.work_dir)
    orders: OrderHandler | None = None

    def hello() -> messages.Hello:
        running = orders.chunk_id if orders is not None else None
        unreported = connection.pending_chunk_id()
        chunk = None
        if running is not None:
            chunk = messages.HeldChunk(running, True)
        elif unreported is not None:
            chunk = messages.HeldChunk(unreported, False)
        return messages.Hello(
            node_id=node_id,
            name=config.name,
            hostname=sysinfo.hostname(),
            mac_address=sysinfo.mac_address(),
            cpus=sysinfo.cpu_count(),
            memory=psutil.virtual_memory().total,
            blender_version=version,
            token=config.token,
            chunk=chunk,
            blenders=tuple(messages.BlenderInfo(e.version, e.kind, e.devices) for e in engines),
            allow_autoexec=config.allow_autoexec,
            warm=runner_is_warm,
            output_roots=tuple(config.roots),
            output_beside_blend=config.output_beside_blend,
        )

    def on_welcome(hello: messages.Hello, welcome: messages.Welcome) -> None:
        # The master kept the chunk the hello named: its frames go with the key it gives now.
        if hello.chunk is not None and welcome.upload_key is not None:
            files.upload_keys[hello.chunk.chunk_id] = welcome.upload_key
            log.info("the master kept chunk %d here: a new upload key", hello.chunk.chunk_id)

    def on_order(message: messages.Message) -> None:
        assert orders is not None
        orders.handle(message)

    connection = Connection(
        config.host,
        config.port,
        hello=hello,
        on_order=on_order,
        on_welcome=on_welcome,
        max_backoff=config.max_backoff,
        tls=config.tls,
    )
    orders = OrderHandler(
        connection,
        runner,
        version,
        engines,
        config.allow_autoexec,
        roots=(config.roots, config.output_beside_blend),
    )
    log.info("node %s (%s) serving the master at %s", config.name, node_id, config.master)

    serving = asyncio.create_task(connection.run(), name="connection")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    code = EXIT_OK
    if serving.done():
        error = serving.exception()
        if isinstance(error, Unauthorized):
            log.error("%s; check --token / BRENDER_TOKEN", error)
            code = EXIT_UNAUTHORIZED
        else:
            log.error("the connection to the master ended: %r", error)
            code = EXIT_FAILED
    else:
        log.info("stopping")
    stopping.cancel()
    await orders.shutdown()
    await runner.close()
    if not serving.done():
        if connection.connected:
            await connection.settle(SHUTDOWN_FLUSH)
        serving.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await serving
    return code
