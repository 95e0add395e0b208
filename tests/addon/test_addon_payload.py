"""The `job submit` request the add-on builds from a scene's settings, without Blender."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace

import addon_harness  # puts the repository root on sys.path
import pytest

from addon import payload
from addon.errors import FarmError, SettingsError

SETTINGS = payload.SubmitSettings(
    blend_file="/films/spring/sq01/sh010.blend", project="spring", sequence="sq01",
    shot="sh010", frame_start=1, frame_end=48,
)  # fmt: skip


def test_the_plain_modules_import_without_blender() -> None:
    # In a fresh Python where `import bpy` fails, as on a machine without Blender.
    code = ("import sys; sys.modules['bpy'] = None; "
            "import addon, addon.payload, addon.client, addon.jobs, addon.comms, addon.errors, "
            "addon.python_use")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=addon_harness.ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("blend_file", "scene", "expected"),
    [
        ("/films/spring/sq01_sh010_light.blend", "Scene", ("spring", "sq01", "sh010")),
        ("/films/spring/sq02/sh020.blend", "Scene", ("spring", "sq02", "sh020")),
        ("/films/spring/shots/sh030-anim.blend", "Scene", ("spring", "Scene", "sh030")),
        ("/home/ana/robot walk.blend", "Walk cycle", ("ana", "Walk cycle", "robot walk")),
        ("/robot.blend", "Scene", ("default", "Scene", "robot")),
        ("C:\\Projects\\Spring\\SQ01_SH010.blend", "Scene", ("Spring", "SQ01", "SH010")),
        ("", "", ("default", "main", "untitled")),
    ],
)
def test_default_names_come_from_the_file_and_the_scene(
    blend_file: str, scene: str, expected: tuple[str, str, str]
) -> None:
    assert payload.default_names(blend_file, scene) == expected


@pytest.mark.parametrize(
    ("output", "blend_file", "expected"),
    [
        ("//render/####", "/films/a/sh010.blend", "/films/a/render/####"),
        ("//", "/films/a/sh010.blend", "/films/a/"),
        ("//render/", "/films/a/sh010.blend", "/films/a/render/"),
        ("/tmp/", "/films/a/sh010.blend", "/tmp/"),
        ("  /renders/sh010/####  ", "/films/a/sh010.blend", "/renders/sh010/####"),
        ("", "/films/a/sh010.blend", ""),
        ("//out\\####", "D:\\films\\sh010.blend", "D:\\films\\out\\####"),
    ],
)
def test_output_paths_are_made_absolute(output: str, blend_file: str, expected: str) -> None:
    assert payload.resolve_output(output, blend_file) == expected


def test_values_carry_the_scene_settings() -> None:
    settings = replace(SETTINGS, frame_start=10, frame_end=20, chunk_size=5, priority=80,
                       output="//render/####", file_format="OPEN_EXR", paused=True,
                       job_name=" lighting v2 ")  # fmt: skip
    assert payload.submit_request(settings) == {
        "item": "job", "action": "submit",
        "values": {
            "project": "spring", "sequence": "sq01", "shot": "sh010",
            "blend_file": "/films/spring/sq01/sh010.blend", "frame_start": 10, "frame_end": 20,
            "chunk_size": 5, "priority": 80, "output": "/films/spring/sq01/render/####",
            "format": "OPEN_EXR", "paused": True, "name": "lighting v2",
        },
    }  # fmt: skip


def test_the_farm_picks_what_is_left_empty() -> None:
    values = payload.submit_values(SETTINGS)
    assert "chunk_size" not in values and "output" not in values and "name" not in values
    assert values["priority"] == 50 and values["paused"] is False and values["format"] == "PNG"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"blend_file": ""}, "Save the file first"),
        ({"shot": "  "}, "Give the job a shot name"),
        ({"frame_start": 10, "frame_end": 9}, "ends (frame 9) before it starts (frame 10)"),
        ({"chunk_size": -1}, "1 or more"),
        ({"priority": 101}, "from 0 to 100"),
        ({"file_format": "FFMPEG", "movie": {"codec": "NONE"}}, "has no video codec"),
        ({"file_format": "XYZ"}, "cannot write XYZ images"),
    ],
)
def test_bad_settings_are_refused_in_words(change: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as info:
        payload.submit_values(replace(SETTINGS, **change))  # type: ignore[arg-type]
    assert isinstance(info.value, FarmError)


def test_a_movie_output_is_sent_with_its_container_codec_and_rate() -> None:
    movie = {"container": "MPEG4", "codec": "H264", "fps": 23.976}
    values = payload.submit_values(replace(SETTINGS, file_format="FFMPEG", movie=movie))
    assert values["format"] == "FFMPEG" and values["movie"] == movie
    avi = payload.submit_values(replace(SETTINGS, file_format="AVI_JPEG", movie={"fps": 25.0}))
    assert avi["movie"] == {"fps": 25.0}
    assert "movie" not in payload.submit_values(SETTINGS)


def test_a_single_frame_and_negative_frames_are_fine() -> None:
    values = payload.submit_values(replace(SETTINGS, frame_start=-5, frame_end=-5))
    assert (values["frame_start"], values["frame_end"]) == (-5, -5)
