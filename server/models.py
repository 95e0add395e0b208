"""The farm's tables (peewee), bound at start to the database the server was given."""

from __future__ import annotations

import json
import time
from typing import Any

import peewee as pw

from brender.server.states import ChunkStatus, ClientStatus, FrameStatus, JobStatus

database = pw.DatabaseProxy()


def now() -> float:
    return time.time()


def tuples(query: Any) -> list[tuple[Any, ...]]:
    """A query's rows as plain tuples (the fast path for id lists and counts)."""
    return list(query.tuples())


class BaseModel(pw.Model):
    id = pw.AutoField()

    class Meta:
        database = database
        legacy_table_names = False
        only_save_dirty = True  # an UPDATE names the fields that changed, not all of them

    def to_dict(self) -> dict[str, Any]:
        """The row as the API shows it: foreign keys as `<name>_id`."""
        out: dict[str, Any] = {}
        for name, field in self._meta.fields.items():
            if isinstance(field, pw.ForeignKeyField):
                out[field.column_name] = self.__data__.get(name)
            else:
                out[name] = self.__data__.get(name)
        return out


class Project(BaseModel):
    name = pw.CharField(unique=True)
    root = pw.TextField(default="")
    created_at = pw.DoubleField(default=now)


class Sequence(BaseModel):
    project = pw.ForeignKeyField(Project, backref="sequences", on_delete="CASCADE")
    project_id: int
    name = pw.CharField()
    created_at = pw.DoubleField(default=now)

    class Meta:
        indexes = ((("project", "name"), True),)


class Shot(BaseModel):
    sequence = pw.ForeignKeyField(Sequence, backref="shots", on_delete="CASCADE")
    sequence_id: int
    name = pw.CharField()
    blend_file = pw.TextField(default="")
    frame_start = pw.IntegerField(default=1)
    frame_end = pw.IntegerField(default=1)
    created_at = pw.DoubleField(default=now)

    class Meta:
        indexes = ((("sequence", "name"), True),)


class Job(BaseModel):
    shot = pw.ForeignKeyField(Shot, backref="jobs", on_delete="CASCADE")
    shot_id: int
    name = pw.CharField(default="")
    blend_file = pw.TextField()
    frame_start = pw.IntegerField()
    frame_end = pw.IntegerField()
    chunk_size = pw.IntegerField()
    priority = pw.IntegerField(default=50)
    output = pw.TextField()
    format = pw.CharField(default="PNG")
    status = pw.CharField(default=JobStatus.QUEUED.value, index=True)
    max_attempts = pw.IntegerField(default=3)
    timeout = pw.IntegerField(default=600)  # seconds Blender may print nothing before it is killed
    file_version = pw.CharField(default="")  # the Blender series that saved the file ("4.5")
    blender = pw.CharField(default="")  # what the job asks for: "4.5", ">=4.2", "4.2-4.5"
    autoexec = pw.BooleanField(default=False)  # run the file's Python (drivers, scripts)
    request_id = pw.CharField(null=True, unique=True)  # the submitter's, so a retry is not a copy
    storage = pw.CharField(default="shared")  # "shared": blend_file is a path every node sees
    manifest = pw.CharField(default="")  # "upload": the SHA-256 of its manifest (a blob)
    error = pw.TextField(default="")
    movie = pw.TextField(default="")  # JSON: {"container", "codec", "fps"}; "" for frames only
    movie_status = pw.CharField(default="")  # waiting, encoding, done, failed, not made
    movie_file = pw.TextField(default="")  # the movie's path on the server, once made
    created_at = pw.DoubleField(default=now)
    started_at = pw.DoubleField(null=True)
    finished_at = pw.DoubleField(null=True)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        try:
            out["movie"] = json.loads(out["movie"]) if out.get("movie") else None
        except ValueError:
            out["movie"] = None
        return out


class Client(BaseModel):
    node_id = pw.CharField(unique=True)
    name = pw.CharField(index=True)
    hostname = pw.CharField(default="")
    mac_address = pw.CharField(default="", index=True)
    status = pw.CharField(default=ClientStatus.ENABLED.value)
    online = pw.BooleanField(default=False)
    blender_version = pw.CharField(default="")
    blenders = pw.TextField(default="[]")  # JSON: [{"version", "kind", "devices"}], hello's
    allow_autoexec = pw.BooleanField(default=False)
    cpus = pw.IntegerField(default=0)
    memory = pw.BigIntegerField(default=0)
    last_seen = pw.DoubleField(null=True)
    created_at = pw.DoubleField(default=now)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        try:
            out["blenders"] = json.loads(out.get("blenders") or "[]")
        except ValueError:
            out["blenders"] = []
        return out


class Chunk(BaseModel):
    job = pw.ForeignKeyField(Job, backref="chunks", on_delete="CASCADE")
    job_id: int
    frame_start = pw.IntegerField()
    frame_end = pw.IntegerField()
    status = pw.CharField(default=ChunkStatus.QUEUED.value)
    client = pw.ForeignKeyField(Client, null=True, on_delete="SET NULL")
    client_id: int | None
    failed_client = pw.IntegerField(null=True)  # the node it last failed on: others go first
    attempts = pw.IntegerField(default=0)
    exit_code = pw.IntegerField(null=True)
    error = pw.TextField(default="")
    log_tail = pw.TextField(default="")
    started_at = pw.DoubleField(null=True)
    finished_at = pw.DoubleField(null=True)

    class Meta:
        indexes = (
            (("status", "job"), False),
            (("job", "status", "frame_start"), False),  # a job's next queued chunk
        )


class Frame(BaseModel):
    job = pw.ForeignKeyField(Job, backref="frames", on_delete="CASCADE")
    job_id: int
    chunk = pw.ForeignKeyField(Chunk, backref="frames", on_delete="CASCADE")
    chunk_id: int
    number = pw.IntegerField()
    status = pw.CharField(default=FrameStatus.QUEUED.value)
    client = pw.ForeignKeyField(Client, null=True, on_delete="SET NULL")
    client_id: int | None
    output_file = pw.TextField(default="")
    render_time = pw.DoubleField(null=True)
    attempts = pw.IntegerField(default=0)
    error = pw.TextField(default="")
    log_tail = pw.TextField(default="")
    started_at = pw.DoubleField(null=True)
    finished_at = pw.DoubleField(null=True)

    class Meta:
        indexes = (
            (("job", "number"), True),
            (("job", "status"), False),
            (("chunk",), False),
            (("finished_at",), False),  # the dashboard's "frames done per minute"
        )


class Blocklist(BaseModel):
    """A node's failures on one job; at `BLOCK_AFTER` it gets no more of that job's chunks."""

    job = pw.ForeignKeyField(Job, backref="blocklist", on_delete="CASCADE")
    job_id: int
    client = pw.ForeignKeyField(Client, backref="blocklist", on_delete="CASCADE")
    client_id: int
    failures = pw.IntegerField(default=0)
    reason = pw.TextField(default="")
    created_at = pw.DoubleField(default=now)

    class Meta:
        indexes = ((("job", "client"), True),)


class Attempt(BaseModel):
    """One try of one frame: the chunk run that sent it to a node, and how it ended there.
    Written with the chunk's end (or when its node gave it back), one row per frame tried."""

    job = pw.ForeignKeyField(Job, backref="attempt_rows", on_delete="CASCADE")
    job_id: int
    number = pw.IntegerField()
    chunk_id = pw.IntegerField()
    client = pw.ForeignKeyField(Client, null=True, on_delete="SET NULL")
    client_id: int | None
    outcome = pw.CharField()  # "done", "failed" or "interrupted" (its node let go of it)
    exit_code = pw.IntegerField(null=True)
    error = pw.TextField(default="")
    log_tail = pw.TextField(default="")
    started_at = pw.DoubleField(null=True)
    finished_at = pw.DoubleField(null=True)

    class Meta:
        indexes = ((("job", "number"), False),)


class SchemaVersion(BaseModel):
    version = pw.IntegerField()
    applied_at = pw.DoubleField(default=now)


ALL_MODELS: list[type[BaseModel]] = [
    Project, Sequence, Shot, Job, Client, Chunk, Frame, Blocklist, Attempt,
]  # fmt: skip
