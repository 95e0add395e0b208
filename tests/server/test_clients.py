"""Client rows: a node that comes back is the same client."""

from __future__ import annotations

import peewee as pw

from brender.server.services import clients


def test_reconnecting_node_is_the_same_client(db: pw.Database) -> None:
    a = clients.register({"node_id": "abc", "name": "box", "mac_address": "52:54:00:00:00:01"})
    clients.set_status([a.id], clients.ClientStatus.DISABLED)
    b = clients.register({"node_id": "abc", "name": "box", "cpus": 8})
    assert a.id == b.id and b.status == "disabled" and b.cpus == 8
    # A wiped work dir (new node id) on the same machine is matched by MAC address and name.
    c = clients.register({"node_id": "new", "name": "box", "mac_address": "52:54:00:00:00:01"})
    assert c.id == a.id and c.node_id == "new"
