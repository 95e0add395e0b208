"""Render nodes as the database knows them: registered on hello, enabled or disabled by hand."""

from __future__ import annotations

import json
from typing import Any

from brender.server.errors import InvalidValue
from brender.server.models import Client, database, now
from brender.server.services import validate as v
from brender.server.states import ClientStatus

HELLO_FIELDS = ("name", "hostname", "mac_address", "blender_version", "cpus", "memory")
"""The hello's fields kept on the client row as they are; `blenders` is kept as JSON."""


def register(hello: dict[str, Any]) -> Client:
    """The client row of a node saying hello: the same row every time it comes back.

    A node is matched by its node id, then (a node whose work dir was wiped) by MAC address
    and name. Its enabled/disabled status is kept as the farm manager left it.
    """
    node_id = hello.get("node_id")
    if not isinstance(node_id, str) or not node_id.strip() or len(node_id) > 128:
        raise InvalidValue("hello needs a node_id string")
    info = {k: hello[k] for k in HELLO_FIELDS if k in hello}
    for key in ("cpus", "memory"):
        if key in info:
            v.check_one(key, info[key], v.Field(int, 0))
    for key in ("name", "hostname", "mac_address", "blender_version"):
        if key in info:
            v.check_one(key, info[key], v.Field(str))
    if not info.get("name"):
        info["name"] = info.get("hostname") or node_id[:12]
    blenders = hello.get("blenders") or []
    info["blenders"] = json.dumps(blenders if isinstance(blenders, list) else [])
    info["allow_autoexec"] = hello.get("allow_autoexec") is True
    with database.atomic():
        client = Client.get_or_none(Client.node_id == node_id)
        if client is None and info.get("mac_address"):
            client = Client.get_or_none(
                Client.mac_address == info["mac_address"], Client.name == info["name"]
            )
            if client is not None:
                client.node_id = node_id
        if client is None:
            client = Client(node_id=node_id)
        for key, value in info.items():
            setattr(client, key, value)
        client.online = True
        client.last_seen = now()
        client.save()
    return client


def set_status(client_ids: list[int], status: ClientStatus) -> list[Client]:
    with database.atomic():
        Client.update(status=status.value).where(Client.id.in_(client_ids)).execute()
    return list(Client.select().where(Client.id.in_(client_ids)).order_by(Client.id))
