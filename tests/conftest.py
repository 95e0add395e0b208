"""Fixtures shared by all of brender's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from blender_scene import BLENDER, blender_available, make_scene
from farmctl import ServerProcess

if TYPE_CHECKING:
    from tlscerts import Certs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "blender: the test runs the real Blender")


@pytest.fixture(scope="session")
def blender() -> str:
    """The real Blender executable; the test is skipped when there is none."""
    if not blender_available():
        if os.environ.get("CI"):
            pytest.fail(f"no Blender at {BLENDER}: .ci/run must install Debian's blender")
        pytest.skip(f"no Blender at {BLENDER} (set BRENDER_TEST_BLENDER)")
    return BLENDER


@pytest.fixture(scope="session")
def scene(blender: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64, 4-sample Cycles scene, frames 1-12: ~0.2 s per frame after start-up."""
    return make_scene(tmp_path_factory.mktemp("scene") / "scene.blend", blender=blender)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own on free loopback ports, no token (a module may define its own)."""
    srv = ServerProcess(tmp_path / "server").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, a farm certificate it signed for 127.0.0.1, and another CA (tests/tlscerts.py)."""
    from tlscerts import make_certs  # cryptography: only for the tests that use TLS

    return make_certs(tmp_path_factory.mktemp("certs"))
