"""Cache suites: jobcached vs redis-server under redis-benchmark (see `bench/redisbench.py`)."""

from bench.redisbench import RedisBenchmarkSuite
from bench.suite import register

register(RedisBenchmarkSuite(
    "cache-basic",
    "SET, GET and PING, 50 clients, without and with 16-deep pipelining: the cost of the "
    "connection, codec and dispatch path.",
    ("set", "get", "ping"),
))

register(RedisBenchmarkSuite(
    "cache-types",
    "One write per data type (string INCR, list LPUSH, hash HSET, sorted set ZADD) next to "
    "SET/GET, 50 clients, without and with 16-deep pipelining.",
    ("set", "get", "incr", "lpush", "hset", "zadd"),
))
