"""A node told to stop at any moment of its connect stops: no step of the connect (opening the
socket, the hello, the welcome arriving) may swallow the cancel and go on serving.

CI once saw a node SIGTERMed just as its welcome arrived hang for 10 s and exit 1: on Python
3.11 `asyncio.wait_for` returns the inner result, dropping the cancel, when both land in the
same loop step. The test cancels `Connection.run()` after each number of loop steps in turn,
so one of the tries lands on that step whatever this machine's timing."""

from __future__ import annotations

import asyncio

from node_helpers import FakeMaster, run

from brender import messages
from brender.node.connection import Connection

STEPS = 120
"""Loop steps to sweep: a connect and welcome to a master in the same loop take ~10-30."""


def _hello() -> messages.Hello:
    return messages.Hello(node_id="0" * 32, name="stopper", blender_version="3.4.1")


def test_a_connect_cancelled_at_any_step_ends() -> None:
    async def scenario() -> list[int]:
        hung = []
        async with FakeMaster() as master:
            port = await master.start()
            for steps in range(STEPS):
                connection = Connection("127.0.0.1", port, hello=_hello, on_order=lambda m: None)
                task = asyncio.create_task(connection.run())
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=5)
                if not done:
                    hung.append(steps)
                    task.cancel()  # the retry a stopping node does not make
                    await asyncio.wait({task}, timeout=5)
        return hung

    hung = run(scenario(), timeout=120)
    assert hung == [], f"cancelled after these loop steps, the connection went on: {hung}"
