"""The scenarios, by name, in the order `--list` shows them (the issue's order)."""

from __future__ import annotations

from bench.scenario import Scenario
from bench.scenarios import (
    dispatch_latency,
    makespan,
    memory,
    overhead,
    peers,
    restart,
    submit,
    throughput,
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        overhead.SCENARIO,
        dispatch_latency.SCENARIO,
        throughput.SCENARIO,
        makespan.SCENARIO,
        submit.SCENARIO,
        restart.SCENARIO,
        memory.SCENARIO,
        peers.SCENARIO,
    )
}
