"""`GET /outputs/<job>/movie`: a job's movie, once made (services/outputs.py says where it is).
The token as `Authorization: Bearer …` only (FileHandler.authed); the dashboard's link fetches
the movie with that header and saves it from a `blob:` URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from brender.server.errors import FarmError
from brender.server.farm import Farm
from brender.server.services import outputs
from brender.server.uploads import FileHandler


class MovieHandler(FileHandler):
    def initialize(self, farm: Farm) -> None:  # type: ignore[override]
        self.farm = farm

    async def get(self, job: str) -> None:
        await self._send(int(job), head=False)

    async def head(self, job: str) -> None:
        await self._send(int(job), head=True)

    async def _send(self, job_id: int, head: bool) -> None:
        if not self.authed():
            return
        try:
            path = outputs.movie_file(job_id)  # one row by its key, and a stat
        except FarmError as exc:
            return self.fail_with(exc)
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(path.name)}")
        self.set_header("X-Output-Name", path.name)
        await self.send_file(path, head)


def routes(farm: Farm) -> list[tuple[str, type, dict[str, Any]]]:
    return [(r"/outputs/([0-9]{1,15})/movie", MovieHandler, {"farm": farm})]
