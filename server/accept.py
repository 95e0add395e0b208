"""Accepting connections without letting them stall the server (both ports, TCP and HTTP).

- **A gate per port** caps the connections open at once, in total and per peer address; one
  over the cap is closed at once (a TCP peer is told why in one JSON line first).
- **Out of file descriptors** (`EMFILE`, `ENFILE`, …), the listener stops accepting for a
  short back-off and says so in one log line per minute, instead of spinning on a readable
  socket it cannot accept (what Tornado's accept loop did: 172,000 tracebacks in 20 s).
- **The soft file-descriptor limit** is raised to the hard limit at start (`raise_fd_limit`),
  and the caps are derived from it, leaving room for the database, logs and Blender logs.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from brender.server.quiet import QuietLog

log = logging.getLogger(__name__)

BACKOFF = 0.5
"""Seconds without accepting after the process ran out of file descriptors."""
RESERVED_FDS = 128
"""Descriptors kept back from the connection caps: the database, logs, files, pipes."""
PER_PEER = 4096
"""Default cap of one peer address's connections to one port (1,000 nodes behind one NAT fit),
and never more than three quarters of the port's total: one address cannot shut others out."""
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def raise_fd_limit(ceiling: int = 1 << 20) -> int:
    """Raise the soft limit on open files to the hard one (at most `ceiling`); answers it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return ceiling if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def port_cap(fd_limit: int, ports: int = 2) -> int:
    """Connections one port may hold: its share of the descriptors left after the reserve."""
    return max(16, (fd_limit - RESERVED_FDS) // ports)


@dataclass
class Gate:
    """Counts one port's open connections, in total and per peer address."""

    total: int
    per_peer: int = PER_PEER
    open: int = 0
    by_peer: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    quiet: QuietLog = field(default_factory=QuietLog)

    def admit(self, peer: str) -> bool:
        held = self.by_peer.get(peer, 0)
        if self.open >= self.total or held >= min(self.per_peer, max(1, self.total * 3 // 4)):
            self.refused += 1
            self.quiet.note(
                "refused", log, logging.WARNING,
                "refusing connections: %d open (cap %d), %d from %s (cap %d); %d refused so far",
                self.open, self.total, held, peer, self.per_peer, self.refused,
            )  # fmt: skip
            return False
        self.open += 1
        self.by_peer[peer] = held + 1
        return True

    def release(self, peer: str) -> None:
        held = self.by_peer.get(peer, 0)
        if held <= 1:
            self.by_peer.pop(peer, None)
        else:
            self.by_peer[peer] = held - 1
        self.open = max(0, self.open - 1)


Accepted = Callable[[socket.socket, str], None]


def peer_of(address: object) -> str:
    """The peer's host (no port): what the per-peer cap counts."""
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


class Listener:
    """Accepts on one listening socket and hands each admitted connection on."""

    def __init__(
        self, sock: socket.socket, gate: Gate, accepted: Accepted, refusal: bytes = b""
    ) -> None:
        self.sock = sock
        self.gate = gate
        self.accepted = accepted
        self.refusal = refusal  # said to a refused peer before the close (best effort)
        self.loop = asyncio.get_running_loop()
        self.quiet = QuietLog()
        self._paused: asyncio.TimerHandle | None = None
        self._closed = False
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._ready)

    def _ready(self) -> None:
        for _ in range(256):  # then let the loop serve what it accepted
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _OUT_OF_FDS:
                    raise
                self._back_off(exc)
                return
            peer = peer_of(address)
            if not self.gate.admit(peer):
                self._refuse(conn)
                continue
            conn.setblocking(False)
            self.accepted(conn, peer)

    def _refuse(self, conn: socket.socket) -> None:
        try:
            conn.setblocking(False)
            if self.refusal:
                conn.send(self.refusal)
        except OSError:
            pass
        finally:
            conn.close()

    def _back_off(self, exc: OSError) -> None:
        self.quiet.note(
            "out of fds", log, logging.ERROR,
            "out of file descriptors (%s): not accepting for %.1f s at a time", exc, BACKOFF,
        )  # fmt: skip
        self.loop.remove_reader(self.sock.fileno())
        self._paused = self.loop.call_later(BACKOFF, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if not self._closed:
            self.loop.add_reader(self.sock.fileno(), self._ready)

    def close(self) -> None:
        self._closed = True
        if self._paused is not None:
            self._paused.cancel()
        else:
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
