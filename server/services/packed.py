"""Jobs whose files were uploaded (`storage` "upload"): their manifest at submit, where their
frames go, and which frame file a download reads."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brender import framepath
from brender.blendfile import BlendFileError, read_version
from brender.manifest import SHA256, Manifest, ManifestError, check_path
from brender.server.blobs import BlobStore
from brender.server.errors import Conflict, FarmError, Forbidden, InvalidValue, NotFound
from brender.server.live import LiveChunk, LiveJob
from brender.server.models import Frame, Job
from brender.server.reports import ordered_output
from brender.server.states import FrameStatus

UPLOAD = "upload"
SHARED = "shared"
MAX_LISTED = 20


class MissingBlobs(FarmError):
    code = "missing_files"


def check_pattern(output: Any) -> str:
    """An uploaded job's `output` is only a file-name pattern (`####`, `sh010_####`): its
    frames go under the server's output root, never to a path the submitter picks."""
    if output in (None, ""):
        return "####"
    try:
        name = check_path(output)
    except ManifestError as exc:
        raise InvalidValue(f"'output': {exc}") from None
    if "/" in name or "#" not in name:
        raise InvalidValue(
            "'output' of an uploaded job is a file-name pattern with '#' for the frame number "
            f"(e.g. 'sh010_####'), not {output!r}: its frames are stored by the farm"
        )
    return name


async def prepare_submit(store: BlobStore | None, values: dict[str, Any]) -> dict[str, Any]:
    """A submit's `upload` (a manifest) or `manifest` (the SHA-256 of one the farm holds)
    checked against the blob store: every blob present, the manifest itself stored as a
    blob, the main file's Blender version read from its header. Answers the values with
    `blend_file` (the main file's path in the tree) and `manifest` (its hash) in place of
    `upload`; raises MissingBlobs naming what the farm lacks."""
    if store is None:
        raise InvalidValue("this farm does not take uploads")
    out = dict(values)
    raw = out.pop("upload", None)
    try:
        if raw is None:
            raw = await asyncio.to_thread(_stored_manifest, store, out.get("manifest"))
        manifest = Manifest.parse(raw)
    except ManifestError as exc:
        raise InvalidValue(f"'upload': {exc}") from None
    check_pattern(out.get("output"))
    # Marked as used now: the store's sweep keeps them for the job about to be made.
    missing = set(await asyncio.to_thread(store.claim, manifest.hashes()))
    if missing:
        names = [p for p, e in sorted(manifest.files.items()) if e.sha256 in missing]
        shown = ", ".join(names[:MAX_LISTED]) + (" …" if len(names) > MAX_LISTED else "")
        raise MissingBlobs(
            f"the farm lacks {len(missing)} file(s) of this upload ({shown}): "
            "PUT each to /blobs/<sha256> first (POST /blobs/missing lists them)"
        )
    out["manifest"] = await asyncio.to_thread(store.put_bytes, manifest.canonical())
    out["blend_file"] = manifest.main
    main = store.path(manifest.files[manifest.main].sha256)
    try:
        out["file_version"] = str((await asyncio.to_thread(read_version, main)).series)
    except BlendFileError as exc:
        raise InvalidValue(f"'upload': {manifest.main} is not a .blend: {exc}") from None
    return out


def _stored_manifest(store: BlobStore, sha: Any) -> Any:
    if not isinstance(sha, str) or not SHA256.match(sha):
        raise ManifestError("'manifest' must be the SHA-256 of a manifest")
    if not store.has(sha):
        raise ManifestError(f"this farm holds no manifest {sha}: send it as 'upload'")
    return json.loads(store.path(sha).read_bytes())


@dataclass(frozen=True)
class Uploaded:
    """An uploaded job as its deletion needs it."""

    id: int
    manifest: str
    output: str


def upload_manifests() -> list[str]:
    """The manifests of every job there is (what the store's sweep must keep)."""
    rows = Job.select(Job.manifest).where(Job.storage == UPLOAD).distinct()
    return [row.manifest for row in rows if row.manifest]


def uploaded_jobs(job_ids: list[int]) -> list[Uploaded]:
    """Those of these jobs whose files were uploaded."""
    found = []
    for i in range(0, len(job_ids), 500):  # under SQLite's cap on a query's parameters
        rows = Job.select(Job.id, Job.manifest, Job.output).where(
            Job.id.in_(job_ids[i : i + 500]) & (Job.storage == UPLOAD)
        )
        found += [Uploaded(row.id, row.manifest or "", row.output) for row in rows]
    return found


def frame_target(
    live: LiveJob | None, job_id: int, number: int, name: str, key: str, retired: Container[str]
) -> Path:
    """Where a node's file `name` for frame `number` of `job_id` is stored: only an uploaded
    job's frame that is rendering (in a running chunk, not reported yet) is taken, only with
    the upload key that chunk's order gave its node (`key`), and only under the name the job's
    output pattern gives that frame (brender.framepath), so no frame's file can overwrite
    another's. Conflict when the frame takes no file now (requeued, done, a job that is gone)
    or `key` is one of an ended run (`retired`: a node whose chunk was taken from it);
    Forbidden for any other key; InvalidValue for another name."""
    if live is None:
        row = Job.select(Job.status, Job.storage).where(Job.id == job_id).first()
        if row is None:
            raise NotFound(f"no job with id {job_id}")
        if row.storage != UPLOAD:
            raise Conflict(f"job {job_id} renders to shared storage")
        raise Conflict(f"job {job_id} is {row.status}: it takes no more frames")
    if not live.manifest:
        raise Conflict(f"job {job_id} renders to shared storage")
    for chunk in live.running.values():
        if number in chunk.frames and number not in chunk.done:
            _check_key(chunk, number, key, retired)
            output, file_format, _ = ordered_output(chunk)
            target = Path(output).parent / name
            if not framepath.names_frame(output, number, file_format, str(target)):
                expected = Path(framepath.expected_file(output, number, file_format)).name
                raise InvalidValue(f"'name': frame {number}'s file is {expected!r}, not {name!r}")
            return target
    raise Conflict(f"frame {number} of job {job_id} is not rendering: it takes no file now")


def _check_key(chunk: LiveChunk, number: int, key: str, retired: Container[str]) -> None:
    """The PUT's key must be that of this chunk's run now (compared in constant time)."""
    if chunk.upload_key is not None and hmac.compare_digest(
        key.encode(), chunk.upload_key.encode()
    ):
        return
    if key in retired:
        raise Conflict(
            f"frame {number}'s chunk {chunk.id} is not yours now: it was taken from your node"
            " and sent again"
        )
    if chunk.upload_key is None:
        raise Conflict(
            f"frame {number}'s chunk {chunk.id} was running when the master restarted: it takes"
            " frames again once its node is back (its welcome carries a new upload key)"
        )
    raise Forbidden(f"wrong upload key for frame {number}: send the one of its chunk's order")


def frame_file(job_id: int, number: int) -> Path:
    """The file of a done frame, or NotFound."""
    row = (
        Frame.select(Frame.status, Frame.output_file)
        .where((Frame.job == job_id) & (Frame.number == number))
        .first()
    )
    if row is None:
        raise NotFound(f"job {job_id} has no frame {number}")
    if row.status != FrameStatus.DONE.value or not row.output_file:
        raise NotFound(f"frame {number} of job {job_id} is {row.status}, not done")
    path = Path(row.output_file)
    if not path.is_file():
        raise NotFound(f"frame {number} of job {job_id}: {path} is gone")
    return path
