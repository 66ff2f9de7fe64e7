"""Bitmap and HyperLogLog suites: jobcached vs redis-server on the same data, same commands.

Two suites because the costs differ by two orders of magnitude: `cache-bits` (whole-value
work, milliseconds per call: few requests, or redis-benchmark's timeout would cut jobcached
off) and `cache-hll` (per-element work, microseconds per call: many requests, or the CPU
readings would be a handful of clock ticks).

redis-benchmark has no test for these commands, so each runs as a custom command
(`redis-benchmark ... BITCOUNT bits:1mb`). Before anything is measured, both servers get the
same data through a plain client: a 1 MB random string (fixed seed), and two dense
HyperLogLogs of 100,000 elements each.

- BITCOUNT_1MB: the whole 1 MB string, every call (nothing is cached).
- PFADD: a random element (`-r 1000000`) into a dense HyperLogLog: hash, one register.
- PFCOUNT: one HyperLogLog, whose cached cardinality is valid after the first call.
- PFCOUNT_UNION: two HyperLogLogs, merged and counted on every call (no cache applies).
"""

from __future__ import annotations

import random

import redis

from bench.context import Server
from bench.redisbench import RedisBenchmarkSuite
from bench.suite import register

BITMAP_BYTES = 1 << 20
HLL_ELEMENTS = 100_000
PRELOAD_BATCH = 10_000  # elements per PFADD while preloading
RANDOM_ELEMENTS = 1_000_000  # redis-benchmark -r: the range of __rand_int__


def preload(server: Server) -> None:
    """The same 1 MB string and two dense HyperLogLogs on `server`."""
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        client.set("bits:1mb", random.Random(16).randbytes(BITMAP_BYTES))
        for key in ("hll:a", "hll:b"):
            for start in range(0, HLL_ELEMENTS, PRELOAD_BATCH):
                client.pfadd(key, *(f"{key}:{i}" for i in range(start, start + PRELOAD_BATCH)))
    finally:
        client.close()


register(RedisBenchmarkSuite(
    "cache-bits",
    "Whole-value work: BITCOUNT of a 1 MB string and PFCOUNT of two (merged) dense "
    "HyperLogLogs, 50 clients, without pipelining.",
    ("bitcount_1mb", "pfcount_union"),
    requests=5_000, quick_requests=1_000, pipelines=(1,),
    commands={
        "bitcount_1mb": ("BITCOUNT", "bits:1mb"),
        "pfcount_union": ("PFCOUNT", "hll:a", "hll:b"),
    },
    preload=preload,
))

register(RedisBenchmarkSuite(
    "cache-hll",
    "PFADD of a random element into a dense HyperLogLog and PFCOUNT of one (cached) "
    "HyperLogLog, 50 clients, without and with 16-deep pipelining.",
    ("pfadd", "pfcount"),
    requests=100_000, quick_requests=20_000,
    commands={
        "pfadd": ("-r", str(RANDOM_ELEMENTS), "PFADD", "hll:a", "el:__rand_int__"),
        "pfcount": ("PFCOUNT", "hll:b"),
    },
    preload=preload,
))
