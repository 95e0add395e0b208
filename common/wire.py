"""The wire format shared by server, node and API clients: one JSON object per line.

Everything that crosses a brender TCP connection goes through `encode` and `decode`, so the
line cap, the nesting cap and the error codes are the same on both ends.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 1024 * 1024
"""The longest line (in bytes, newline included) either side accepts."""

MAX_DEPTH = 32
"""Deeper JSON than this is refused before it reaches any handler."""

MAX_INT = 2**53
"""Integers beyond what a JavaScript client could represent exactly are refused."""

PROTOCOL_VERSION = 1

DEFAULT_TCP_PORT = 6000
DEFAULT_HTTP_PORT = 8080


class WireError(ValueError):
    """A line that is not one acceptable JSON object; `code` is an API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(obj: Any) -> bytes:
    """One JSON value (an object, or a list of answers over HTTP) as one UTF-8 line."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _check_depth_and_ints(value: Any) -> None:
    # Iterative, so a hostile document cannot exhaust the Python stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise WireError("too_large", f"JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_INT:
            raise WireError("invalid_value", f"integer {item} is out of range (|n| <= 2**53)")


def _parse_constant(name: str) -> Any:
    raise WireError("bad_json", f"{name} is not valid JSON")


def loads(data: bytes | str) -> Any:
    """Parse JSON text with brender's limits; raises `WireError` with an API error code."""
    if isinstance(data, bytes):
        if len(data) > MAX_LINE:
            raise WireError("too_large", f"message longer than {MAX_LINE} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError("bad_json", f"message is not valid UTF-8: {exc.reason}") from None
    else:
        text = data
    # A cheap pre-check: json's recursive parser would hit RecursionError on deep input.
    if text.count("[") + text.count("{") > MAX_DEPTH and _max_bracket_depth(text) > MAX_DEPTH:
        raise WireError("too_large", f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_parse_constant)
    except WireError:
        raise
    except (ValueError, RecursionError) as exc:
        raise WireError("bad_json", f"invalid JSON: {exc}") from None
    _check_depth_and_ints(value)
    return value


def _max_bracket_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def decode(line: bytes | str) -> dict[str, Any]:
    """Parse one line that must hold a JSON object."""
    value = loads(line)
    if not isinstance(value, dict):
        raise WireError("bad_request", "a request must be a JSON object")
    return value
