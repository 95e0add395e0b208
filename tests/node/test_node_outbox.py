"""The outbox: in order, kept until a pong shows the master read it, resent after a loss."""

from __future__ import annotations

from brender.node.outbox import Outbox


def report(chunk_id: int, frame: int) -> dict[str, object]:
    return {"type": "frame", "chunk_id": chunk_id, "frame": frame}


def take_all(outbox: Outbox) -> list[object]:
    taken = []
    while (message := outbox.take()) is not None:
        taken.append(message["frame"])
    return taken


def test_confirmed_reports_are_gone_unconfirmed_ones_come_back_first() -> None:
    outbox = Outbox()
    assert outbox.settled.is_set() and outbox.first_chunk_id() is None
    for frame in (1, 2):
        outbox.put(report(7, frame))
    assert not outbox.settled.is_set() and outbox.ready.is_set()
    assert take_all(outbox) == [1, 2]
    t = outbox.ping_time()
    outbox.put(report(7, 3))
    assert take_all(outbox) == [3]
    later = outbox.ping_time()
    assert later > t
    outbox.pong(t)  # confirms 1 and 2, not 3
    assert len(outbox) == 1 and outbox.first_chunk_id() == 7
    outbox.put(report(7, 4))
    outbox.connection_lost()
    outbox.pong(later)  # a pong from the old connection no longer counts
    assert take_all(outbox) == [3, 4]
    outbox.pong(outbox.ping_time())
    assert len(outbox) == 0 and outbox.settled.is_set()


def test_unknown_pongs_are_ignored() -> None:
    outbox = Outbox()
    outbox.put(report(1, 1))
    take_all(outbox)
    outbox.pong("soon")
    outbox.pong(123.0)
    assert len(outbox) == 1 and not outbox.settled.is_set()
