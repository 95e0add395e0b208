"""The add-on in real Blender (the `bpy` 4.5 wheel), against a real brender-server and node.

Each Blender session runs in a child process (bpy_session.py) with a deadline: a session that
leaves a class registered can hang on exit, and that must fail the test, not hang the run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from addon_harness import build_zip, need, run_bpy
from blender_scene import make_linked_scene
from farmctl import NodeProcess, ServerProcess, wait_for

ALL_CLASSES = [
    "BRENDER_OT_submit_job", "BRENDER_OT_test_connection", "BRENDER_OT_refresh_jobs",
    "BRENDER_OT_job_action", "BRENDER_OT_download_frames", "BRENDER_OT_notify",
    "BRENDER_OT_open_folder", "BRENDER_OT_open_last_frame", "BRENDER_PT_submit",
    "BRENDER_PT_output_submit", "BRENDER_PT_jobs", "BRENDER_PG_submit", "BrenderPreferences",
]  # fmt: skip
NOTHING_LEFT = {"classes": [], "scene_property": False, "timer": False, "threads": [],
                "enabled": False}  # fmt: skip


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("bpy", "the Blender tests")
    return build_zip(tmp_path_factory.mktemp("dist"))


def address(server: ServerProcess) -> str:
    return server.http_url.removeprefix("http://")


def jobs_on(server: ServerProcess, blend_file: Path, shot: str) -> list[dict[str, Any]]:
    """The farm's own record: its jobs of this .blend file under this shot."""
    request = {"item": "job", "action": "read", "filters": {"blend_file": str(blend_file)}}
    answer = server.http(request)
    assert answer["ok"], answer
    return [job for job in answer["data"] if job["shot"] == shot]


def test_submit_from_blender_then_farm_stopped(addon_zip: Path, server: ServerProcess,
                                              tmp_path: Path) -> None:  # fmt: skip
    blend = tmp_path / "films" / "spring" / "sq01_sh010_light.blend"
    blend.parent.mkdir(parents=True)
    args = {"zip": str(addon_zip), "address": address(server), "blend": str(blend),
            "frame_start": 5, "frame_end": 9, "output": "//renders/####"}  # fmt: skip
    out = run_bpy("submit", args, tmp_path / "home")

    assert out["installed"]["classes"] == ALL_CLASSES
    assert out["installed"]["scene_property"] and out["installed"]["timer"]
    assert out["use_upload_default"] is True  # sent to the farm unless told it is shared
    assert out["names"] == ["spring", "sq01", "sh010"]
    assert out["submit"]["result"] == ["FINISHED"], out["output"]
    assert "submitted: 5 frames" in out["output"]
    assert out["test_connection"]["result"] == ["FINISHED"]

    # The farm has the job: this blend file, this frame range, the scene's output made absolute.
    [job] = jobs_on(server, blend, "sh010")
    assert (job["frame_start"], job["frame_end"]) == (5, 9)
    assert (job["project"], job["sequence"]) == ("spring", "sq01")
    assert job["output"] == str(blend.parent / "renders" / "####")
    assert job["format"] == "PNG" and job["priority"] == 50
    assert out["jobs"][0]["id"] == job["id"] and out["jobs"][0]["total"] == 5
    assert out["projects"] == ["spring"]
    assert ["progress", 0.0, "0/5 frames · —"] in out["drawn_jobs"]  # no node: no estimate
    assert ["operator", "brender.submit_job"] in out["drawn_submit"]
    assert out["pause"]["result"] == ["FINISHED"] and out["resume"]["result"] == ["FINISHED"]

    # Disable leaves nothing behind; enabling again works as the first time.
    assert out["disabled"] == NOTHING_LEFT
    assert out["enabled_again"]["classes"] == ALL_CLASSES and out["enabled_again"]["timer"]
    assert out["copied"] == [5, 9, "//renders/####", "PNG"]
    assert ["prop", "output"] in out["drawn_output_panel"]
    assert out["submit_again"]["result"] == ["FINISHED"], out["output"]
    [again] = jobs_on(server, blend, "sh020")
    assert again["priority"] == 70 and (again["frame_start"], again["frame_end"]) == (5, 9)
    assert again["output"] == job["output"]
    assert out["end"] == NOTHING_LEFT

    # The farm stops: the same operator says so in words, and nothing crashes. (Called from
    # Python, bpy.ops turns an operator's ERROR report into a RuntimeError holding just that
    # message; an exception inside the operator would show a Python traceback instead.)
    server.stop()
    out = run_bpy("stopped", {"zip": str(addon_zip), "address": args["address"],
                              "blend": str(blend)}, tmp_path / "home2")  # fmt: skip
    unreachable = f"Cannot reach the farm at {args['address']} — is brender-server running?"
    for key in ("submit", "test_connection", "refresh"):
        assert out[key] == {"result": [], "error": f"Error: {unreachable}\n"}, out["output"]
    assert out["board_error"] == unreachable
    drawn = " ".join(e[1] for e in out["drawn_jobs"] if e[0] == "label")
    assert "Cannot reach the farm at" in drawn
    assert "Set the farm's address" in out["no_address"]["error"]
    assert "Save the file first" in out["unsaved"]["error"]
    assert "stereo views as separate files" in out["stereo_upload"]["error"], out["output"]
    assert not out["stereo_upload_saved"], "the file was saved for a job that was never sent"
    assert "Traceback" not in out["output"]
    assert out["after_errors"]["classes"] == ALL_CLASSES
    assert out["end"] == NOTHING_LEFT
    # Neither the timer nor disabling waits for a farm that never answers. Checked by what is
    # still out, not by timings (printed only: a busy machine is slow, not wrong).
    print(f"tick {out['tick_seconds']:.3f} s, disable {out['disable_seconds']:.2f} s")
    assert out["refresh_pending"], "the timer waited for the refresh it posted"
    assert out["disabled_in_flight"]["threads"] == ["brender-farm"], out["disabled_in_flight"]
    assert {**out["disabled_in_flight"], "threads": []} == NOTHING_LEFT


SCENE_SCRIPT = """
import bpy
s = bpy.context.scene
s.render.engine = 'CYCLES'
s.cycles.samples = 4
s.cycles.use_denoising = False
s.render.resolution_x = s.render.resolution_y = 64
s.render.resolution_percentage = 100
s.frame_start, s.frame_end = 1, {frames}
s.render.filepath = {output!r}
s.render.image_settings.file_format = 'PNG'
bpy.ops.wm.save_as_mainfile(filepath={path!r})
"""


def make_old_scene(blender: str, path: Path, output: str, frames: int) -> Path:
    """A scene saved by Debian's Blender (3.4 cannot read files that 4.5 saves)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    script = SCENE_SCRIPT.format(frames=frames, output=output, path=str(path))
    done = subprocess.run([blender, "-b", "--factory-startup", "--python-exit-code", "1",
                           "--python-expr", script], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and path.is_file(), done.stdout + done.stderr
    return path


@pytest.mark.blender
def test_node_renders_the_submitted_job(addon_zip: Path, server: ServerProcess, blender: str,
                                        tmp_path: Path) -> None:  # fmt: skip
    out_dir = tmp_path / "frames"
    blend = make_old_scene(blender, tmp_path / "proj" / "sh030.blend", str(out_dir / "####"), 4)
    node = NodeProcess(server.master, "addon-node", tmp_path / "node").start()
    try:
        wait_for(lambda: any(c["online"] for c in server.http(
            {"item": "client", "action": "read"})["data"]), 60, what="the node online")  # fmt: skip
        out = run_bpy("follow", {"zip": str(addon_zip), "address": address(server),
                                 "blend": str(blend)}, tmp_path / "home")  # fmt: skip
    finally:
        node.stop()
    assert out["dirty"] is False
    assert out["submit"]["result"] == ["FINISHED"], out["output"]
    job = out["jobs"][0]
    assert job["blend_file"] == str(blend), out["jobs"]
    assert job["status"] == "completed", f"{job}\n{node.log()[-3000:]}"
    assert (job["done"], job["total"], job["progress"]) == (4, 4, 1.0)
    assert ["progress", 1.0, "4/4 frames"] in out["drawn_jobs"]
    assert sorted(p.name for p in out_dir.glob("*.png")) == [f"{n:04d}.png" for n in range(1, 5)]
    assert out["end"] == NOTHING_LEFT


@pytest.mark.blender
def test_the_artist_is_told_when_a_submitted_job_completes(
    addon_zip: Path, server: ServerProcess, blender: str, tmp_path: Path
) -> None:
    out_dir = tmp_path / "frames"
    blend = make_old_scene(blender, tmp_path / "proj" / "sh040.blend", str(out_dir / "####"), 3)
    node = NodeProcess(server.master, "word-node", tmp_path / "node").start()
    try:
        wait_for(lambda: any(c["online"] for c in server.http(
            {"item": "client", "action": "read"})["data"]), 60, what="the node online")  # fmt: skip
        out = run_bpy("word", {"zip": str(addon_zip), "address": address(server),
                               "blend": str(blend)}, tmp_path / "home")  # fmt: skip
    finally:
        node.stop()
    assert out["submit"]["result"] == ["FINISHED"], out["output"]
    assert len(out["watched"]) == 1
    (notice,) = out["notices"]
    assert notice["job_id"] == out["watched"][0] and notice["status"] == "completed", notice
    assert notice["level"] == "INFO" and "completed: 3 frame(s)" in notice["text"], notice
    assert notice["output"] == str(out_dir / "####")
    # Told without a jobs panel on screen: the board never refreshed, the watch did.
    assert out["board_refreshed"] is False
    # The report went to Blender's log, the status bar's source (no dialog in background).
    assert notice["text"] in out["output"], out["output"]
    assert ["operator", "brender.open_folder"] in out["drawn_jobs"]
    assert ["operator", "brender.open_last_frame"] in out["drawn_jobs"]
    assert out["last_frame"]["result"] == ["FINISHED"], out
    assert str(out_dir / "0003.png") in out["images"], out["images"]
    assert "has not ended since this Blender submitted it" in out["unknown"]["error"]
    assert out["end"] == NOTHING_LEFT


def labels(drawn: list[list[Any]]) -> str:
    return " ".join(entry[1] for entry in drawn if entry[0] == "label")


@pytest.mark.blender
def test_the_artist_hears_that_no_node_can_open_the_file(addon_zip: Path, server: ServerProcess,
                                                         tmp_path: Path) -> None:  # fmt: skip
    blend = tmp_path / "proj" / "new.blend"
    blend.parent.mkdir()
    node = NodeProcess(server.master, "debian", tmp_path / "node").start()  # Blender 3.4 only
    try:
        wait_for(lambda: any(c["online"] for c in server.http(
            {"item": "client", "action": "read"})["data"]), 60, what="the node online")  # fmt: skip
        out = run_bpy("versions", {"zip": str(addon_zip), "address": address(server),
                                   "blend": str(blend)}, tmp_path / "home")  # fmt: skip
        log = node.log()
        [job] = server.http({"item": "job", "action": "read",
                             "filters": {"blend_file": str(blend)}})["data"]  # fmt: skip
    finally:
        node.stop()
    words = ("No node on the farm can open files from Blender 4.5: nodes have 3.4.1. "
             "Add a node with Blender 4.5 or `--blender bpy`.")  # fmt: skip
    # First press: nothing is sent; the status bar and the panel say why, in words.
    assert out["held"]["result"] == ["CANCELLED"], out["output"]
    assert f"Not submitted: {words}" in out["output"]
    assert out["held_text"] == words
    assert words in labels(out["drawn_submit"])
    assert out["drawn_submit"].count(["operator", "brender.submit_job"]) == 2  # + Submit Anyway
    assert out["jobs_when_held"] == []  # the farm's own record, read from Blender
    # Submit Anyway: sent, with the warning about the Python driver that will not run.
    assert out["anyway"]["result"] == ["FINISHED"], out["output"]
    assert "Python driver (Cube location[2])" in out["output"]
    assert out["held_after"] == ""
    assert (job["status"], job["file_version"], job["autoexec"]) == ("queued", "4.5", False)
    assert job["waiting"] == "needs Blender ≥ 4.5; online nodes have 3.4.1"
    # The jobs panel shows the file's Blender and why the job waits.
    assert out["jobs"][0]["waiting"] == job["waiting"]
    drawn = labels(out["drawn_jobs"])
    assert "Blender 4.5 file" in drawn and f"Waiting: {job['waiting']}" in drawn
    assert "Submit Anyway" not in str(out["drawn_submit_after"])
    assert out["drawn_submit_after"].count(["operator", "brender.submit_job"]) == 1
    assert "chunk " not in log  # the node was given nothing
    assert out["end"] == NOTHING_LEFT


TOKEN = "addon-s3cret"


def same_pixels(a: Path, b: Path) -> bool:
    from PIL import Image, ImageChops

    with Image.open(a) as x, Image.open(b) as y:
        diff = ImageChops.difference(x.convert("RGBA"), y.convert("RGBA"))
        return diff.getbbox(alpha_only=False) is None


@pytest.mark.blender
def test_files_are_packed_uploaded_rendered_and_downloaded(addon_zip: Path, blender: str,
                                                           tmp_path: Path) -> None:  # fmt: skip
    """No shared storage: the add-on packs a scene that links a library from another folder
    and uses a texture from a third, uploads what the farm lacks, the node renders in its own
    work dir after the artist's library and texture folders are gone, and Download Frames
    brings back frames pixel-equal to Blender rendering the original in place."""
    main, lib, tex = make_linked_scene(tmp_path / "artist", 1, 2)
    reference = tmp_path / "reference"
    subprocess.run([blender, "-b", str(main), "-o", str(reference / "####"), "-F", "PNG",
                    "-x", "1", "-s", "1", "-e", "2", "-a"], capture_output=True, timeout=120,
                   check=True)  # fmt: skip
    server = ServerProcess(tmp_path / "server", token=TOKEN).start()
    node = NodeProcess(server.master, "far-1", tmp_path / "node-work", token=TOKEN).start()
    downloaded = tmp_path / "downloaded"
    try:
        wait_for(lambda: any(c["online"] for c in server.http(
            {"item": "client", "action": "read"})["data"]), 60, what="the node online")  # fmt: skip
        args = {"zip": str(addon_zip), "address": address(server), "token": TOKEN,
                "blend": str(main), "download": str(downloaded),
                "move_away": [str(lib.parent), str(tex.parent)]}  # fmt: skip
        out = run_bpy("upload", args, tmp_path / "home", timeout=300)
        log = node.log()
    finally:
        node.stop()
        server.stop()
    assert out["installed"]["classes"] == ALL_CLASSES
    assert out["wheel"]["sites"] and out["wheel"]["version"] == "1.23", out["wheel"]
    assert out["wheel"]["file"].startswith(str(tmp_path / "home")), out["wheel"]
    assert out["use_upload"] is True
    assert ["prop", "use_upload"] in out["drawn_submit"]
    assert out["submit"]["result"] == ["FINISHED"], out["output"]
    assert "Uploaded 3 file(s)" in out["output"] and "0 already on the farm" in out["output"]
    texts = [text for text, _ in out["progress"]]
    assert texts[0].startswith("Packing sh010.blend"), texts
    assert any(t.startswith("Uploading 3/3 files") for t in texts), texts
    [job] = out["jobs"]
    assert job["status"] == "completed", f"{job}\n{log[-3000:]}"
    assert job["blend_file"] == "sh010.blend"  # its path in the packed tree
    assert ["operator", "brender.download_frames"] in out["drawn_jobs"]
    assert out["download"]["result"] == ["FINISHED"], out["output"]
    assert "2 frame(s) downloaded" in out["output"]
    assert out["download_again"]["result"] == ["FINISHED"]
    assert "0 frame(s) downloaded" in out["output"] and "2 already there" in out["output"]
    assert sorted(p.name for p in downloaded.iterdir()) == ["0001.png", "0002.png"]
    for name in ("0001.png", "0002.png"):
        assert same_pixels(downloaded / name, reference / name), name
    assert out["end"] == NOTHING_LEFT
    print(f"pack + upload + submit: {out['submit_seconds']:.2f} s; progress: {texts}")


def test_missing_files_are_named_and_held(addon_zip: Path, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", token=TOKEN).start()
    blend = tmp_path / "proj" / "sh040.blend"
    texture = tmp_path / "textures" / "wood.png"
    texture.parent.mkdir()
    blend.parent.mkdir()
    # A real PNG that the scene loads, then removed before the submit.
    from PIL import Image

    Image.new("RGB", (4, 4), (200, 120, 40)).save(texture)
    try:
        out = run_bpy("missing", {"zip": str(addon_zip), "address": address(server),
                                  "token": TOKEN, "blend": str(blend),
                                  "texture": str(texture)}, tmp_path / "home")  # fmt: skip
        jobs = server.http({"item": "job", "action": "read"})["data"]
    finally:
        server.stop()
    said = f"1 file this .blend uses is missing: {texture}"
    assert out["held"]["result"] == ["CANCELLED"], out["output"]
    assert f"Not submitted: {said}" in out["output"]
    assert said in out["held_text"]
    assert out["drawn_submit"].count(["operator", "brender.submit_job"]) == 2  # + Submit Anyway
    assert out["anyway"]["result"] == ["FINISHED"], out["output"]
    assert "Left out 1 missing file(s)" in out["output"]
    assert out["held_after"] == ""
    [job] = jobs  # only the confirmed submit made a job
    assert job["storage"] == "upload" and job["blend_file"] == "sh040.blend"
    assert out["end"] == NOTHING_LEFT
