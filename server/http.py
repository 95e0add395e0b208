"""The HTTP listener (default port 8080): `POST /api`, `GET /api/<item>`.

Handlers parse, cap sizes, authenticate and call the one dispatcher; nothing else.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from brender import wire
from brender.server import api, thumbs, uploads, ws
from brender.server.farm import Farm

MAX_BODY = 8 * wire.MAX_LINE
MAX_BATCH = 1000

STATUS = {
    "bad_json": 400,
    "bad_request": 400,
    "unknown_item": 404,
    "unknown_action": 400,
    "unsupported_action": 405,
    "not_found": 404,
    "invalid_value": 422,
    "conflict": 409,
    "too_large": 413,
    "unauthorized": 401,
    "timeout": 504,
    "missing_files": 409,
    "hash_mismatch": 400,
    "quota": 507,
    "internal": 500,
}


class ApiHandler(tornado.web.RequestHandler):
    def initialize(self, farm: Farm) -> None:
        self.farm = farm

    def check_xsrf_cookie(self) -> None:
        """A token header, not a cookie, authenticates: no XSRF to guard against."""

    def _caller(self) -> api.Caller:
        caller = api.Caller(transport="http")
        header = self.request.headers.get("Authorization", "")
        token = self.farm.settings.token
        if token and header.startswith("Bearer "):
            caller.authed = api.token_ok(token, header[7:].strip())
        return caller

    def _reply(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(wire.encode(body))

    def _error(self, code: str, message: str) -> None:
        self._reply(api.error_answer(None, code, message), STATUS.get(code, 400))

    async def post(self) -> None:
        if len(self.request.body) > MAX_BODY:
            return self._error("too_large", f"request body over {MAX_BODY} bytes")
        try:
            body = wire.loads(self.request.body, MAX_BODY)
        except wire.WireError as exc:
            return self._error(exc.code, exc.message)
        caller = self._caller()
        if isinstance(body, list):
            if len(body) > MAX_BATCH:
                return self._error("too_large", f"at most {MAX_BATCH} requests in one list")
            answers = [await api.handle(self.farm, item, caller) for item in body]
            return self._reply(answers)
        answer = await api.handle(self.farm, body, caller)
        status = 200 if answer["ok"] else STATUS.get(answer["error"]["code"], 400)
        self._reply(answer, status)

    async def get(self, item: str) -> None:
        """`GET /api/jobs?status=active&limit=10`: a read with filters from the query string."""
        request: dict[str, Any] = {"item": item, "action": "read", "filters": {}}
        for key, raw_values in self.request.query_arguments.items():
            values = [_scalar(v.decode("utf-8", "replace")) for v in raw_values]
            if key in ("limit", "offset", "order_by"):
                request[key] = values[-1]
            else:
                request["filters"][key] = values[0] if len(values) == 1 else values
        answer = await api.handle(self.farm, request, self._caller())
        status = 200 if answer["ok"] else STATUS.get(answer["error"]["code"], 400)
        self._reply(answer, status)


def _scalar(text: str) -> Any:
    """Query-string values are text; numbers and true/false/null mean what they say."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if text.lstrip("-").isdigit() and len(text) < 16:
        return int(text)
    return text


def make_app(farm: Farm) -> tornado.web.Application:
    web = str(ws.WEB_DIR)
    files = uploads.routes(farm, farm.blobs) if farm.blobs is not None else []
    return tornado.web.Application(
        [
            *files,
            (r"/api", ApiHandler, {"farm": farm}),
            (r"/api/([a-z]+)", ApiHandler, {"farm": farm}),
            (r"/ws", ws.EventSocket, {"farm": farm}),
            (r"/thumb/([0-9]+)", thumbs.ThumbHandler, {"farm": farm}),
            (r"/()", ws.PageFiles, {"path": web, "default_filename": "index.html"}),
            (r"/static/(.*)", ws.PageFiles, {"path": web}),
        ],
    )
