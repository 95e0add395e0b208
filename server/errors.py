"""The server's one root exception; transports turn it into the API's error object."""

from __future__ import annotations

from typing import Any


class FarmError(Exception):
    """An error the API reports to its caller as `{"ok": false, "error": {...}}`."""

    code = "bad_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class NotFound(FarmError):
    code = "not_found"


class InvalidValue(FarmError):
    code = "invalid_value"


class Conflict(FarmError):
    code = "conflict"


class Unauthorized(FarmError):
    code = "unauthorized"


class Forbidden(FarmError):
    code = "forbidden"


class UnsupportedAction(FarmError):
    code = "unsupported_action"
