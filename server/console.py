"""The human console on the TCP port (`telnet localhost 6000`).

Each command is turned into an API request, sent through the same dispatcher as everything
else, and its answer rendered as an aligned text table. No console line starts with `{`, so a
JSON client that connected before typing can skip whatever it was shown.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

from brender import __version__, wire
from brender.server import api
from brender.server.conn import Connection
from brender.server.farm import Farm

GREETING_DELAY = 0.4
"""A client that has said nothing after this long is taken for a person and greeted."""

PROMPT = b"brender> "
BANNER = (
    f"brender-server {__version__} console. Type 'help' for commands, 'quit' to leave.\r\n".encode()
)

HELP = """\
commands:
  help                  this list
  status                the farm at a glance
  clients [FILTER]      nodes; FILTER: enabled, disabled, online, offline or a name
  enable NAME|all       let a node (or all) take work
  disable NAME|all      give a node (or all) no more work
  jobs                  every job with its progress
  job ID                one job and a summary of its frames
  pause ID | resume ID | cancel ID | requeue ID
  login TOKEN           authenticate, when the farm has a token
  quit                  close this connection
JSON requests (a line starting with '{') are answered as on any API connection."""


async def first_line(conn: Connection) -> tuple[asyncio.Task[bytes], bool]:
    """Start reading the connection's first line; answers the read and whether it arrived
    within `GREETING_DELAY` (if not, a person is probably waiting for a prompt)."""
    task = asyncio.ensure_future(conn.readline())
    done, _ = await asyncio.wait({task}, timeout=GREETING_DELAY)
    return task, bool(done)


DETAILS = (
    "blend_file", "output", "format", "chunk_size", "file_version", "blender", "autoexec",
    "waiting", "error",
)  # fmt: skip
"""What `job ID` lists under the job's row."""


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list) and all(isinstance(b, dict) and "version" in b for b in value):
        # a node's Blenders: "3.4.1,4.5.3(bpy)"
        return ",".join(f"{b['version']}{'(bpy)' if b.get('kind') == 'bpy' else ''}" for b in value)
    return str(value).replace("\n", " ")


class Console:
    def __init__(self, farm: Farm, conn: Connection) -> None:
        self.farm = farm
        self.conn = conn
        self.peer = conn.peer
        self.caller = api.Caller(transport="console")
        self.commands: dict[str, Callable[[list[str]], Awaitable[str]]] = {
            "help": self._help,
            "status": self._status,
            "clients": self._clients,
            "enable": self._enable,
            "disable": self._disable,
            "jobs": self._jobs,
            "job": self._job,
            "pause": self._verb("pause"),
            "resume": self._verb("resume"),
            "cancel": self._verb("cancel"),
            "requeue": self._verb("requeue"),
            "login": self._login,
        }

    async def run(self, line: bytes) -> None:
        """Serve a person from their first line on."""
        while True:
            text = line.decode("utf-8", "replace").strip()
            if text in ("quit", "exit"):
                await self.conn.send(b"bye\r\n")
                return
            reply = await self.execute(text) if text else ""
            out = (reply.replace("\n", "\r\n") + "\r\n") if reply else ""
            await self.conn.send(out.encode() + PROMPT)
            line = await self.conn.readline()

    async def execute(self, text: str) -> str:
        if text.startswith("{"):
            try:
                request: Any = wire.loads(text)
            except wire.WireError as exc:
                return wire.encode(api.error_answer(None, exc.code, exc.message)).decode().strip()
            answer = await api.handle(self.farm, request, self.caller)
            return wire.encode(answer).decode().strip()
        try:
            words = shlex.split(text)
        except ValueError as exc:
            return f"cannot read that command: {exc}"
        command = self.commands.get(words[0].lower())
        if command is None:
            return f"unknown command '{words[0]}'; type 'help' for the list"
        return await command(words[1:])

    async def _ask(self, request: dict[str, Any]) -> Any:
        answer = await api.handle(self.farm, request, self.caller)
        if not answer["ok"]:
            raise ConsoleError(f"error ({answer['error']['code']}): {answer['error']['message']}")
        return answer

    # -- commands ------------------------------------------------------------------------------

    async def _help(self, args: list[str]) -> str:
        return HELP

    async def _login(self, args: list[str]) -> str:
        if len(args) != 1:
            return "usage: login TOKEN"
        try:
            await self._ask({"item": "server", "action": "status", "token": args[0]})
        except ConsoleError as exc:
            return str(exc)
        return "logged in"

    async def _status(self, args: list[str]) -> str:
        try:
            data = (await self._ask({"item": "server", "action": "status"}))["data"]
        except ConsoleError as exc:
            return str(exc)
        c = data["clients"]
        rows = [
            {"what": "version", "value": data["version"]},
            {"what": "uptime (s)", "value": data["uptime"]},
            {
                "what": "clients",
                "value": f"{c['total']} known, {c['enabled']} enabled, "
                f"{c['online']} online, {c['busy']} busy",
            },
            {"what": "jobs", "value": _counts(data["jobs"])},
            {"what": "frames", "value": _counts(data["frames"])},
        ]
        return table(rows, ["what", "value"])

    async def _clients(self, args: list[str]) -> str:
        filters: dict[str, Any] = {}
        if args:
            word = args[0].lower()
            if word in ("enabled", "disabled"):
                filters = {"status": word}
            elif word in ("online", "offline"):
                filters = {"online": word == "online"}
            else:
                filters = {"name": args[0]}
        try:
            rows = await self._ask({"item": "client", "action": "read", "filters": filters})
        except ConsoleError as exc:
            return str(exc)
        return table(
            rows["data"],
            [
                "id",
                "name",
                "status",
                "online",
                "busy",
                "chunk_id",
                "blenders",
                "cpus",
                "hostname",
            ],
        )

    async def _switch(self, action: str, args: list[str]) -> str:
        if len(args) != 1:
            return f"usage: {action} NAME|all"
        filters = {} if args[0] == "all" else {"name": args[0]}
        try:
            rows = await self._ask({"item": "client", "action": action, "filters": filters})
        except ConsoleError as exc:
            return str(exc)
        return table(rows["data"], ["id", "name", "status", "online", "busy"])

    async def _enable(self, args: list[str]) -> str:
        return await self._switch("enable", args)

    async def _disable(self, args: list[str]) -> str:
        return await self._switch("disable", args)

    async def _jobs(self, args: list[str]) -> str:
        try:
            data = (await self._ask({"item": "job", "action": "read", "order_by": "-id"}))["data"]
        except ConsoleError as exc:
            return str(exc)
        return table([_job_row(j) for j in data], JOB_COLUMNS)

    async def _job(self, args: list[str]) -> str:
        if len(args) != 1 or not args[0].isdigit():
            return "usage: job ID"
        try:
            data = (
                await self._ask({"item": "job", "action": "read", "filters": {"id": int(args[0])}})
            )["data"]
        except ConsoleError as exc:
            return str(exc)
        if not data:
            return f"no job with id {args[0]}"
        job = data[0]
        head = table([_job_row(job)], JOB_COLUMNS)
        details = [{"what": k, "value": job.get(k)} for k in DETAILS]
        frames = table(
            [{"frames": k, "count": v} for k, v in job["frames"].items()], ["frames", "count"]
        )
        return "\n\n".join([head, table(details, ["what", "value"]), frames])

    def _verb(self, action: str) -> Callable[[list[str]], Awaitable[str]]:
        async def run(args: list[str]) -> str:
            if len(args) != 1 or not args[0].isdigit():
                return f"usage: {action} ID"
            try:
                data = (
                    await self._ask(
                        {"item": "job", "action": action, "filters": {"id": int(args[0])}}
                    )
                )["data"]
            except ConsoleError as exc:
                return str(exc)
            return table([_job_row(j) for j in data], JOB_COLUMNS)

        return run


class ConsoleError(Exception):
    pass


JOB_COLUMNS = ["id", "project", "sequence", "shot", "name", "status", "priority", "done", "frames"]


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    frames = job.get("frames", {})
    return {
        **job,
        "done": f"{round(100 * job.get('progress', 0))}%",
        "frames": f"{frames.get('done', 0)}/{frames.get('total', 0)}",
    }


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
