"""`brender-node`: the command line of a render node."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from brender import __version__
from brender.node import sysinfo
from brender.node.app import EXIT_CONFIG, EXIT_FAILED, run_node
from brender.node.config import DEFAULT_MASTER, NodeConfig, resolve
from brender.node.errors import NodeError

log = logging.getLogger(__name__)

EPILOG = """\
Each flag falls back to an environment variable (BRENDER_MASTER, BRENDER_BLENDER,
BRENDER_NODE_NAME, BRENDER_WORK_DIR, BRENDER_TOKEN, BRENDER_THREADS, BRENDER_ALLOW_AUTOEXEC,
BRENDER_WARM=0|1, BRENDER_WARM_IDLE, BRENDER_WARM_MEMORY), then to its default.
Exit codes: 0 stopped by SIGINT/SIGTERM, 1 unexpected failure, 2 bad settings or unusable
Blender, 3 the master refused the token.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brender-node",
        description="A brender render node: takes chunks from the master and renders them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--master",
        metavar="HOST:PORT",
        help=f"the master's TCP address (default {DEFAULT_MASTER}); tls://HOST:PORT for a master"
        " with --tls-cert",
    )
    add(
        "--blender",
        metavar="PATH",
        action="append",
        help="a Blender executable, or `bpy` for Blender from PyPI (pip install 'brender[bpy]');"
        " give it again for more Blenders: each job runs with one that opens its file"
        " (default: blender on PATH)",
    )
    add(
        "--allow-autoexec",
        action="store_true",
        default=None,
        help="run a file's Python scripts (drivers, startup scripts) when its job asks for it;"
        " without it every render gets --disable-autoexec and such jobs go to other nodes",
    )
    add(
        "--output-root",
        metavar="DIR",
        action="append",
        help="a folder this node may write frames under, besides its work dir; give it again"
        " for more (BRENDER_OUTPUT_ROOTS, separated by the path separator). A job whose output"
        " is elsewhere is refused and goes to a node that may write there",
    )
    add(
        "--output-beside-blend",
        action="store_true",
        default=None,
        help="also write frames under the folder of each job's .blend (the local node does)",
    )
    add("--name", help="this node's name on the farm (default: the host name)")
    add("--work-dir", metavar="DIR", help="where the node keeps its id and runs Blender")
    add(
        "--token",
        help="the farm's token, when the master has one (shows in `ps`: prefer"
        " --token-file or BRENDER_TOKEN)",
    )
    add("--token-file", metavar="PATH", help="read the farm's token from this file's first line")
    add(
        "--tls-ca",
        metavar="PATH",
        help="with --master tls://…: the CA file that signed the master's certificate"
        " (BRENDER_TLS_CA; default: the system's CAs)",
    )
    add(
        "--tls-fingerprint",
        metavar="SHA256",
        help="with --master tls://…: the SHA-256 fingerprint of the master's (self-signed)"
        " certificate (BRENDER_TLS_FINGERPRINT)",
    )
    add("--threads", metavar="N", help="render threads for Blender (-t; default: all)")
    add("--max-backoff", metavar="SECONDS", help="longest wait between reconnects (default 5)")
    add(
        "--silence-timeout",
        metavar="SECONDS",
        help="kill a Blender that prints nothing for this long (default: never)",
    )
    add(
        "--warm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep one Blender per file loaded between chunks of a job (default: on);"
        " --no-warm starts a Blender for every chunk",
    )
    add(
        "--warm-idle",
        metavar="SECONDS",
        help="stop a warm Blender that waited this long for a chunk (default 60; 0: never)",
    )
    add(
        "--warm-memory",
        metavar="MB",
        help="stop a warm Blender whose processes use more memory than this after a chunk"
        " (default: 3/4 of the machine's memory; 0: no limit)",
    )
    add(
        "--cache-size",
        metavar="SIZE",
        help="the most the cache of uploaded jobs' files may hold in the work dir, e.g. 50G"
        " (default 20G; BRENDER_CACHE_SIZE)",
    )
    add("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    add("--version", action="version", version=f"brender-node {__version__}")
    return parser


def _configure(args: argparse.Namespace) -> NodeConfig:
    config = resolve(
        environ=os.environ,
        master=args.master,
        blender=args.blender,
        name=args.name,
        work_dir=args.work_dir,
        token=args.token,
        token_file=args.token_file,
        threads=args.threads,
        max_backoff=args.max_backoff,
        silence_timeout=args.silence_timeout,
        allow_autoexec=args.allow_autoexec,
        warm=args.warm,
        warm_idle=args.warm_idle,
        warm_memory=args.warm_memory,
        cache_size=args.cache_size,
        tls_ca=args.tls_ca,
        tls_fingerprint=args.tls_fingerprint,
        output_roots=args.output_root,
        output_beside_blend=args.output_beside_blend,
    )
    config.engines = sysinfo.engines(config.blender_specs)
    config.blender_version = config.engines[0].version
    try:
        config.work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NodeError(f"cannot use the work dir {config.work_dir}: {exc.strerror}") from None
    return config


SHUTDOWN_LIMIT = 10.0
"""Seconds a node told to stop may take to stop its Blender and say goodbye; then it exits
anyway (its Blenders die with it: PDEATHSIG). A stop must never wait on a stuck task."""


async def _serve(config: NodeConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            exit_after(SHUTDOWN_LIMIT)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return await run_node(config, stop)


def exit_after(seconds: float) -> None:
    """Exit the process in `seconds` unless it has ended by then (a daemon thread's timer)."""

    def give_up() -> None:
        log.error("still stopping after %g s: exiting now", seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_FAILED)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"brender-node: unknown log level {args.log_level!r}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        config = _configure(args)
    except NodeError as exc:
        print(f"brender-node: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    blenders = ", ".join(
        e.version + (" (bpy)" if e.kind == "bpy" else "") for e in config.engines or []
    )
    print(
        f"brender-node: {config.name} (Blender {blenders}) -> {config.master},"
        f" work dir {config.work_dir}"
        + ("; runs files' Python scripts when a job asks" if config.allow_autoexec else ""),
        flush=True,
    )
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
