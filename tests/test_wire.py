"""The shared wire format: limits and error codes both ends rely on."""

from __future__ import annotations

import pytest

from brender import wire


def test_round_trip() -> None:
    obj = {"type": "frame", "chunk_id": 7, "frame": 5, "output_file": "/r/0005.png", "t": 0.5}
    line = wire.encode(obj)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert wire.decode(line) == obj


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{broken", "bad_json"),
        (b"\xff\xfe{}", "bad_json"),
        (b"[1, 2]", "bad_request"),
        (b"42", "bad_request"),
        (b"NaN", "bad_json"),
        (b'{"a": Infinity}', "bad_json"),
        (b"[" * 5000 + b"]" * 5000, "too_large"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "too_large"),
        (b'{"n": 1' + b"0" * 400 + b"}", "invalid_value"),
        (b"{" + b" " * (wire.MAX_LINE + 1) + b"}", "too_large"),
    ],
)
def test_refused(data: bytes, code: str) -> None:
    with pytest.raises(wire.WireError) as info:
        wire.decode(data)
    assert info.value.code == code


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"name": "' + "[" * 100 + '"}'
    assert wire.decode(text) == {"name": "[" * 100}
