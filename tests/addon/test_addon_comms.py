"""The add-on's network thread: tasks run in order off the caller's thread; replies are drained."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import addon_harness  # noqa: F401  (puts the repository root on sys.path)
import pytest
from farmctl import ServerProcess, wait_for

from addon import client, comms, jobs
from addon.errors import FarmUnreachable


@pytest.fixture
def worker() -> Iterator[comms.Worker]:
    w = comms.Worker(name="brender-test")
    yield w
    assert w.stop(timeout=5.0)


def drain_until(worker: comms.Worker, count: int, timeout: float = 10.0) -> list[comms.Reply]:
    replies: list[comms.Reply] = []

    def enough() -> bool:
        replies.extend(worker.drain())
        return len(replies) >= count

    wait_for(enough, timeout, 0.01, f"{count} replies")
    return replies


def test_tasks_run_in_order_on_the_worker_thread(worker: comms.Worker) -> None:
    caller = threading.get_ident()
    tickets = [worker.post("t", lambda i=i: (i, threading.get_ident())) for i in range(5)]
    replies = drain_until(worker, 5)
    assert [r.ticket for r in replies] == tickets
    assert [r.data[0] for r in replies] == list(range(5))
    assert all(r.ok and r.kind == "t" and r.data[1] != caller for r in replies)
    assert worker.drain() == []


def test_errors_become_messages_and_the_thread_goes_on(worker: comms.Worker) -> None:
    def unreachable() -> None:
        raise FarmUnreachable("Cannot reach the farm at a:1 — is brender-server running?")

    def bug() -> None:
        raise KeyError("oops")

    worker.post("a", unreachable)
    worker.post("b", bug)
    worker.post("c", lambda: "fine")
    first, second, third = drain_until(worker, 3)
    assert first.error == "Cannot reach the farm at a:1 — is brender-server running?"
    assert second.error == comms.BUG_MESSAGE and not second.ok
    assert third.ok and third.data == "fine"


def test_stop_ends_the_thread_and_a_late_reply_is_dropped() -> None:
    worker = comms.Worker(name="brender-test-stop")
    started, release = threading.Event(), threading.Event()
    worker.post("slow", lambda: started.set() or release.wait(5))
    assert started.wait(5)
    assert not worker.stop(timeout=0.1)  # still inside the slow task
    release.set()
    wait_for(lambda: not any(t.name == "brender-test-stop" for t in threading.enumerate()), 5,
             what="the old thread to end")  # fmt: skip
    assert worker.drain() == []
    # Started again by the next post, as when the add-on is enabled again.
    worker.post("again", lambda: 42)
    assert drain_until(worker, 1)[0].data == 42
    assert worker.stop(timeout=5.0) and not worker.alive


def test_a_refresh_through_the_worker(worker: comms.Worker, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "farm").start()
    try:
        farm = client.FarmClient(server.http_url)
        requests = jobs.refresh_requests("/x.blend")
        # Posting never waits for the network: with the worker held inside an earlier task,
        # both posts return while neither task has finished (a check no timing can break).
        release, finished = threading.Event(), threading.Event()
        worker.post("hold", lambda: release.wait(30) and finished.set())
        ticket = worker.post("refresh", lambda: jobs.parse_snapshot(farm.batch(requests), ""))
        assert not finished.is_set() and worker.drain() == []
        release.set()
        held, reply = drain_until(worker, 2)
        assert held.ok and finished.is_set()
        assert reply.ticket == ticket and reply.ok and reply.data == jobs.Snapshot()
    finally:
        server.stop()
    worker.post("refresh", lambda: farm.batch(requests))
    [reply] = drain_until(worker, 1)
    assert reply.error.startswith("Cannot reach the farm at 127.0.0.1:")
