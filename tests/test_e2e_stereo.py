"""A stereo scene saved view by view renders on the farm: real server, real node (warm and
cold), Debian's Blender. Each frame's views lie side by side where the output names them."""

from __future__ import annotations

from pathlib import Path

import pytest
from blender_scene import make_scene
from farmctl import NodeProcess, ServerProcess, job_frames, job_status, wait_for

pytestmark = pytest.mark.blender

STEREO = (
    "s.render.use_multiview = True",
    "s.render.views_format = 'STEREO_3D'",
    "s.render.image_settings.views_format = 'INDIVIDUAL'",
)


@pytest.fixture(scope="module")
def stereo_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stereo") / "stereo.blend"
    return make_scene(path, 1, 4, samples=2, resolution=32, extra=STEREO)


@pytest.mark.parametrize("mode", [[], ["--no-warm"]], ids=["warm", "cold"])
def test_a_stereo_job_renders_every_view_of_every_frame(
    server: ServerProcess, stereo_scene: Path, tmp_path: Path, mode: list[str]
) -> None:
    node = NodeProcess(server.master, "eyes", tmp_path / "node", extra=mode).start()
    out = tmp_path / "out"
    try:
        with server.tcp() as api:
            job = api.ok({"item": "job", "action": "submit", "values": {
                "project": "vr", "sequence": "sq", "shot": "stereo",
                "blend_file": str(stereo_scene), "frame_start": 1, "frame_end": 4,
                "chunk_size": 2, "output": str(out / "####"), "format": "PNG"}})  # fmt: skip
            final = wait_for(
                lambda: (
                    (s := job_status(api, job["id"]))["status"] in ("completed", "failed") and s
                ),
                120,
                0.2,
                "the stereo job to end",
            )
            assert final["status"] == "completed", (final, node.log()[-3000:])
            frames = job_frames(api, job["id"])
            assert [(f["number"], f["output_file"], f["attempts"]) for f in frames] == [
                (n, str(out / f"{n:04d}_L.png"), 1) for n in range(1, 5)
            ]
        views = [f"{n:04d}_{eye}.png" for n in range(1, 5) for eye in "LR"]
        assert sorted(p.name for p in out.iterdir()) == views
        assert all((out / name).stat().st_size > 0 for name in views)
        assert "ignored a `Saved:` line" not in node.log()
    finally:
        node.stop()
