"""Nodes and jobs made straight through the services, for the services' tests."""

from __future__ import annotations

from pathlib import Path

from brender.server.models import Job
from brender.server.services import clients, jobs


def make_node(name: str) -> int:
    return int(clients.register({"node_id": f"id-{name}", "name": name}).id)


def make_job(tmp_path: Path, **values: object) -> Job:
    base = {
        "project": "p",
        "sequence": "s",
        "shot": "sh",
        "blend_file": "/x.blend",
        "frame_start": 1,
        "frame_end": 6,
        "chunk_size": 3,
    }
    return jobs.submit({**base, **values}, tmp_path)
