"""The outbox: in order, kept until an ack or a pong shows the master made it durable,
resent after a loss."""

from __future__ import annotations

from brender import messages, wire
from brender.messages import ChunkDone, FrameDone
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


def end(chunk_id: int, *frames: int) -> ChunkDone:
    return ChunkDone(chunk_id, ok=True, exit_code=0, frames_done=frames)


def test_waiting_frame_reports_fold_into_their_chunks_end_for_a_master_that_reads_it() -> None:
    outbox = Outbox()
    outbox.fold = True
    for frame in (1, 2):
        outbox.put(report(7, frame))
    outbox.put(end(7, 1, 2))
    outbox.put(report(8, 3))  # the next chunk's: its end is not there yet
    folded = outbox.take()
    assert isinstance(folded, ChunkDone) and folded.chunk_id == 7 and folded.seq == 1
    assert folded.saved is not None
    assert [(r.frame, r.output_file, r.seq) for r in folded.saved] == [
        (1, "/out/0001.png", None),
        (2, "/out/0002.png", None),
    ]
    line = wire.decode_message(wire.encode(folded.to_wire()))
    assert line["saved"] == [
        {"frame": 1, "output_file": "/out/0001.png", "render_time": None},
        {"frame": 2, "output_file": "/out/0002.png", "render_time": None},
    ]
    assert messages.from_node(line) == folded  # what the master reads is what was folded
    alone = outbox.take()  # no end waits after it: sent at once, on its own
    assert isinstance(alone, FrameDone) and alone.frame == 3 and alone.seq == 2
    assert outbox.take() is None
    outbox.ack(1)
    assert len(outbox) == 1  # one report for the two frames and the end, confirmed at once


def test_nothing_folds_for_an_older_master_or_across_chunks() -> None:
    outbox = Outbox()  # fold is off until a welcome says the master reads it
    outbox.put(report(7, 1))
    outbox.put(end(7, 1))
    assert [type(m).__name__ for m in iter(outbox.take, None)] == ["FrameDone", "ChunkDone"]
    outbox.fold = True
    outbox.put(report(7, 2))
    outbox.put(end(8))  # another chunk's end
    first, second = outbox.take(), outbox.take()
    assert isinstance(first, FrameDone) and isinstance(second, ChunkDone)
    assert second.saved is None and "saved" not in second.to_wire()


def test_a_folded_end_goes_unfolded_to_a_master_that_does_not_read_it() -> None:
    """Folded, sent, the connection lost, and the next master is an older one: the frames must
    reach it as `frame` lines (it would not read `saved`), in order, before the end."""
    outbox = Outbox()
    outbox.fold = True
    outbox.put(report(7, 1))
    outbox.put(report(7, 2))
    outbox.put(end(7, 1, 2))
    folded = outbox.take()
    assert isinstance(folded, ChunkDone) and folded.saved
    outbox.connection_lost()
    outbox.fold = False
    again = list(iter(outbox.take, None))
    assert [(type(m).__name__, m.seq) for m in again] == [
        ("FrameDone", 2), ("FrameDone", 3), ("ChunkDone", 4),
    ]  # fmt: skip
    last = again[-1]
    assert isinstance(last, ChunkDone) and last.saved is None
    outbox.ack(4)
    assert len(outbox) == 0 and outbox.settled.is_set()
