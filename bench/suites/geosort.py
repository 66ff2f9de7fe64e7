"""GEO and SORT suites: jobcached vs redis-server on the same data, same commands.

Two suites because the costs differ by two orders of magnitude (as `cache-bits` and `cache-hll`):
a GEOSEARCH walks up to nine geohash cells of a 100,000-member geo set and measures each
candidate's distance (tens of microseconds in Redis: many requests, or the CPU readings would be
a handful of clock ticks); a SORT parses and sorts 10,000 numbers on every call, nothing cached
(milliseconds: few requests, or redis-benchmark's timeout would cut jobcached off).
redis-benchmark has no test for them, so each runs as a custom command. Before anything is
measured, both servers get the same data through a plain client (fixed seed):

- `geo:100k`: 100,000 members spread uniformly over lon -10..30, lat 35..60 (about Europe);
- `sort:10k`: a list of 10,000 random integers.

- GEOSEARCH_100K: the 10 members nearest to a point, within 20 km (about 200 candidates).
- SORT_10K: the whole list sorted numerically, only the 10 smallest returned (LIMIT 0 10).
"""

from __future__ import annotations

import random

import redis

from bench.context import Server
from bench.redisbench import RedisBenchmarkSuite
from bench.suite import register

GEO_MEMBERS = 100_000
SORT_ELEMENTS = 10_000
PRELOAD_BATCH = 5_000  # members per GEOADD / elements per RPUSH while preloading


def preload(server: Server) -> None:
    """The same geo set and list on `server`."""
    rng = random.Random(70)
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        for start in range(0, GEO_MEMBERS, PRELOAD_BATCH):
            args: list[str] = []
            for i in range(start, start + PRELOAD_BATCH):
                args += [f"{rng.uniform(-10, 30):.6f}", f"{rng.uniform(35, 60):.6f}", f"m{i}"]
            client.execute_command("GEOADD", "geo:100k", *args)
        values = [rng.randrange(10**9) for _ in range(SORT_ELEMENTS)]
        for start in range(0, SORT_ELEMENTS, PRELOAD_BATCH):
            client.rpush("sort:10k", *values[start : start + PRELOAD_BATCH])
    finally:
        client.close()


register(RedisBenchmarkSuite(
    "cache-geo",
    "GEOSEARCH (the 10 nearest within 20 km) over a 100,000-member geo set, 50 clients, "
    "without pipelining.",
    ("geosearch_100k",),
    requests=20_000, quick_requests=5_000, pipelines=(1,),
    commands={
        "geosearch_100k": ("GEOSEARCH", "geo:100k", "FROMLONLAT", "10", "47", "BYRADIUS",
                           "20", "km", "ASC", "COUNT", "10"),
    },
    preload=preload,
))

register(RedisBenchmarkSuite(
    "cache-sort",
    "SORT of a 10,000-element list (numeric, the 10 smallest returned), 50 clients, without "
    "pipelining.",
    ("sort_10k",),
    requests=1_000, quick_requests=300, pipelines=(1,),
    commands={"sort_10k": ("SORT", "sort:10k", "LIMIT", "0", "10")},
    preload=preload,
))
