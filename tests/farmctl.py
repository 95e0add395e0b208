"""Real brender processes for tests: servers, nodes, and API clients over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
from blender_scene import BLENDER

from brender import framepath

START_LINE = re.compile(r"^brender-server: tcp (\S+):(\d+) http (\S+) db (\S+)")


def frame_file(order: dict[str, Any], frame: int) -> str:
    """The file a `render` order's output names for `frame` (what a node must report)."""
    return framepath.expected_file(
        order["output"], frame, order.get("format"), order.get("blend_file")
    )


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := _poll(predicate, deadline, timeout, what)):
        time.sleep(interval)
    return value


def _poll(predicate: Callable[[], Any], deadline: float, timeout: float, what: str) -> Any:
    """One look: the predicate's value, or an AssertionError once the deadline has passed."""
    value = predicate()
    if not value and time.monotonic() > deadline:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
    return value


async def async_wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """`wait_for` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not (value := _poll(predicate, deadline, timeout, what)):
        await asyncio.sleep(interval)
    return value


class ServerProcess:
    """`brender-server` on free loopback ports, with its log in `log_path`."""

    def __init__(
        self,
        data_dir: Path,
        db_url: str | None = None,
        token: str | None = None,
        extra: list[str] | None = None,
        fd_limit: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.env = env or {}  # BRENDER_* settings for the server (the caller's are dropped)
        self.db_url = db_url
        self.token = token
        self.extra = extra or []
        self.fd_limit = fd_limit  # soft and hard RLIMIT_NOFILE of the server, as `ulimit -n`
        self.log_path = data_dir / "server.log"
        self.proc: subprocess.Popen[str] | None = None
        self.tcp_port = 0
        self.http_url = ""

    def start(self, tcp_port: int = 0, http_port: int = 0, timeout: float = 30.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "brender.server.main",
            "--tcp-port",
            str(tcp_port),
            "--http-port",
            str(http_port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "DEBUG",
            *self.extra,
        ]
        if self.db_url:
            cmd += ["--db", self.db_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRENDER_")}
        if self.token:
            env["BRENDER_TOKEN"] = self.token
        env.update(self.env)
        log = open(self.log_path, "a")  # noqa: SIM115 (kept open for the process's life)
        limit = self.fd_limit

        def limit_fds() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                     preexec_fn=limit_fds if limit else None)  # fmt: skip
        try:
            return self._started(timeout)
        except BaseException:
            _end(self.proc, 0)  # a server that failed to start is not left running
            raise

    def _started(self, timeout: float) -> ServerProcess:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"server exited before listening; log:\n{self.log()}")
            match = START_LINE.match(line)
            if match:
                self.tcp_port = int(match.group(2))
                self.http_url = match.group(3)
                return self
        raise AssertionError("server did not print its start-up line")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        return _end(self.proc, timeout)

    @property
    def master(self) -> str:
        return f"127.0.0.1:{self.tcp_port}"

    def tcp(self) -> TcpApi:
        return TcpApi(self.tcp_port, self.token)

    def http(self, request: Any) -> Any:
        return http_api(self.http_url, request, self.token)


class NodeProcess:
    """`brender-node` with its own work dir and log."""

    def __init__(
        self,
        master: str,
        name: str,
        work_dir: Path,
        blender: str = BLENDER,
        token: str | None = None,
        extra: list[str] | None = None,
        output_roots: list[Path] | None = None,
    ) -> None:
        self.master = master
        self.name = name
        # Tests render under the temporary folder: by default a test node may write there.
        self.output_roots = [Path(tempfile.gettempdir())] if output_roots is None else output_roots
        self.work_dir = work_dir
        self.blender = blender
        self.token = token
        self.extra = extra or []
        self.log_path = work_dir / "node.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "brender.node.main",
            "--master",
            self.master,
            "--name",
            self.name,
            "--work-dir",
            str(self.work_dir),
            "--blender",
            self.blender,
            "--log-level",
            "DEBUG",
            *[arg for root in self.output_roots for arg in ("--output-root", str(root))],
            *self.extra,
        ]
        if self.token:
            cmd += ["--token", self.token]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRENDER_")}
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        return _end(self.proc, timeout)


class ScriptedNode:
    """A node speaking the protocol by hand over a real socket, one line at a time (pings
    answered on the way): for tests of what the server does with a node's exact messages,
    those a real node sends only in bad luck (duplicates, stale reports) and fuzzed ones.

    `hello` adds fields to the hello (`protocol`, `blender_version`, `chunk`, …)."""

    def __init__(
        self,
        port: int,
        name: str,
        *,
        node_id: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        **hello: Any,
    ) -> None:
        self.api = TcpApi(port, timeout=timeout)
        greeting = {"type": "hello", "node_id": node_id or f"{name}-id", "name": name, **hello}
        if token is not None:
            greeting["token"] = token
        self.send(greeting)
        self.welcome = self.next()
        assert self.welcome["type"] == "welcome", self.welcome
        self.seq = 0

    def next(self) -> dict[str, Any]:
        """The next message that is not a ping."""
        while True:
            message: dict[str, Any] = self.api.read_answer()
            if message.get("type") != "ping":
                return message
            self.send({"type": "pong", "t": message.get("t")})

    def expect(self, kind: str, t: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        """The next message of this kind (and this `t`), passing over others. A deadline of its
        own: the server's pings keep the socket from ever timing out."""
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"no {kind!r} within {timeout:g} s"
            message = self.next()
            if message.get("type") == kind and (t is None or message.get("t") == t):
                return message

    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message))

    def send_line(self, line: str | bytes) -> None:
        """One line as it is (a fuzzed one too), its own newlines blanked."""
        data = line.encode() if isinstance(line, str) else line
        self.api.send_raw(data.replace(b"\n", b" ") + b"\n")

    def frame(self, chunk_id: int, frame: int, path: str) -> None:
        """A numbered frame report."""
        self.seq += 1
        self.send({"type": "frame", "chunk_id": chunk_id, "frame": frame, "seq": self.seq,
                   "output_file": path, "render_time": 0.1})  # fmt: skip

    def report(self, order: dict[str, Any], frames: list[int], ok: bool = True) -> None:
        """The order's frames and its end, unnumbered (acknowledged by no `ack`), each frame
        at the file the order names."""
        chunk_id = order["chunk_id"]
        for n in frames:
            self.send({"type": "frame", "chunk_id": chunk_id, "frame": n,
                       "output_file": frame_file(order, n), "render_time": 0.1})  # fmt: skip
        self.send({"type": "chunk_done", "chunk_id": chunk_id, "ok": ok, "exit_code": 0,
                   "frames_done": frames, "error": None, "log_tail": []})  # fmt: skip

    def settle(self, t: float = 7.0) -> None:
        """Everything sent before is handled and committed: the server's pong says so."""
        self.send({"type": "ping", "t": t})
        self.expect("pong", t)

    def close(self) -> None:
        """Close the connection now. (Closing the socket alone does not while its file is
        open: the server would find the node gone only by its silence.)"""
        with contextlib.suppress(OSError):
            self.api.sock.shutdown(socket.SHUT_RDWR)
        self.api.close()


def stop_all(procs: Iterable[NodeProcess | ServerProcess]) -> None:
    """Stop every one of them, even when one fails to stop; then raise the first failure
    (a test must not leave a node running into the next test)."""
    errors: list[AssertionError] = []
    for proc in procs:
        try:
            proc.stop()
        except AssertionError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _end(proc: subprocess.Popen[Any], timeout: float) -> int:
    """The exit code of `proc`, signalled to stop, within `timeout` s. One that does not stop
    in time is killed with everything it started (its Blender), then reported: a failing
    test must not leave processes behind."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    proc.kill()
    proc.wait()
    if timeout:
        raise AssertionError(f"{proc.args[:3]} did not stop within {timeout:g} s; killed it")
    return proc.returncode


class TcpApi:
    """A JSON API client on one TCP connection; skips console text (lines not starting '{')."""

    def __init__(self, port: int, token: str | None = None, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rwb")
        self.token = token

    def send_raw(self, data: bytes) -> None:
        self.file.write(data)
        self.file.flush()

    def read_answer(self) -> Any:
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            if line.lstrip().startswith(b"{"):
                return json.loads(line)

    def request(self, obj: dict[str, Any]) -> Any:
        if self.token and "token" not in obj:
            obj = {**obj, "token": self.token}
        self.send_raw(json.dumps(obj).encode() + b"\n")
        return self.read_answer()

    def ok(self, obj: dict[str, Any]) -> Any:
        answer = self.request(obj)
        assert answer["ok"], answer
        return answer["data"]

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> TcpApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_api(base_url: str, request: Any, token: str | None = None, timeout: float = 30.0) -> Any:
    """POST one request (or a list) to /api; answers the decoded body, whatever the status."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    req = urllib.request.Request(f"{base_url}/api", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def read_all(api: TcpApi, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of a read, page by page: a page ends early when its rows would not fit in
    one line, and the next starts after its last row (docs/api.md)."""
    rows: list[dict[str, Any]] = []
    while True:
        answer = api.request({**request, "limit": 10000, "offset": len(rows)})
        assert answer["ok"], answer
        rows += answer["data"]
        if not answer["data"] or len(rows) >= answer["total"]:
            return rows


def job_frames(api: TcpApi, job_id: int) -> list[dict[str, Any]]:
    read = {"item": "frame", "action": "read", "filters": {"job_id": job_id}, "order_by": "number"}
    return read_all(api, read)


def job_status(api: TcpApi, job_id: int) -> dict[str, Any]:
    return dict(api.ok({"item": "job", "action": "read", "filters": {"id": job_id}})[0])


class Link:
    """A TCP relay on a free loopback port to `target_port`, which a test can cut: `cut()`
    closes every relayed connection and drops new ones until `restore()` (a network fault
    between a node and the master, with both processes alive)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()
