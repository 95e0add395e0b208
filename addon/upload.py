"""Submit with files, for a farm without shared storage. No `bpy` here: the worker runs it.

Pack the saved .blend with the `brender` package's own packing code (`_shared/`, copied by
build.py), ask the farm whether it can render the job, hold it when files are missing or no
node can (the artist confirms with *Submit Anyway*), upload only the blobs the farm lacks,
then submit with `upload`. Progress goes out as `Progress` messages on the way.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import payload
from .client import FarmClient, Submitted, must_confirm, shared
from .errors import FarmError
from .transfer import Files

NOTE_EVERY = 0.2  # seconds between two progress messages while bytes flow
MAX_NAMED = 5  # missing files named in the status bar (the panel names them all)


@dataclass(frozen=True)
class Progress:
    """One line for the status bar and the panel: what is happening and how far (0–1)."""

    text: str
    fraction: float = 0.0


Notify = Callable[[Progress], None]


def human(size: float) -> str:
    """Bytes for the artist: `1.5 MiB` (brender.sizes)."""
    return str(shared("sizes").human(size))


def shared_pack() -> ModuleType:
    """The bundled copy of `brender.pack` (it imports blender_asset_tracer, the extension's
    wheel, only when it packs)."""
    return importlib.import_module(f"{__package__}._shared.pack")


def missing_text(missing: list[str]) -> str:
    named = ", ".join(missing[:MAX_NAMED])
    more = f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
    files = (
        "1 file this .blend uses is"
        if len(missing) == 1
        else f"{len(missing)} files this .blend uses are"
    )
    return f"{files} missing: {named}{more}; the farm would render without them."


@dataclass
class Meter:
    """Bytes and files sent so far, told to `notify` now and then (brender.transfer's)."""

    notify: Notify
    files: int = 0
    total: int = 0
    done_files: int = 0
    done: int = 0
    last: float = 0.0

    def start(self, files: int, total: int) -> None:
        self.files, self.total = files, total
        self.show()

    def sent(self, n: int) -> None:
        self.done += n
        if time.monotonic() - self.last >= NOTE_EVERY:
            self.show()

    def file_done(self) -> None:
        self.done_files += 1
        self.show()

    def show(self) -> None:
        self.last = time.monotonic()
        fraction = self.done / self.total if self.total else 1.0
        self.notify(
            Progress(
                f"Uploading {self.done_files}/{self.files} files, "
                f"{human(self.done)} of {human(self.total)}",
                min(fraction, 1.0),
            )
        )


def send_missing(
    files: Files, root: Path, manifest: Any, notify: Notify, limits: dict[str, Any] | None = None
) -> tuple[int, int, int]:
    """Upload the blobs of `manifest` (a `Manifest` of the tree at `root`) the farm lacks,
    within its `limits` (`GET /blobs`); answers (files sent, bytes sent, files it had)."""
    limits = files.stats() if limits is None else limits
    return files.send_missing(root, manifest, limits, Meter(notify))


def submit_with_files(
    client: FarmClient, request: dict[str, Any], blend: str, anyway: bool, notify: Notify
) -> Submitted:
    """Pack, check, hold or upload, submit: the whole of one *Submit* with files on."""
    pack = shared_pack()
    files = Files(client)
    limits = files.stats()  # the farm is there and takes our token, before any packing
    notify(Progress(f"Packing {Path(blend).name} and the files it uses…"))
    temp = Path(tempfile.mkdtemp(prefix="brender-pack-"))
    try:
        try:
            packed = pack.pack(Path(blend), temp / "pack", allow_missing=True)
        except pack.PackError as exc:
            raise FarmError(f"The file was not sent: {exc}") from exc
        values = payload.upload_values(request["values"], packed.manifest.to_wire())
        request = {**request, "values": values}
        notify(Progress("Asking the farm…"))
        check = client.check(request)
        warning = str(check.get("warning") or "")
        holds = [missing_text(packed.missing)] if packed.missing else []
        if must_confirm(check):
            holds.append(warning)
        if holds and not anyway:
            return Submitted(None, " ".join(holds), missing=tuple(packed.missing))
        count, sent, had = send_missing(files, packed.root, packed.manifest, notify, limits)
        notify(Progress("Submitting…", 1.0))
        job = client.submit(request)
        note = f"Uploaded {count} file(s), {human(sent)}; {had} already on the farm."
        return Submitted(job, warning, missing=tuple(packed.missing), note=note)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
