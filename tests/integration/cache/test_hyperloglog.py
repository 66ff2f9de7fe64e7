"""HyperLogLog commands against redis-server 7.0 (RESP2 and RESP3).

Beyond equal replies, the stored values must be byte-identical (GET compares them): sparse
opcodes after every kind of split and merge, the promotion to dense, the cached cardinality.
Values written by redis-server are copied into jobcached with SET and must count the same.
"""

from __future__ import annotations

import random

from tests.integration.cache.differential import Pair, raw_call
from tests.integration.cache.test_strings import Local, command_table_matches

HLL_COMMANDS = ["PFADD", "PFCOUNT", "PFMERGE", "PFDEBUG"]


def run(pair: Pair, *commands: tuple[object, ...]) -> None:
    for cmd in commands:
        pair.check(*cmd)


def test_command_table(pair: Pair) -> None:
    command_table_matches(pair, HLL_COMMANDS)


def test_basics_and_errors(pair: Pair) -> None:
    run(pair,
        ("PFADD", "h"), ("GET", "h"), ("PFCOUNT", "h"), ("PFADD", "h"), ("PFADD", "h", "a"),
        ("GET", "h"), ("PFADD", "h", "a"), ("PFCOUNT", "h"), ("GET", "h"),
        ("PFADD", "h", "b", "c", "d", ""), ("PFCOUNT", "h"), ("PFCOUNT", "missing"),
        ("PFCOUNT", "h", "missing"), ("PFCOUNT", "missing", "missing2"),
        ("SET", "s", "not an hll"), ("PFADD", "s", "a"), ("PFCOUNT", "s"), ("PFCOUNT", "h", "s"),
        ("PFMERGE", "s", "h"), ("PFMERGE", "d", "s"), ("EXISTS", "d"),
        ("SET", "bad", b"HYLL\x02" + bytes(20)), ("PFCOUNT", "bad"),
        ("SET", "bad", b"HYLL\x00" + bytes(20)), ("PFCOUNT", "bad"),
        ("SET", "bad", b"HYLL\x01\x00\x00\x00" + b"\xff" * 8 + b"\x00"), ("PFCOUNT", "bad"),
        ("PFADD", "bad", "x"), ("PFMERGE", "d", "bad"), ("PFCOUNT", "h", "bad"),
        ("SET", "bad2", b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xff\x7f\xff"),
        ("PFCOUNT", "bad2"), ("PFCOUNT", "bad2", "h"),
        ("HSET", "hash", "f", "v"), ("PFADD", "hash", "a"), ("PFCOUNT", "hash"),
        ("PFMERGE", "hash"), ("PFMERGE", "d", "hash"),
        ("PFADD",), ("PFCOUNT",), ("PFMERGE",),
        ("PFMERGE", "new"), ("GET", "new"), ("PFMERGE", "new2", "h"), ("GET", "new2"),
        ("PFCOUNT", "new2"), ("GET", "new2"),
        ("SET", "t", "x"), ("DEL", "t"), ("PFADD", "t", "a"), ("EXPIRE", "t", "1000"),
        ("PFADD", "t", "b"), ("TTL", "t"))


def test_growth_to_dense_is_byte_identical(pair: Pair) -> None:
    """Every step from empty to dense: each reply and the value's bytes match."""
    rng = random.Random(3)
    for i in range(1500):
        n = rng.choice([1, 1, 1, 3, 10])
        elements = [f"e{rng.randint(0, 5000)}" for _ in range(n)]
        pair.check("PFADD", "g", *elements)
        if i % 25 == 0:
            pair.check("GET", "g")
            pair.check("PFCOUNT", "g")
            pair.check("GET", "g")
    pair.check("GET", "g")
    pair.check("PFCOUNT", "g")


def test_estimates_match_over_many_sizes(pair: Pair) -> None:
    for size in (0, 1, 2, 10, 100, 1000, 5000, 20000):
        elements = [f"item:{size}:{i}".encode() for i in range(size)]
        for start in range(0, size, 1000):
            pair.check("PFADD", f"n{size}", *elements[start : start + 1000])
        pair.check("PFCOUNT", f"n{size}")
        pair.check("GET", f"n{size}")


def test_merge_and_union_count(pair: Pair) -> None:
    rng = random.Random(5)
    for key, n in (("a", 30), ("b", 200), ("c", 3000), ("d", 5)):
        pair.check("PFADD", key, *[f"m{rng.randint(0, 10**6)}" for _ in range(n)])
    run(pair,
        ("PFCOUNT", "a", "b"), ("PFCOUNT", "a", "b", "c", "d", "missing"),
        ("PFMERGE", "s1", "a", "b"), ("GET", "s1"), ("PFCOUNT", "s1"),
        ("PFMERGE", "s2", "a", "d"), ("GET", "s2"), ("PFMERGE", "a", "b"), ("GET", "a"),
        ("PFMERGE", "s3", "c", "a"), ("GET", "s3"), ("PFCOUNT", "s3"),
        ("PFMERGE", "d", "a", "b", "c"), ("GET", "d"), ("PFMERGE", "d"), ("GET", "d"),
        ("PFCOUNT", "d", "s1", "s2"))


def test_values_written_by_redis_count_the_same(pair: Pair) -> None:
    """A HyperLogLog built by redis-server, copied byte for byte, gives Redis' answers."""
    rng = random.Random(9)
    theirs = pair.theirs
    for key, n in (("r1", 7), ("r2", 400), ("r3", 9000)):
        raw_call(theirs, "PFADD", key, *[f"x{rng.random()}" for _ in range(n)])
        value = raw_call(theirs, "GET", key)
        raw_call(pair.ours, "SET", key, value)
        run(pair, ("PFCOUNT", key), ("GET", key), ("PFADD", key, "one", "more"), ("GET", key))
    run(pair, ("PFCOUNT", "r1", "r2", "r3"), ("PFMERGE", "all", "r1", "r2", "r3"),
        ("GET", "all"))


def test_pfdebug(pair: Pair) -> None:
    run(pair,
        ("PFDEBUG", "ENCODING", "missing"), ("PFDEBUG", "nope", "missing"),
        ("PFADD", "h", "a", "b", "c"), ("PFDEBUG", "ENCODING", "h"), ("PFDEBUG", "decode", "h"),
        ("PFDEBUG", "nope", "h"), ("PFDEBUG", "GETREG", "h"), ("PFDEBUG", "ENCODING", "h"),
        ("GET", "h"), ("PFDEBUG", "DECODE", "h"), ("PFDEBUG", "TODENSE", "h"),
        ("PFADD", "s", "x"), ("PFDEBUG", "TODENSE", "s"), ("GET", "s"), ("PFCOUNT", "s"),
        ("SET", "str", "plain"), ("PFDEBUG", "ENCODING", "str"), ("HSET", "hash", "f", "v"),
        ("PFDEBUG", "ENCODING", "hash"), ("PFDEBUG", "ENCODING"), ("PFDEBUG", "ENCODING", "h", "x"))


def test_effects() -> None:
    local = Local()
    assert local.effects("PFADD", "h", "a") == [[b"PFADD", b"h", b"a"]]
    assert local.effects("PFADD", "h", "a") == []
    assert local.effects("PFCOUNT", "h") == [[b"PFCOUNT", b"h"]]  # the cache was refreshed
    assert local.effects("PFCOUNT", "h") == []
    assert local.effects("PFMERGE", "m", "h") == [[b"PFMERGE", b"m", b"h"]]
    local.memory_is_exact()
