"""`brender submit` and `brender download`: a farm without shared storage, from a shell.

    brender submit shot.blend --farm http://farm:8080 --frames 1-24
    brender download 7 renders/ --farm http://farm:8080 --wait

Errors are one line on stderr and a non-zero exit; progress goes to stderr; the last line
on stdout is the job, as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brender import __version__
from brender.cli.client import CliError, FarmClient, TransferError, farm_url_wants_tls
from brender.manifest import hash_file
from brender.sizes import human
from brender.tls import TLSSettingsError, find_client_tls
from brender.tokens import TokenFileError, find_token

DEFAULT_FARM = "http://127.0.0.1:8080"
FINAL = ("completed", "failed", "canceled")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brender", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"brender {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--farm",
        default=os.environ.get("BRENDER_FARM", DEFAULT_FARM),
        help=f"the farm's HTTP address (default {DEFAULT_FARM}; BRENDER_FARM)",
    )
    common.add_argument("--token", help="the farm's token (BRENDER_TOKEN; shows in `ps`)")
    common.add_argument(
        "--token-file", metavar="PATH", help="read the token from this file (BRENDER_TOKEN_FILE)"
    )
    common.add_argument(
        "--tls-ca",
        metavar="PATH",
        help="for an https:// farm: the CA file that signed its certificate (BRENDER_TLS_CA; "
        "default: the system's CAs)",
    )
    common.add_argument(
        "--tls-fingerprint",
        metavar="SHA256",
        help="for an https:// farm: the SHA-256 fingerprint of its self-signed certificate "
        "(BRENDER_TLS_FINGERPRINT)",
    )

    s = sub.add_parser("submit", parents=[common], help="pack, upload and submit a .blend")
    s.add_argument("file", type=Path, help="the .blend to render")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument(
        "--upload", dest="upload", action="store_true", default=True,
        help="pack the file with what it uses and upload what the farm lacks (default)",
    )  # fmt: skip
    mode.add_argument(
        "--shared", dest="upload", action="store_false",
        help="every node sees the file at this same path: send only the path",
    )  # fmt: skip
    s.add_argument("--frames", metavar="A-B", help="frame range (default: the scene's)")
    s.add_argument("--project", default="default")
    s.add_argument("--sequence", default="default")
    s.add_argument("--shot", help="default: the file's name")
    s.add_argument("--chunk-size", type=int, help="frames per chunk (default: the farm sizes)")
    s.add_argument("--priority", type=int, help="0-100, higher first (default 50)")
    s.add_argument("--format", help="PNG, OPEN_EXR, … (default PNG)")
    s.add_argument("--output", help="uploaded: a file-name pattern (sh010_####); shared: a path")
    s.add_argument(
        "--movie", metavar="CONTAINER", type=str.upper,
        help="also make a movie of the frames: MPEG4, MKV, QUICKTIME, WEBM, … (as Blender names "
        "them; implied by --format FFMPEG, default MPEG4)",
    )  # fmt: skip
    s.add_argument("--codec", type=str.upper, help="the movie's codec: H264 (default), MPEG4, …")
    s.add_argument("--fps", type=float, help="the movie's frame rate (default: the scene's)")
    s.add_argument(
        "--allow-missing", action="store_true",
        help="submit even when files the .blend uses are missing (they are left out)",
    )  # fmt: skip

    d = sub.add_parser("download", parents=[common], help="fetch a job's frames into DIR")
    d.add_argument("job", type=int, help="the job's id")
    d.add_argument("dir", type=Path, help="where the frames go")
    d.add_argument("--wait", action="store_true", help="wait for the job to end first")
    d.add_argument("--timeout", type=float, default=0, help="give up waiting after SECONDS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        try:
            token = find_token(args.token, args.token_file, os.environ)
            wants = farm_url_wants_tls(args.farm)
            tls = find_client_tls(wants, args.tls_ca, args.tls_fingerprint, os.environ)
        except (TokenFileError, TLSSettingsError) as exc:
            raise CliError(str(exc)) from None
        client = FarmClient(args.farm, token, tls)
        if args.command == "submit":
            return submit(client, args)
        return download(client, args)
    except (CliError, TransferError) as exc:
        print(f"brender: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("brender: interrupted", file=sys.stderr)
        return 130


# -- submit -------------------------------------------------------------------------------------


def submit(client: FarmClient, args: argparse.Namespace) -> int:
    blend: Path = args.file.expanduser().resolve()
    if not blend.is_file():
        raise CliError(f"no such file: {args.file}")
    values: dict[str, Any] = {
        "project": args.project,
        "sequence": args.sequence,
        "shot": args.shot or blend.stem,
    }
    for key in ("chunk_size", "priority", "format", "output"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    values["frame_start"], values["frame_end"] = frame_range(args.frames, blend)
    asked = movie_request(args, scene_output(blend))
    if asked is not None:
        values["movie"] = asked
    if args.upload:
        limits = client.stats()  # the farm is there and takes our token, before any packing
        with tempfile.TemporaryDirectory(prefix="brender-pack-") as temp:
            values["upload"] = upload(client, blend, Path(temp), args.allow_missing, limits)
            job = client.api({"item": "job", "action": "submit", "values": values})
    else:
        values["blend_file"] = str(blend)
        job = client.api({"item": "job", "action": "submit", "values": values})
    print(
        f"brender: job {job['id']} submitted ({job['frame_start']}-{job['frame_end']})",
        file=sys.stderr,
    )
    print(json.dumps(job), flush=True)
    return EXIT_OK


def frame_range(text: str | None, blend: Path) -> tuple[int, int]:
    if text:
        first, _, last = text.partition("-")
        try:
            start = int(first)
            end = int(last) if last else start
        except ValueError:
            raise CliError(f"--frames must be A-B or A, not {text!r}") from None
        return start, end
    return scene_range(blend)


def scene_range(blend: Path) -> tuple[int, int]:
    """The first scene's frame range, read with BAT (as Blender stored it)."""
    from blender_asset_tracer import blendfile

    try:
        bf = blendfile.open_cached(blend)
        scene = bf.find_blocks_from_code(b"SC")[0]
        return int(scene.get((b"r", b"sfra"))), int(scene.get((b"r", b"efra")))
    except Exception as exc:  # BAT's errors share no base class
        raise CliError(
            f"cannot read the frame range of {blend.name} ({exc}): give --frames"
        ) from None
    finally:
        blendfile.close_all_cached()


# What Blender stores (DNA): `r.im_format.imtype` 24 is FFmpeg; `r.ffcodecdata.type` is the
# container; `r.ffcodecdata.codec` is FFmpeg's own AVCodecID (stable numbers in its ABI).
IMTYPE_FFMPEG = 24
CONTAINERS = {0: "MPEG1", 1: "MPEG2", 2: "MPEG4", 3: "AVI", 4: "QUICKTIME", 5: "DV",
              6: "MPEG4", 7: "AVI", 8: "FLASH", 9: "MKV", 10: "OGG", 12: "WEBM"}  # fmt: skip
CODECS = {1: "MPEG1", 2: "MPEG2", 12: "MPEG4", 22: "FLASH", 24: "DV", 25: "HUFFYUV", 27: "H264",
          30: "THEORA", 33: "FFV1", 55: "QTRLE", 61: "PNG", 99: "DNXHD", 147: "PRORES",
          167: "WEBM", 173: "H265", 225: "AV1"}  # fmt: skip


def movie_request(args: argparse.Namespace, scene: dict[str, Any]) -> dict[str, Any] | None:
    """The submit's `movie`: the flags over what the scene asks for (its FFmpeg output), or
    None when neither asks for one."""
    wanted = args.movie or args.codec or args.fps or (args.format or "").upper() == "FFMPEG"
    if not wanted and not (scene.get("movie") and args.format is None):
        return None
    spec: dict[str, Any] = {k: v for k, v in (scene.get("movie") or {}).items() if v}
    if "fps" in scene:
        spec["fps"] = scene["fps"]
    for key, flag in (("container", args.movie), ("codec", args.codec), ("fps", args.fps)):
        if flag:
            spec[key] = flag
    return spec


def scene_output(blend: Path) -> dict[str, Any]:
    """The first scene's frame rate and, if its output is FFmpeg, its container and codec,
    read with BAT; {} when the file cannot be read so (the flags still work, and the farm says
    what it thinks of the file), without BAT's own complaint on stderr."""
    from blender_asset_tracer import blendfile

    quiet = logging.getLogger("blender_asset_tracer")
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        bf = blendfile.open_cached(blend)
        scene = bf.find_blocks_from_code(b"SC")[0]
        out: dict[str, Any] = {
            "fps": round(int(scene.get((b"r", b"frs_sec")))
                         / float(scene.get((b"r", b"frs_sec_base"))), 3),
        }  # fmt: skip
        if int(scene.get((b"r", b"im_format", b"imtype"))) == IMTYPE_FFMPEG:
            out["movie"] = {
                "container": CONTAINERS.get(int(scene.get((b"r", b"ffcodecdata", b"type")))),
                "codec": CODECS.get(int(scene.get((b"r", b"ffcodecdata", b"codec")))),
            }
        return out
    except Exception:  # BAT's errors share no base class
        return {}
    finally:
        quiet.setLevel(level)
        blendfile.close_all_cached()


def upload(
    client: FarmClient, blend: Path, temp: Path, allow_missing: bool, limits: dict[str, Any]
) -> dict[str, Any]:
    """Pack `blend` into `temp`, upload what the farm lacks; answers the manifest."""
    from brender.pack import MissingFiles, PackError, pack

    print(f"brender: packing {blend.name} …", file=sys.stderr)
    try:
        packed = pack(blend, temp / "pack", allow_missing=allow_missing)
    except MissingFiles as exc:
        raise CliError(
            f"{exc}\n(nothing was uploaded; --allow-missing submits without them)"
        ) from None
    except PackError as exc:
        raise CliError(str(exc)) from None
    for name in packed.missing:
        print(f"brender: warning: missing, left out: {name}", file=sys.stderr)
    bar = ProgressLine()
    count, sent, have = client.send_missing(packed.root, packed.manifest, limits, bar)
    bar.close()
    print(
        f"brender: uploaded {count} file(s), {sent} bytes; {have} already on the farm",
        file=sys.stderr,
    )
    return packed.manifest.to_wire()


class ProgressLine:
    """`uploading 2/5 files, 1.2 MiB of 3.4 MiB` on stderr, rewritten in place."""

    def __init__(self) -> None:
        self.files = self.total = self.done_files = self.done = 0
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def start(self, files: int, total: int) -> None:
        self.files, self.total = files, total

    def sent(self, n: int) -> None:
        self.done += n
        if time.monotonic() - self.last > 0.2:
            self.show()

    def file_done(self) -> None:
        self.done_files += 1
        self.show()

    def show(self) -> None:
        self.last = time.monotonic()
        text = (
            f"uploading {self.done_files}/{self.files} files, "
            f"{human(self.done)} of {human(self.total)}"
        )
        sys.stderr.write(f"\r{text}" if self.tty else f"{text}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and self.files:
            sys.stderr.write("\n")


# -- download -----------------------------------------------------------------------------------


def download(client: FarmClient, args: argparse.Namespace) -> int:
    job = read_job(client, args.job)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while args.wait and job["status"] not in FINAL:
        if deadline is not None and time.monotonic() > deadline:
            raise CliError(f"job {args.job} is still {job['status']} after {args.timeout:g} s")
        time.sleep(1.0)
        job = read_job(client, args.job)
    folder: Path = args.dir
    folder.mkdir(parents=True, exist_ok=True)
    fetched = kept = 0
    for frame in done_frames(client, args.job):
        name = Path(frame["output_file"]).name
        target = folder / name
        remote = client.frame_sha(args.job, frame["number"])
        if remote is not None and target.is_file() and hash_file(target).sha256 == remote:
            kept += 1
            continue
        client.get_frame(args.job, frame["number"], target)
        fetched += 1
    movies = [o for o in job.get("outputs") or [] if o.get("url") and o.get("status") == "done"]
    for output in movies:
        client.get_file(output["url"], folder / Path(output["file"]).name, "the movie")
    print(
        f"brender: job {args.job} is {job['status']}: {fetched} frame(s) downloaded, "
        f"{kept} already there, {len(movies)} movie(s), into {folder}",
        file=sys.stderr,
    )
    print(json.dumps(job), flush=True)
    if job["status"] in ("failed", "canceled"):
        print(f"brender: job {args.job} {job['status']}: {job.get('error') or ''}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def read_job(client: FarmClient, job_id: int) -> dict[str, Any]:
    rows = client.api({"item": "job", "action": "read", "filters": {"id": job_id}})
    if not rows:
        raise CliError(f"the farm has no job {job_id}")
    return dict(rows[0])


def done_frames(client: FarmClient, job_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = client.api(
            {
                "item": "frame",
                "action": "read",
                "filters": {"job_id": job_id, "status": "done"},
                "order_by": "number",
                "limit": 10000,
                "offset": len(rows),
            }
        )
        if not page:
            return rows
        rows += page
