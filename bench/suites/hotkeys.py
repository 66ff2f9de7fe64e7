"""Hot-key sampling overhead: jobcached's server CPU per request with `hotkey-top-k 0` (off)
and `hotkey-top-k 10` (about one key lookup in 16 sampled into the Space-Saving summary),
under the same redis-benchmark load over 100k random keys in one run.

Uniformly random keys are the summary's worst case: nearly every sampled key is new to it and
replaces another. The issue's target: sampling costs < 5% of server CPU per request.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.context import Context
from bench.redisbench import WARMUP_REQUESTS, run_test
from bench.suite import Column, Row, Suite, register

ROUNDS = 3  # off/on alternated this many times; the median of each is reported
KEYS = 100_000
COMMANDS = {"get": ("GET", "key:__rand_int__"), "set": ("SET", "key:__rand_int__", "xxx")}


class HotKeysOverheadSuite(Suite):
    name = "hotkeys-overhead"
    description = ("redis-benchmark GET / SET over 100k random keys, -P 16, against jobcached "
                   "with hot-key sampling off and on (hotkey-top-k 10); server CPU per "
                   f"request, median of {ROUNDS} alternated runs. Target: < 5% overhead.")
    columns = (
        Column("test", "Test"), Column("off_cpu_us_per_req", "µs CPU/req, sampling off", "us"),
        Column("on_cpu_us_per_req", "µs CPU/req, sampling on", "us"),
        Column("overhead_pct", "Overhead", "percent"),
    )
    required_binaries = ("redis-benchmark",)

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {"tests": list(COMMANDS), "requests": 100_000 if quick else 400_000,
                "clients": 50, "pipeline": 16, "rounds": ROUNDS, "keys": KEYS}

    def run(self, ctx: Context) -> list[Row]:
        params = self.parameters(ctx.quick)
        off = ctx.start_jobcached("--hotkey-top-k", "0")
        on = ctx.start_jobcached("--hotkey-top-k", "10")
        for server in (off, on):
            run_test(ctx, server, "ping_mbulk", requests=WARMUP_REQUESTS, clients=50, pipeline=1)
        rows = []
        for test in params["tests"]:
            measured: dict[str, list[float]] = {"off": [], "on": []}
            kwargs = {"requests": params["requests"], "clients": params["clients"],
                      "pipeline": params["pipeline"],
                      "command": ("-r", str(KEYS), *COMMANDS[test])}
            for _ in range(ROUNDS):
                for label, server in (("off", off), ("on", on)):
                    result = run_test(ctx, server, test, **kwargs)
                    if result.cpu_us_per_req is not None:
                        measured[label].append(result.cpu_us_per_req)
            off_us = statistics.median_high(measured["off"]) if measured["off"] else None
            on_us = statistics.median_high(measured["on"]) if measured["on"] else None
            overhead = (on_us / off_us - 1) * 100 if off_us and on_us else None
            rows.append({"test": test.upper(), "off_cpu_us_per_req": off_us,
                         "on_cpu_us_per_req": on_us, "overhead_pct": overhead})
            ctx.log(f"  {test}: off {off_us} µs, on {on_us} µs, overhead {overhead}")
        return rows


register(HotKeysOverheadSuite())
