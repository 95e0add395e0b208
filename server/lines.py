"""Reading newline-delimited messages from a Tornado stream with a hard cap per line.

Tornado's own `read_until(max_bytes=…)` closes the stream when the cap is hit, before the
server can say why; this reader lets the caller answer with an error first.
"""

from __future__ import annotations

from tornado.iostream import IOStream

from brender import wire

CHUNK = 64 * 1024


class LineTooLong(Exception):
    """The peer sent more than `wire.MAX_LINE` bytes without a newline."""


class LineReader:
    def __init__(self, stream: IOStream, max_line: int = wire.MAX_LINE) -> None:
        self.stream = stream
        self.max_line = max_line
        self._buffer = bytearray()

    async def readline(self) -> bytes:
        """The next line without its newline; raises StreamClosedError at the end."""
        start = 0
        while True:
            pos = self._buffer.find(b"\n", start)
            if pos > self.max_line or (pos < 0 and len(self._buffer) > self.max_line):
                self._buffer.clear()
                raise LineTooLong(f"line longer than {self.max_line} bytes")
            if pos >= 0:
                line = bytes(self._buffer[:pos])
                del self._buffer[: pos + 1]
                return line.rstrip(b"\r")
            start = len(self._buffer)
            self._buffer += await self.stream.read_bytes(CHUNK, partial=True)

    async def readlines(self) -> list[bytes]:
        """Every complete line in the buffer (at least one, reading if need be): a peer that
        sent many lines at once has them all handled in one go."""
        lines = [await self.readline()]
        buffer = self._buffer
        start = 0
        while True:
            pos = buffer.find(b"\n", start)
            if pos < 0 or pos - start > self.max_line:
                break  # no more whole lines (an over-long one is refused by the next readline)
            lines.append(bytes(buffer[start:pos]).rstrip(b"\r"))
            start = pos + 1
        del buffer[:start]
        return lines

    def buffered(self) -> bool:
        return bool(self._buffer)
