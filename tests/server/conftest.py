"""The services' tests run on a fresh SQLite file each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from brender.server.db import open_database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[pw.Database]:
    database = open_database(f"sqlite:///{tmp_path / 'farm.db'}")
    yield database
    database.close()
