"""`brender-server --local-node`: a render node on this machine, watched by the server.

The node runs as its own process (`python -P -m brender.node.main`: `-P` keeps the current
directory off `sys.path`, so starting the server from a source checkout cannot shadow the
installed package). Its output is copied to the server's log; if it exits while the server is
up, the server logs its exit code and last lines and starts it again after a growing pause.
`state()` is what `server status` and the dashboard show.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import sys
import time
from typing import Any

from brender.server.config import ServerConfig
from brender.tls import fingerprint_of_pem_file

log = logging.getLogger(__name__)

TAIL_LINES = 20
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
HEALTHY_AFTER = 30.0
"""A node that ran this long before exiting is restarted after the first pause again."""


class LocalNode:
    def __init__(self, config: ServerConfig, tcp_port: int) -> None:
        self.config = config
        self.tcp_port = tcp_port
        self.process: asyncio.subprocess.Process | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.restarts = 0
        self.last_exit: int | None = None
        self.down_since: float | None = None
        self._stopping = False
        self._backoff = FIRST_BACKOFF
        self._task: asyncio.Task[None] | None = None

    def command(self) -> list[str]:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        master = f"[{host}]:{self.tcp_port}" if ":" in host else f"{host}:{self.tcp_port}"
        cmd = [
            sys.executable,
            "-P",  # never import a `brender` folder from the current directory
            "-m",
            "brender.node.main",
            "--master",
            master,
            "--work-dir",
            str(self.config.data_dir / "node"),
            # It renders the artist's own files on the artist's machine: their scripts may run.
            "--allow-autoexec",
            # Where this farm's jobs render: the server's output root (jobs without `output`)
            # and next to the artist's .blend (`//render/`, the add-on's usual output).
            "--output-root",
            str(self.config.output_root),
            "--output-beside-blend",
        ]
        if self.config.tls_cert:
            # The server's own certificate, pinned: it need not name 127.0.0.1 nor be signed.
            cmd[cmd.index(master)] = f"tls://{master}"
            cmd += ["--tls-fingerprint", fingerprint_of_pem_file(self.config.tls_cert)]
        for blender in self.config.blender:
            cmd += ["--blender", blender]
        return cmd

    def state(self) -> dict[str, Any]:
        """The local node as `server status` shows it."""
        running = self.process is not None and self.process.returncode is None
        starting = self.process is None and self.last_exit is None and self.down_since is None
        return {
            "state": "running" if running else "starting" if starting else "down",
            "pid": self.process.pid if running and self.process else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "down_since": self.down_since,
            "last_lines": list(self.tail) if not running else [],
        }

    async def start(self) -> None:
        """Start the node, and keep it running until `stop`."""
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            code = await self._run_once()
            if self._stopping:
                return
            self.last_exit = code
            self.down_since = time.time()
            if time.monotonic() - started > HEALTHY_AFTER:
                self._backoff = FIRST_BACKOFF
            log.error(
                "the local node exited (%s); restarting it in %.0f s. Its last lines:\n%s",
                f"code {code}" if code is not None else "it could not start",
                self._backoff,
                "\n".join(f"  | {line}" for line in self.tail) or "  (none)",
            )
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            self.restarts += 1

    async def _run_once(self) -> int | None:
        """One life of the node process: its exit code, or None if it could not start."""
        # The token goes by environment, not argv, so `ps` does not show it.
        env = {k: v for k, v in os.environ.items() if k != "BRENDER_TOKEN"}
        if self.config.token:
            env["BRENDER_TOKEN"] = self.config.token
        self.tail.clear()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command(),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            self.tail.append(f"cannot start {self.command()[0]}: {exc}")
            return None
        self.process = process
        self.down_since = None
        log.info("local node started (pid %d)", process.pid)
        assert process.stdout is not None
        await self._copy_output(process.stdout)
        return await process.wait()

    async def _copy_output(self, stream: asyncio.StreamReader) -> None:
        """The node's lines go to the server's stderr as they come; the last ones are kept."""
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                continue  # a line over the reader's limit: skip it, keep reading
            if not raw:
                return
            self.tail.append(raw.decode("utf-8", "replace").rstrip())
            with contextlib.suppress(OSError):
                sys.stderr.buffer.write(raw)
                sys.stderr.buffer.flush()

    async def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(timeout):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
