"""The farm's file endpoints for the add-on: `brender.transfer`, the code `brender submit` and
`brender download` use too (bundled in `_shared/` by build.py), with its errors put in the
artist's words. No `bpy` here; used from the worker thread only.

Uploads go as the CLI's do: only the blobs the farm lacks, each resumed from what the farm
kept of a try that broke off. The `sent` callbacks are the worker's progress, which raises
`comms.Stopped` when the add-on is disabled mid-transfer: that stops the transfer there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .client import FarmClient, refused, shared, unreachable
from .errors import FarmAnswerError, FarmError

log = logging.getLogger(__name__)

TRANSFER_TIMEOUT = 60.0  # seconds a block may take: files are large, the farm is busy

Sent = Callable[[int], None]
"""Told the size of each block as it goes (progress); it may raise to stop the transfer."""


class Cut(FarmError):
    """A transfer broke off midway (the connection went); another try may resume it."""


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class Files:
    """Blob uploads and frame downloads for the farm `client` talks to."""

    def __init__(self, client: FarmClient) -> None:
        self.client = client
        self.base = client.base
        self.shared = shared("transfer")
        self.remote = self.shared.FarmFiles(
            client.scheme, client.host, client.port, client.token or None, client.tls,
            user_agent=f"brender-addon/{__version__}", timeout=client.timeout,
            transfer_timeout=TRANSFER_TIMEOUT,
        )  # fmt: skip

    @contextmanager
    def _words(self, what: str = "the upload") -> Iterator[None]:
        """brender.transfer's errors as the add-on's FarmErrors."""
        t, address, has_token = self.shared, self.client.address, bool(self.client.token)
        try:
            yield
        except t.Refused as exc:
            raise refused(
                {"code": exc.code, "message": exc.message}, address, has_token, what
            ) from None
        except t.Unreachable as exc:
            raise unreachable(address, exc.cause) from None
        except t.Cut as exc:
            raise Cut(_capital(str(exc))) from None
        except t.NotAFarm:
            raise FarmAnswerError(
                f"Something answered at {address}, but it is not a brender farm — check the address"
            ) from None
        except t.TransferError as exc:  # TooMuch: over a cap or the quota
            raise FarmError(_capital(str(exc))) from None

    def stats(self) -> dict[str, Any]:
        """The store: `bytes`, `max_file_size`, `quota` (0 for none)."""
        with self._words():
            return dict(self.remote.stats())

    def missing(self, manifest: dict[str, Any]) -> list[str]:
        """The SHA-256 of each blob of `manifest` the farm lacks."""
        with self._words():
            return list(self.remote.missing(manifest))

    def held(self, sha: str) -> int:
        """Bytes of `sha` the farm kept from an upload that was cut off (0 if none)."""
        with self._words():
            return int(self.remote.held(sha))

    def put_blob(self, sha: str, path: Path, sent: Sent) -> int:
        """Upload `path` as blob `sha`, resuming where a try that broke off stopped; answers
        the bytes sent. A refusal (wrong hash, over the cap or the quota) is not retried."""

        def retrying() -> None:
            log.info("brender: upload of %s cut short, resuming", path.name)

        with self._words(path.name):
            return int(self.remote.put_blob(sha, path, sent, retrying))

    def send_missing(
        self, root: Path, manifest: Any, limits: dict[str, Any], meter: Any
    ) -> tuple[int, int, int]:
        """brender.transfer's `send_missing`: the blobs the farm lacks, within its limits."""
        with self._words():
            count, sent, had = self.remote.send_missing(root, manifest, limits, meter)
            return int(count), int(sent), int(had)

    def frame_sha(self, job_id: int, number: int) -> str | None:
        """The SHA-256 of a done frame the farm holds (None when it has none)."""
        with self._words(f"frame {number}"):
            sha = self.remote.frame_sha(job_id, number)
            return None if sha is None else str(sha)

    def get_frame(self, job_id: int, number: int, dest: Path, sent: Sent) -> str:
        """Download a done frame to `dest` through a temporary file; answers its SHA-256."""
        with self._words(f"frame {number}"):
            return str(
                self.remote.get_file(f"/frames/{job_id}/{number}", dest, f"frame {number}", sent)
            )


def sha256_of(path: Path) -> str:
    """A file's SHA-256 (brender.manifest's `hash_file`)."""
    return str(shared("manifest").hash_file(path).sha256)
