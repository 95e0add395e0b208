"""The outbox: in order, kept until an ack or a pong shows the master made it durable,
resent after a loss."""

from __future__ import annotations

from brender.messages import FrameDone
from brender.node.outbox import Outbox


def report(chunk_id: int, frame: int) -> FrameDone:
    return FrameDone(chunk_id, frame, f"/out/{frame:04d}.png")


def take_all(outbox: Outbox) -> list[int]:
    taken = []
    while (message := outbox.take()) is not None:
        assert isinstance(message, FrameDone)
        taken.append(message.frame)
    return taken


def test_reports_are_numbered_and_acks_confirm_up_to_their_number() -> None:
    outbox = Outbox()
    for frame in (1, 2, 3):
        outbox.put(report(7, frame))
    seqs = []
    while (message := outbox.take()) is not None:
        seqs.append(message.seq)
    assert seqs == [1, 2, 3]
    outbox.ack(2)
    assert len(outbox) == 1 and not outbox.settled.is_set()
    outbox.ack(True)  # not a number: ignored
    outbox.ack("3")
    assert len(outbox) == 1
    outbox.connection_lost()
    (again,) = [outbox.take()]
    assert again is not None and again.frame == 3 and again.seq == 4  # renumbered on resend
    outbox.ack(3)  # an ack for the number it had before the loss no longer counts
    assert len(outbox) == 1
    outbox.ack(4)
    assert len(outbox) == 0 and outbox.settled.is_set()


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
