"""The farm's JSON API over HTTP (`POST /api`), with urllib only. No `bpy` here.

Every failure becomes a `FarmError` whose message tells the artist what to do. The client is
used only from the add-on's worker thread (and from tests), never from Blender's main thread.
"""

from __future__ import annotations

import importlib
import json
import logging
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .errors import (
    FarmAnswerError,
    FarmError,
    FarmRefused,
    FarmUnauthorized,
    FarmUnreachable,
    SettingsError,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 5.0
MAX_ANSWER = 64 * 1024 * 1024
# A farm is on the studio's network: never send its requests through a web proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def shared(name: str) -> ModuleType:
    """`brender.<name>` (standard library only: `tls`, `transfer`, `sizes`): bundled in the
    extension's `_shared/` by build.py; from the installed package when the add-on runs from
    a checkout (tests)."""
    try:
        return importlib.import_module(f"{__package__}._shared.{name}")
    except ImportError:
        return importlib.import_module(f"brender.{name}")


def shared_tls() -> ModuleType:
    return shared("tls")


def wants_tls(text: str) -> bool:
    """The address says HTTPS: `https://host:port`."""
    return text.strip().lower().startswith("https://")


def parse_address(text: str) -> tuple[str, int]:
    """`host:port`, `host`, `http://host:port/` or `https://host:port/` → (host, port)."""
    text = text.strip()
    if not text:
        raise SettingsError(
            "Set the farm's address (host:port) in the brender add-on's preferences"
        )
    parts = urlsplit(text if "//" in text else f"//{text}")
    try:
        host, port = parts.hostname, parts.port or DEFAULT_PORT
    except ValueError:
        host, port = None, 0
    scheme_ok = parts.scheme in ("", "http", "https")
    if not host or not scheme_ok or parts.path.strip("/") not in ("", "api"):
        raise SettingsError(
            f"'{text}' is not a farm address: write it as host:port, for example 10.0.0.5:8080"
        )
    return host, port


def show_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def unreachable(address: str, exc: BaseException) -> FarmError:
    """The artist's version of a connection failure."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLError):
        host = address.rsplit(":", 1)[0].strip("[]")
        text = shared_tls().describe(reason, host, hint="") or str(reason)
        return FarmUnreachable(
            f"{text[0].upper()}{text[1:]} — check the farm's certificate settings in the "
            "add-on's preferences"
        )
    if isinstance(reason, socket.gaierror):
        return FarmUnreachable(
            f"Cannot find the farm at {address}: check the address in the add-on's preferences"
        )
    if isinstance(reason, TimeoutError | socket.timeout):
        return FarmUnreachable(
            f"The farm at {address} did not answer in time — is brender-server running "
            "and is the address right?"
        )
    return FarmUnreachable(f"Cannot reach the farm at {address} — is brender-server running?")


def refused(error: Any, address: str, has_token: bool, what: str = "the request") -> FarmError:
    """The artist's version of the farm's `{"code", "message"}` error object."""
    if not isinstance(error, dict):
        return FarmAnswerError(f"The farm at {address} gave an answer the add-on does not know")
    code = str(error.get("code", ""))
    message = str(error.get("message", "")).strip() or code or "no reason given"
    if code == "unauthorized":
        if has_token:
            return FarmUnauthorized(
                "The farm refused the token: check it in the brender add-on's preferences"
            )
        return FarmUnauthorized(
            "The farm asks for a token: set it in the brender add-on's preferences"
        )
    if code == "internal":
        return FarmRefused(f"The farm hit an internal error (see its log): {message}", code)
    return FarmRefused(f"The farm refused {what}: {message}", code)


def data_of(answer: Any, address: str, has_token: bool, what: str = "the request") -> Any:
    """The `data` of an `{"ok": true}` answer; a `FarmError` for anything else."""
    if not isinstance(answer, dict) or "ok" not in answer:
        raise FarmAnswerError(
            f"Something answered at {address}, but it is not a brender farm — check the address"
        )
    if not answer["ok"]:
        raise refused(answer.get("error"), address, has_token, what)
    return answer.get("data")


@dataclass(frozen=True)
class Submitted:
    """A checked submit: the job the farm made (None: held for the artist) and the warning;
    for a submit with files, the files that were missing and what the upload did."""

    job: dict[str, Any] | None
    warning: str = ""
    missing: tuple[str, ...] = ()
    note: str = ""


def must_confirm(check: dict[str, Any]) -> bool:
    """Nodes are online, but none can render the job (its Blender, auto-exec): ask first. With
    no node online the job is sent (it waits for a node, as the warning says)."""
    nodes = check.get("nodes") if isinstance(check.get("nodes"), dict) else {}
    assert isinstance(nodes, dict)
    return bool(nodes.get("enabled")) and not nodes.get("able")


class FarmClient:
    """One farm's HTTP API; cheap to make, so the worker makes one per task."""

    def __init__(
        self,
        address: str,
        token: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        tls_ca: str = "",
        tls_fingerprint: str = "",
    ) -> None:
        self.host, self.port = parse_address(address)
        self.token = token.strip()
        self.timeout = timeout
        self.scheme = "https" if wants_tls(address) else "http"
        self.opener = _OPENER
        self.tls: Any = None  # brender.tls.ClientTLS for https: the file endpoints use it too
        if self.scheme == "https":
            tls = shared_tls()
            try:
                settings = tls.find_client_tls(True, tls_ca.strip(), tls_fingerprint.strip(), {})
                handler = tls.HTTPSHandler(settings)
                self.tls = settings
            except ValueError as exc:  # TLSSettingsError
                raise SettingsError(f"The farm's certificate settings: {exc}") from None
            self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), handler)
        elif tls_ca.strip() or tls_fingerprint.strip():
            raise SettingsError(
                "A CA file or fingerprint is set, but the farm's address is not https://…"
            )

    @property
    def address(self) -> str:
        return show_address(self.host, self.port)

    @property
    def base(self) -> str:
        """`http://host:port` or `https://host:port`: where the farm's endpoints are."""
        return f"{self.scheme}://{self.address}"

    @property
    def url(self) -> str:
        return f"{self.base}/api"

    def post(self, body: Any) -> Any:
        """Send one request (or a list) and answer the decoded JSON, whatever the HTTP status."""
        headers = {"Content-Type": "application/json", "User-Agent": f"brender-addon/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            raw = exc.read(MAX_ANSWER)
            exc.close()
            if exc.code == 401 and not raw.lstrip().startswith(b"{"):
                raise refused({"code": "unauthorized"}, self.address, bool(self.token)) from exc
        except (urllib.error.URLError, OSError) as exc:
            log.debug("farm at %s: %s", self.address, exc)
            raise unreachable(self.address, exc) from exc
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise FarmAnswerError(
                f"Something answered at {self.address}, but it is not a brender farm "
                "— check the address"
            ) from exc

    def call(self, request: dict[str, Any], what: str = "the request") -> Any:
        """The `data` of the answer; `what` names the request in a refusal's message."""
        return data_of(self.post(request), self.address, bool(self.token), what)

    def batch(self, requests: list[dict[str, Any]], what: str = "the request") -> list[Any]:
        """Several requests in one HTTP round trip; the first failure raises."""
        answers = self.post(requests)
        if not isinstance(answers, list) or len(answers) != len(requests):
            data_of(answers, self.address, bool(self.token), what)  # the farm's own error
            raise FarmAnswerError(
                f"The farm at {self.address} answered the wrong number of replies"
            )
        return [data_of(a, self.address, bool(self.token), what) for a in answers]

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self.call(request, "the job")
        if not isinstance(job, dict) or not isinstance(job.get("id"), int):
            raise FarmAnswerError(f"The farm at {self.address} took the job but sent back no id")
        return job

    def check(self, request: dict[str, Any]) -> dict[str, Any]:
        """The farm's `job check` of a submit request: its file version and its nodes."""
        check = {"item": "job", "action": "check", "values": request["values"]}
        data = self.call(check, "the job")
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
            raise FarmAnswerError(f"The farm at {self.address} sent a check the add-on cannot read")
        return data

    def submit_checked(self, request: dict[str, Any], anyway: bool = False) -> Submitted:
        """Check, then submit, unless nodes are online and none can render the file (then the
        artist decides: `anyway`). A round trip more than `submit`, for a warning in time."""
        check = self.check(request)
        warning = str(check.get("warning") or "")
        if must_confirm(check) and not anyway:
            return Submitted(None, warning)
        return Submitted(self.submit(request), warning)

    def job_verb(self, job_id: int, verb: str) -> Any:
        if verb not in ("pause", "resume", "cancel"):
            raise ValueError(f"not a job verb: {verb}")
        request = {"item": "job", "action": verb, "filters": {"id": job_id}}
        return self.call(request, f"to {verb} job {job_id}")

    def status(self) -> dict[str, Any]:
        data = self.call({"item": "server", "action": "status"}, "the status request")
        if not isinstance(data, dict):
            raise FarmAnswerError(
                f"The farm at {self.address} sent a status the add-on cannot read"
            )
        return data
