"""Which frame reports a node may make, and what the farm does with one it may not.

A `frame` report counts only for a frame of the chunk the node holds now and only when its
file is the one the chunk's output pattern names for that frame, resolved as Blender resolves
it (brender.framepath): for an uploaded job that is the file in the job's folder of the
server's store, where `PUT /frames/…` put it (services/packed.py checks the PUT the same
way). Anything else is refused: logged at most once a minute per node (with how many were
refused meanwhile) and counted for the node, in memory (`refused_reports` on its
`client read` row; it starts again from 0 when the server restarts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from brender import framepath, messages
from brender.server.live import LiveChunk
from brender.server.quiet import QuietLog

log = logging.getLogger(__name__)


def ordered_output(chunk: LiveChunk) -> tuple[str, str, str]:
    """(output pattern, format, blend file) the chunk was sent with (the job's, when it was
    not sent by this server: reclaimed after a restart)."""
    job = chunk.job
    return chunk.ordered or (job.output, job.format, job.blend_file)


def refusal(chunk: LiveChunk, report: messages.FrameDone) -> str | None:
    """Why this report, for a chunk the node holds, cannot be true; None when it may be."""
    number = report.frame
    if number not in chunk.frames:
        return f"frame {number} is not one of chunk {chunk.id}'s"
    output, file_format, blend_file = ordered_output(chunk)
    shared = not chunk.job.manifest  # an uploaded job's frame is one file (node/runner.py)
    path = report.output_file
    if not framepath.names_frame(output, number, file_format, path, blend_file, views=shared):
        expected = framepath.expected_file(output, number, file_format, blend_file)
        return (
            f"frame {number} of chunk {chunk.id} was reported saved to"
            f" {path!r}, not to {expected!r}"
        )
    return None


@dataclass
class ReportGuard:
    """The count of refused reports per node, and a log that says so once a minute."""

    quiet: QuietLog = field(default_factory=QuietLog)
    refused: dict[int, int] = field(default_factory=dict)

    def check(
        self, client_id: int, name: str, chunk: LiveChunk, report: messages.FrameDone
    ) -> str | None:
        """Why this report of a chunk the node holds cannot be true (counted and logged), or
        None when it may be."""
        reason = refusal(chunk, report)
        if reason is None:
            return None
        self.refused[client_id] = self.refused.get(client_id, 0) + 1
        self.note(client_id, f"refused a frame report from client {client_id} ({name}): {reason}")
        return reason

    def ignored(self, client_id: int, name: str, report: messages.FrameDone) -> None:
        """A duplicate or a chunk the node no longer holds (a resend after a reconnect is
        one): not counted, logged as the refused are."""
        self.note(
            client_id,
            f"ignored a report of frame {report.frame} (chunk {report.chunk_id}) from client"
            f" {client_id} ({name}): not a frame it renders now",
            logging.INFO,
        )

    def note(self, client_id: int, text: str, level: int = logging.WARNING) -> None:
        """Log `text` unless this node's reports were logged about less than a minute ago."""
        self.quiet.note((client_id, "reports"), log, level, "%s", text)

    def count(self, client_id: int) -> int:
        return self.refused.get(client_id, 0)
