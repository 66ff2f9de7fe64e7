"""Scripting suites: a 3-command script by EVALSHA, and redis-py's Lock, jobcached vs redis-server.

Issue 15 asks what a script costs on jobcached next to redis-server (target: at most 3x its
CPU per call), since the libraries that need scripts (Celery's chords, limits, cashews, every
redis-py Lock release) call one per operation.

- `cache-scripts`: redis-benchmark's custom command `EVALSHA <sha> 1 counter:__rand_int__ 60`
  (`-r 100000`) of a script that runs GET, INCR and EXPIRE on its key and returns the old
  value. Both servers get the script by SCRIPT LOAD first (the same SHA1 on both).
- `cache-lock`: redis-py's own `Lock` (`client.lock(name, timeout=10)`), acquired without
  blocking and released, in a loop: acquire is `SET name token NX PX 10000`, release an EVALSHA
  of redis-py's compare-and-delete script. THREADS threads, each its own client and lock
  names, drive each server in turn; a row's CPU per request is the server's CPU per cycle (two
  commands), its throughput cycles per second (bounded by the Python client, not the server).
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import redis

from bench.context import CLK_TCK, Context, Server
from bench.redisbench import (
    COMPARISON_COLUMNS,
    WARMUP_REQUESTS,
    RedisBenchmarkSuite,
    TestResult,
    _add_spread,
    _progress_line,
    comparison_row,
    run_test,
)
from bench.suite import Row, Suite, median_run, register

THREE_COMMAND_SCRIPT = (
    "local old = redis.call('GET', KEYS[1]) "
    "redis.call('INCR', KEYS[1]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[1]) "
    "return old"
)
SCRIPT_SHA = hashlib.sha1(THREE_COMMAND_SCRIPT.encode()).hexdigest()
RANDOM_KEYS = 100_000  # redis-benchmark -r: the range of __rand_int__


def load_script(server: Server) -> None:
    """SCRIPT LOAD the benchmarked script on `server` (it answers the SHA1 both compute)."""
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        assert client.script_load(THREE_COMMAND_SCRIPT) == SCRIPT_SHA
    finally:
        client.close()


register(RedisBenchmarkSuite(
    "cache-scripts",
    "EVALSHA of a script running GET, INCR and EXPIRE on a random key, 50 clients, without "
    "and with 16-deep pipelining.",
    ("evalsha_3cmd",),
    requests=100_000, quick_requests=20_000,
    commands={"evalsha_3cmd": ("-r", str(RANDOM_KEYS), "EVALSHA", SCRIPT_SHA, "1",
                               "counter:__rand_int__", "60")},
    preload=load_script,
))


THREADS = 4
LOCK_TIMEOUT_S = 10


def _lock_cycles(port: int, thread: int, cycles: int, failures: list[str]) -> None:
    """Acquire and release redis-py Locks `cycles` times; a refused acquire is a failure."""
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for n in range(cycles):
            lock = client.lock(f"lock:{thread}:{n % 100}", timeout=LOCK_TIMEOUT_S)
            if not lock.acquire(blocking=False):
                failures.append(f"lock:{thread}:{n % 100} not acquired")
                return
            lock.release()
    except redis.RedisError as exc:
        failures.append(str(exc))
    finally:
        client.close()


def run_lock_cycles(ctx: Context, server: Server, cycles: int) -> TestResult:
    """`cycles` Lock acquire/release cycles over THREADS threads; the server's CPU per cycle."""
    failures: list[str] = []
    per_thread = cycles // THREADS
    threads = [threading.Thread(target=_lock_cycles, args=(server.port, t, per_thread, failures))
               for t in range(THREADS)]
    with ctx.measure(server.pid) as used:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        return TestResult(ok=False, error=failures[0][:80])
    done = per_thread * THREADS
    return TestResult(
        ok=True, rps=round(done / used.wall_s, 1), cpu_ticks=used.cpu_ticks,
        cpu_us_per_req=round(used.cpu_ticks / CLK_TCK / done * 1e6, 3),
        cpu_us_per_req_clock=None if used.cpu_ns is None else round(used.cpu_ns / done / 1e3, 3),
        wall_s=round(used.wall_s, 3))


class LockSuite(Suite):
    name = "cache-lock"
    description = (f"redis-py Lock acquire (SET NX PX) and release (EVALSHA) cycles from "
                   f"{THREADS} client threads; CPU per request is per cycle.")
    columns = COMPARISON_COLUMNS
    required_binaries = ("redis-server", "redis-benchmark")
    repeats = 3

    def parameters(self, quick: bool) -> dict[str, Any]:
        return {"cycles": 4_000 if quick else 10_000, "threads": THREADS,
                "repeats": 1 if quick else self.repeats,
                "command": "redis.Redis().lock(name, timeout=10): acquire(blocking=False), "
                           "release()"}

    def run(self, ctx: Context) -> list[Row]:
        params = self.parameters(ctx.quick)
        servers = [ctx.start_jobcached(), ctx.start_redis()]
        for server in servers:
            run_test(ctx, server, "ping_mbulk", requests=WARMUP_REQUESTS, clients=50,
                     pipeline=1)
        started = time.monotonic()
        pairs = [tuple(run_lock_cycles(ctx, server, params["cycles"]) for server in servers)
                 for _ in range(params["repeats"])]
        jc, theirs = (median_run((p[i] for p in pairs), lambda r: r.ok,
                                 lambda r: r.cpu_us_per_req or 0.0) for i in range(2))
        row = comparison_row("lock_cycle", 1, jc, theirs)
        _add_spread(row, pairs)
        ctx.log(_progress_line(row, time.monotonic() - started))
        return [row]


register(LockSuite())
