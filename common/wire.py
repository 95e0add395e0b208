"""The wire format shared by server, node and API clients: one JSON object per line.

Everything that crosses a brender TCP connection goes through `encode` and `decode`, so the
line cap, the nesting cap and the error codes are the same on both ends. The codec is orjson
(a line costs a few microseconds instead of tens); the limits it does not check itself are
checked after parsing, and only when a cheap scan of the text says they could be broken.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

MAX_LINE = 1024 * 1024
"""The longest line (in bytes, newline included) either side accepts."""

MAX_DEPTH = 32
"""Deeper JSON than this is refused before it reaches any handler."""

MAX_INT = 2**53
"""Integers beyond what a JavaScript client could represent exactly are refused."""

PROTOCOL_VERSION = 2
"""1: the first; 2: a `chunk_done` may carry its frame reports (`saved`), and `welcome` says
the master's version (docs/protocol.md)."""
FOLDED_REPORTS = 2
"""The first protocol whose master reads frame reports folded into a `chunk_done`."""

DEFAULT_TCP_PORT = 6000
DEFAULT_HTTP_PORT = 8080

_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
# An integer over 2**53 has at least 16 digits; digits after a point or before an exponent are
# a float's, which orjson reads as the stdlib does.
_LONG_INTEGER = re.compile(rb"(?<![\d.])\d{16,}(?![\d.eE])")


class WireError(ValueError):
    """A line that is not one acceptable JSON object; `code` is an API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(obj: Any) -> bytes:
    """One JSON value (an object, or a list of answers over HTTP) as one UTF-8 line."""
    try:
        return orjson.dumps(obj, option=_OPTIONS)
    except TypeError:
        # Integers past 64 bits (orjson refuses them); never seen from brender's own code.
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8", "replace") + b"\n"


def _check_depth_and_ints(value: Any, strings: bool = False) -> None:
    """Depth and integer range; with `strings`, also text that is not Unicode (a lone
    surrogate such as "\\ud800", which the stdlib parser lets through and orjson does not)."""
    # Iterative, so a hostile document cannot exhaust the Python stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise WireError("too_large", f"JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            if strings:
                stack.extend((k, depth) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif strings and isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise WireError("bad_json", "invalid JSON: a lone surrogate in a string") from None
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_INT:
            raise WireError("invalid_value", f"integer {item} is out of range (|n| <= 2**53)")


def loads(data: bytes | str, max_size: int = MAX_LINE, walk: bool = True) -> Any:
    """Parse JSON text with brender's limits; raises `WireError` with an API error code.
    `max_size` is the line cap, or an HTTP body's. `walk=False` leaves the tree's depth and
    integer check (`check_tree`, the costly part for a big document) to the caller, which can
    first refuse a request without a valid token."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_size:
        raise WireError("too_large", f"message longer than {max_size} bytes")
    long_number = _LONG_INTEGER.search(raw) is not None
    if long_number:
        # orjson reads integers past 64 bits as floats; the stdlib keeps them exact, so they
        # are refused below instead of slipping through as a float.
        value = _stdlib_loads(raw)
    else:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):  # orjson stops at 1,024 levels
                raise WireError(
                    "too_large", f"JSON nested deeper than {MAX_DEPTH} levels"
                ) from None
            raise WireError("bad_json", f"invalid JSON: {exc}") from None
    if walk:
        check_tree(value, raw)
    return value


@dataclass(frozen=True)
class Scan:
    """What the raw text says about the tree's check, scanned once (a batch shares it)."""

    long_number: bool
    many_brackets: bool

    @classmethod
    def of(cls, raw: bytes) -> Scan:
        brackets = raw.count(b"[") + raw.count(b"{")
        return cls(_LONG_INTEGER.search(raw) is not None, brackets > MAX_DEPTH)

    def check(self, value: Any) -> None:
        """Depth, integer range and lone surrogates of `value`, parsed by `loads`."""
        # Deep nesting needs many brackets: only then is the tree walked.
        if self.long_number or self.many_brackets:
            _check_depth_and_ints(value, strings=self.long_number)


def check_tree(value: Any, raw: bytes) -> None:
    """`Scan.of(raw).check(value)`: the check `loads(walk=False)` left out."""
    Scan.of(raw).check(value)


def _stdlib_loads(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except WireError:
        raise
    except RecursionError:
        raise WireError("too_large", f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise WireError("bad_json", f"invalid JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise WireError("bad_json", f"{name} is not valid JSON")


def decode_message(line: bytes) -> dict[str, Any]:
    """One line of the node protocol (docs/protocol.md), on the hot path of every report.

    orjson's own limits hold (its nesting cap of 1,024, no lone surrogates; an integer past 64
    bits reads as a float), and `brender.messages` then checks every field it reads, integer
    ranges included, so the scans `loads` makes for any JSON (API requests) are left out."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise WireError("bad_json", f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise WireError("bad_request", "a message must be a JSON object")
    return value


def decode(line: bytes | str, walk: bool = True) -> dict[str, Any]:
    """Parse one line that must hold a JSON object (`walk` as for `loads`)."""
    value = loads(line, walk=walk)
    if not isinstance(value, dict):
        raise WireError("bad_request", "a request must be a JSON object")
    return value
