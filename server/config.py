"""brender-server's settings: flags, then environment (`BRENDER_*`), then defaults."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from brender import __version__, wire
from brender.server.db import default_url
from brender.sizes import parse_size
from brender.tokens import TokenFileError, find_token


class ConfigError(Exception):
    """Settings that cannot work together; the message says what to change."""


@dataclass
class ServerConfig:
    host: str
    tcp_port: int
    http_port: int
    db_url: str
    token: str | None
    data_dir: Path
    output_root: Path
    node_timeout: float
    local_node: bool
    blender: list[str]
    """Blenders for the local node (empty: the node's own default)."""
    log_level: str
    idle_timeout: float = 300.0
    """Seconds an API or console connection may stay silent before it is closed."""
    max_connections: int = 0
    """Connections each port may hold at once (0: from the file-descriptor limit)."""
    max_per_peer: int = 4096
    """Connections one address may hold on each port."""
    max_file_size: int = 64 * 1024**3
    """The largest file one upload may bring (bytes)."""
    store_quota: int = 500 * 1024**3
    """The most the blob store of uploaded files may hold (bytes)."""
    keep_files: float = 30.0
    """Days a blob no job references is kept (from its upload or the last job that used it)."""
    tls_cert: str = ""
    """A PEM certificate (chain) for both ports; "" for plain TCP and HTTP."""
    tls_key: str = ""
    """Its private key (PEM); "" when the certificate file holds it."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"BRENDER_{name}", default)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="brender-server",
        description="The brender master: API on TCP and HTTP, scheduler, dashboard.",
    )
    p.add_argument(
        "--host",
        default=_env("HOST", "127.0.0.1"),
        help="address to listen on (default 127.0.0.1; others need --token)",
    )
    p.add_argument(
        "--tcp-port",
        type=int,
        default=int(_env("TCP_PORT", None) or wire.DEFAULT_TCP_PORT),
        help="TCP port for nodes, API clients and the console (0: any free port)",
    )
    p.add_argument(
        "--http-port",
        type=int,
        default=int(_env("HTTP_PORT", None) or wire.DEFAULT_HTTP_PORT),
        help="HTTP port for /api and the dashboard (0: any free port)",
    )
    p.add_argument(
        "--db",
        default=_env("DB"),
        help="database URL: sqlite:////path/brender.db or postgresql://user:pw@host/db "
        "(default: SQLite in the data dir)",
    )
    p.add_argument(
        "--token",
        help="shared secret every node and API client must present (BRENDER_TOKEN; it shows "
        "in `ps`: prefer --token-file)",
    )
    p.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the token from this file's first line (BRENDER_TOKEN_FILE)",
    )
    p.add_argument(
        "--data-dir",
        default=_env("DATA_DIR"),
        help="where the default database and renders go (default: the user data dir)",
    )
    p.add_argument(
        "--output-root",
        default=_env("OUTPUT_ROOT"),
        help="where a job without an output path renders (default: DATA_DIR/renders)",
    )
    p.add_argument(
        "--node-timeout",
        type=float,
        default=float(_env("NODE_TIMEOUT", None) or 10),
        help="seconds of silence after which a node is offline and its work requeued",
    )
    p.add_argument(
        "--local-node",
        action="store_true",
        default=(_env("LOCAL_NODE", "") or "").lower() in ("1", "true", "yes"),
        help="also run a render node on this machine",
    )
    p.add_argument(
        "--blender",
        action="append",
        help="Blender for --local-node: a path, or `bpy`; again for more (default: "
        "BRENDER_BLENDER, else blender on PATH)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=float(_env("IDLE_TIMEOUT", "300") or 300),
        help="seconds an API or console connection may send nothing before it is closed "
        "(nodes ping; default 300)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=int(_env("MAX_CONNECTIONS", "0") or 0),
        help="connections each port (TCP, HTTP) may hold at once (default: half the open-file "
        "limit, raised to its hard limit at start, less a reserve)",
    )
    p.add_argument(
        "--max-per-peer",
        type=int,
        default=int(_env("MAX_PER_PEER", "4096") or 4096),
        help="connections one address may hold on each port (default 4096)",
    )
    p.add_argument(
        "--max-file-size",
        default=_env("MAX_FILE_SIZE", "64G"),
        help="the largest file an upload may bring (default 64G)",
    )
    p.add_argument(
        "--store-quota",
        default=_env("STORE_QUOTA", "500G"),
        help="the most the store of uploaded files may hold (default 500G)",
    )
    p.add_argument(
        "--keep-files",
        type=float,
        default=float(_env("KEEP_FILES", "30") or 30),
        metavar="DAYS",
        help="days an uploaded file no job uses is kept, from its upload or the last job "
        "that used it (default 30; fractions allowed)",
    )
    p.add_argument(
        "--tls-cert",
        metavar="PATH",
        default=_env("TLS_CERT"),
        help="serve both ports over TLS with this PEM certificate (chain) (BRENDER_TLS_CERT)",
    )
    p.add_argument(
        "--tls-key",
        metavar="PATH",
        default=_env("TLS_KEY"),
        help="the certificate's private key, PEM (BRENDER_TLS_KEY; default: in --tls-cert)",
    )
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    p.add_argument("--version", action="version", version=f"brender-server {__version__}")
    return p


def load(argv: list[str] | None = None) -> ServerConfig:
    args = parser().parse_args(argv)
    try:
        token = find_token(args.token, args.token_file, os.environ)
    except TokenFileError as exc:
        raise ConfigError(str(exc)) from None
    if not is_loopback(args.host) and not token:
        raise ConfigError(
            f"refusing to listen on {args.host} without a token: anyone on the network could "
            "drive the farm. Start with --token SECRET (or BRENDER_TOKEN), or listen on 127.0.0.1."
        )
    for name in ("tcp_port", "http_port"):
        if not 0 <= getattr(args, name) <= 65535:
            raise ConfigError(f"--{name.replace('_', '-')} must be from 0 to 65535")
    if args.node_timeout <= 0:
        raise ConfigError("--node-timeout must be positive")
    if args.idle_timeout <= 0:
        raise ConfigError("--idle-timeout must be positive")
    if args.keep_files < 0:
        raise ConfigError("--keep-files must be 0 days or more")
    if args.max_connections < 0 or args.max_per_peer < 1:
        raise ConfigError("--max-connections must be 0 or more and --max-per-peer 1 or more")
    try:
        max_file_size, store_quota = parse_size(args.max_file_size), parse_size(args.store_quota)
    except ValueError as exc:
        raise ConfigError(f"--max-file-size / --store-quota: {exc}") from None
    if args.tls_key and not args.tls_cert:
        raise ConfigError("--tls-key needs --tls-cert (BRENDER_TLS_CERT)")
    tls_cert, tls_key = (
        str(Path(p).expanduser().resolve()) if p else "" for p in (args.tls_cert, args.tls_key)
    )
    data_dir = Path(args.data_dir or platformdirs.user_data_dir("brender")).expanduser().resolve()
    output_root = (
        Path(args.output_root).expanduser().resolve() if args.output_root else data_dir / "renders"
    )
    return ServerConfig(
        host=args.host,
        tcp_port=args.tcp_port,
        http_port=args.http_port,
        db_url=args.db or default_url(data_dir),
        token=token,
        data_dir=data_dir,
        output_root=output_root,
        node_timeout=args.node_timeout,
        local_node=args.local_node,
        # BRENDER_BLENDER as the node reads it: one, or several separated by the path separator.
        blender=args.blender or [b for b in (_env("BLENDER") or "").split(os.pathsep) if b],
        log_level=args.log_level.upper(),
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
        max_per_peer=args.max_per_peer,
        max_file_size=max_file_size,
        store_quota=store_quota,
        keep_files=args.keep_files,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
