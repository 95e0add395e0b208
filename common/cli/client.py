"""The farm's HTTP API as the command line uses it: requests, and the file endpoints of
`brender.transfer` (uploads resumed, downloads streamed), shared with the add-on."""

from __future__ import annotations

import urllib.parse
from typing import Any

from brender import __version__
from brender.tls import ClientTLS
from brender.transfer import FarmFiles, Refused, TransferError

__all__ = ["CliError", "FarmClient", "Refused", "TransferError", "farm_url_wants_tls"]


class CliError(Exception):
    """Something the command line reports in one line and exits non-zero for."""


def farm_url_wants_tls(url: str) -> bool:
    return url.strip().lower().startswith("https://")


class FarmClient(FarmFiles):
    """`--farm URL`: `POST /api` and the file endpoints."""

    def __init__(self, url: str, token: str | None, tls: ClientTLS | None = None) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"--farm must be an http:// or https:// address, not {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        super().__init__(
            parts.scheme, parts.hostname, port, token, tls, user_agent=f"brender/{__version__}"
        )

    def answer(self, status: int, raw: bytes) -> Any:
        try:
            return super().answer(status, raw)
        except Refused as exc:
            if exc.code != "unauthorized":
                raise
            text = f"the farm refused the token: {exc.message} (--token / BRENDER_TOKEN)"
            raise Refused(exc.status, exc.code, text) from None

    def api(self, request: dict[str, Any]) -> Any:
        return self.json("POST", "/api", request)

    def get_frame(self, job_id: int, number: int, dest: Any) -> str:
        """Download a done frame to `dest` (via a temporary file); answers its SHA-256."""
        return self.get_file(f"/frames/{job_id}/{number}", dest, f"frame {number}")
