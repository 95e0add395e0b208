"""The one dispatcher: every API request, from TCP, HTTP or the console, comes through here.

It checks the request's shape and token, routes `item`/`action` to a function registered with
`@action`, and turns the outcome into the API's answer object.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import peewee as pw

from brender import wire
from brender.server import budget
from brender.server.errors import FarmError, Unauthorized, UnsupportedAction
from brender.server.farm import Farm
from brender.server.services.query import Page

log = logging.getLogger(__name__)

ITEMS = ("project", "sequence", "shot", "job", "chunk", "frame", "client", "server")
ACTIONS = (
    "create",
    "read",
    "update",
    "delete",
    "submit",
    "check",
    "pause",
    "resume",
    "cancel",
    "requeue",
    "enable",
    "disable",
    "status",
    "info",
)
TOP_KEYS = {"item", "action", "filters", "values", "id", "token", "limit", "offset", "order_by"}


@dataclass
class Request:
    item: str
    action: str
    filters: dict[str, Any]
    values: dict[str, Any]
    limit: Any = None
    offset: Any = None
    order_by: Any = None


@dataclass
class Caller:
    """Who is asking: `authed` once a valid token was shown (per connection on TCP)."""

    authed: bool = False
    transport: str = "tcp"


Handler = Callable[[Farm, Request], Any]
Routes = dict[tuple[str, str], Handler]
ROUTES: Routes = {}
"""The dispatcher's table, filled once by `install` (server/actions builds it)."""

READS = frozenset({"read", "status", "info", "check"})
"""Actions that change nothing; every other one is answered only once its change is durable."""


def install(routes: Routes) -> None:
    """Give the dispatcher its item × action table."""
    for item, name in routes:
        if item not in ITEMS or name not in ACTIONS:
            raise ValueError(f"no such item × action: {item} {name}")
    ROUTES.clear()
    ROUTES.update(routes)


def _item_name(raw: Any) -> str:
    if not isinstance(raw, str):
        raise FarmError("'item' must be a string", "bad_request")
    name = raw.strip().lower()
    if name not in ITEMS and name.endswith("s") and name[:-1] in ITEMS:
        name = name[:-1]
    if name not in ITEMS:
        raise FarmError(f"unknown item '{raw}' (items: {', '.join(ITEMS)})", "unknown_item")
    return name


def parse(raw: Any) -> Request:
    """Check a request's shape; raises FarmError with the right code."""
    if not isinstance(raw, dict):
        raise FarmError("a request must be a JSON object", "bad_request")
    extra = sorted(set(raw) - TOP_KEYS)
    if extra:
        raise FarmError(
            f"unknown request key{'s' if len(extra) > 1 else ''}: "
            f"{', '.join(extra)} (keys: {', '.join(sorted(TOP_KEYS))})",
            "bad_request",
        )
    if "item" not in raw or "action" not in raw:
        raise FarmError("a request needs 'item' and 'action'", "bad_request")
    item = _item_name(raw["item"])
    name = raw["action"]
    if not isinstance(name, str):
        raise FarmError("'action' must be a string", "bad_request")
    name = name.strip().lower()
    if name not in ACTIONS:
        raise FarmError(
            f"unknown action '{raw['action']}' (actions: {', '.join(ACTIONS)})", "unknown_action"
        )
    if (item, name) not in ROUTES:
        can = sorted(a for (i, a) in ROUTES if i == item)
        raise UnsupportedAction(f"{item} does not support '{name}' (it supports: {', '.join(can)})")
    filters = raw.get("filters") or {}
    values = raw.get("values") or {}
    if not isinstance(filters, dict):
        raise FarmError("'filters' must be an object", "bad_request")
    if not isinstance(values, dict):
        raise FarmError("'values' must be an object", "bad_request")
    return Request(
        item, name, filters, values, raw.get("limit"), raw.get("offset"), raw.get("order_by")
    )


def token_ok(expected: str | None, offered: object) -> bool:
    """True when the farm has no token, or `offered` is that token. Every transport checks
    tokens here: in constant time, and as bytes (any text may be offered)."""
    if not expected:
        return True
    return isinstance(offered, str) and hmac.compare_digest(offered.encode(), expected.encode())


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer …` header's value, or None."""
    return authorization[7:].strip() if authorization.startswith("Bearer ") else None


def file_refusal(expected: str | None, authorization: str, query: Collection[str]) -> str | None:
    """Why an HTTP request for a file (a thumbnail, a movie, a blob) is refused, or None. The
    token comes in the `Authorization` header only: one in a URL would reach access logs,
    proxies and the browser's history, so a `?token=` is refused by name."""
    if token_ok(expected, bearer(authorization)):
        return None
    in_url = " (a token in the URL is not taken)" if "token" in query else ""
    return f"this farm needs a token: 'Authorization: Bearer …'{in_url}"


def authenticate(farm: Farm, raw: Any, caller: Caller) -> None:
    """A `token` key (checked in constant time) authenticates the caller; without one a farm
    that has a token refuses the request."""
    token = farm.settings.token
    offered = raw.get("token") if isinstance(raw, dict) else None
    if offered is not None and token:
        if not token_ok(token, offered):
            raise Unauthorized("wrong token")
        caller.authed = True
    if token and not caller.authed:
        raise Unauthorized(
            "this farm needs a token: send 'token' in the request "
            "(TCP) or 'Authorization: Bearer …' (HTTP)"
        )


def answer(raw: Any, ok: bool, payload: Any) -> dict[str, Any]:
    out: dict[str, Any]
    if not ok:
        out = {"ok": False, "error": payload}
    elif isinstance(payload, Page):
        out = {
            "ok": True,
            "data": [],
            "total": payload.total,
            "limit": payload.limit,
            "offset": payload.offset,
        }
    else:
        out = {"ok": True, "data": payload}
    if isinstance(raw, dict) and "id" in raw:
        out["id"] = raw["id"]
    if isinstance(payload, Page):
        _fill_page(out, payload.rows)
    return out


def _fill_page(out: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """As many of the page's rows as fit in one wire line (server/budget.py); when that is
    fewer than were read, `limit` says how many."""
    fitted = budget.fit_rows(rows, budget.PAGE_BYTES - budget.size(out))
    out["data"] = fitted
    if len(fitted) < len(rows):
        out["limit"] = len(fitted)


def error_answer(raw: Any, code: str, message: str) -> dict[str, Any]:
    return answer(raw, False, {"code": code, "message": message})


async def handle(
    farm: Farm, raw: Any, caller: Caller, scan: wire.Scan | None = None
) -> dict[str, Any]:
    """Answer one request object (already parsed from JSON). Never raises. `scan`: of the text
    it was parsed from with `wire.loads(walk=False)`; the tree is checked once the caller is
    known (a costly walk for a big document comes after the token)."""
    try:
        authenticate(farm, raw, caller)
        if scan is not None:
            scan.check(raw)
        request = parse(raw)
        result: Any = ROUTES[(request.item, request.action)](farm, request)
        if inspect.isawaitable(result):
            result = await result
        if request.action not in READS:
            await farm.store.committed()  # answered once what it changed is durable
        return answer(raw, True, result)
    except FarmError as exc:
        return answer(raw, False, exc.as_error())
    except wire.WireError as exc:  # the tree's check: echo nothing of a document it refused
        return error_answer(None, exc.code, exc.message)
    except pw.IntegrityError as exc:
        return error_answer(raw, "conflict", f"the database refused the change: {exc}")
    except Exception:
        log.exception(
            "request %r failed",
            raw if not isinstance(raw, dict) else {k: v for k, v in raw.items() if k != "token"},
        )
        return error_answer(raw, "internal", "the server failed on this request; see its log")
