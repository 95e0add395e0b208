"""`brender-server --local-node`: a render node on this machine, started and stopped with the server."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from brender.server.config import ServerConfig

log = logging.getLogger(__name__)


class LocalNode:
    def __init__(self, config: ServerConfig, tcp_port: int) -> None:
        self.config = config
        self.tcp_port = tcp_port
        self.process: asyncio.subprocess.Process | None = None

    def command(self) -> list[str]:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        master = f"[{host}]:{self.tcp_port}" if ":" in host else f"{host}:{self.tcp_port}"
        cmd = [
            sys.executable,
            "-m",
            "brender.node.main",
            "--master",
            master,
            "--work-dir",
            str(self.config.data_dir / "node"),
        ]
        if self.config.blender:
            cmd += ["--blender", self.config.blender]
        return cmd

    async def start(self) -> None:
        # The token goes by environment, not argv, so `ps` does not show it.
        env = None
        if self.config.token:
            env = {**os.environ, "BRENDER_TOKEN": self.config.token}
        self.process = await asyncio.create_subprocess_exec(*self.command(), env=env)
        log.info("local node started (pid %d)", self.process.pid)

    async def stop(self, timeout: float = 5.0) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
