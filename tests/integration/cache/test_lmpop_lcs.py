"""LMPOP / BLMPOP (non-blocking paths) and LCS against redis-server 7.0, RESP2 and RESP3."""

from __future__ import annotations

import random

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair
from tests.integration.cache.test_zsets import check_bytes, check_command_info


def test_command_info(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_command_info(server, redis_server, ["LMPOP", "BLMPOP", "LCS"])


WRONG_ARITY = [("LMPOP", "1", "k"), ("BLMPOP", "0", "1", "k"), ("LCS", "a")]


def test_wrong_number_of_arguments(pair: Pair) -> None:
    for argv in WRONG_ARITY:
        pair.check(*argv)


LMPOP = [
    ("LMPOP", "1", "l1", "LEFT"),
    ("LMPOP", "1", "l1", "right", "COUNT", "2"),
    ("LMPOP", "2", "missing", "l1", "LEFT", "count", "10"),
    ("LMPOP", "2", "missing", "nope", "LEFT"),
    ("LMPOP", "2", "l1", "str", "RIGHT"),
    ("LMPOP", "2", "str", "l1", "RIGHT"),
    ("LMPOP", "2", "missing", "str", "RIGHT"),
    ("LMPOP", "1", "zs", "LEFT"),
    ("LMPOP", "0", "l1", "LEFT"), ("LMPOP", "-1", "l1", "LEFT"), ("LMPOP", "x", "l1", "LEFT"),
    ("LMPOP", "3", "l1", "LEFT"), ("LMPOP", "1", "l1", "MIN"), ("LMPOP", "1", "l1"),
    ("LMPOP", "1", "l1", "LEFT", "COUNT", "0"), ("LMPOP", "1", "l1", "LEFT", "COUNT", "-2"),
    ("LMPOP", "1", "l1", "LEFT", "COUNT"), ("LMPOP", "1", "l1", "LEFT", "BOGUS"),
    ("LMPOP", "1", "l1", "LEFT", "COUNT", "1", "COUNT", "1"),
    ("LMPOP", "9223372036854775807", "l1", "LEFT"),
    ("BLMPOP", "0", "1", "l1", "RIGHT", "COUNT", "2"),
    ("BLMPOP", "0.01", "2", "missing", "l1", "LEFT"),
    ("BLMPOP", "-1", "1", "l1", "LEFT"), ("BLMPOP", "x", "1", "l1", "LEFT"),
    ("BLMPOP", "0", "0", "l1", "LEFT"), ("BLMPOP", "0", "1", "str", "LEFT"),
    ("BLMPOP", "0", "1", "l1", "UP"), ("BLMPOP", "0", "1", "l1", "LEFT", "COUNT", "0"),
]


def test_lmpop(pair: Pair) -> None:
    for argv in LMPOP:
        pair.flush()
        pair.check("RPUSH", "l1", "a", "b", "c", "d")
        pair.check("SET", "str", "v")
        pair.check("ZADD", "zs", "1", "x")
        pair.check(*argv)
        pair.check("LRANGE", "l1", "0", "-1")


def test_lmpop_empties_the_list(pair: Pair) -> None:
    pair.check("RPUSH", "l", "a", "b")
    pair.check("LMPOP", "1", "l", "LEFT", "COUNT", "3")
    pair.check("EXISTS", "l")
    pair.check("LMPOP", "1", "l", "LEFT")
    pair.check("BLMPOP", "0.01", "1", "l", "LEFT")


def test_lmpop_reply_bytes(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_bytes(server, redis_server, [
        ("RPUSH", "l", "a", "b"), ("LMPOP", "1", "l", "RIGHT", "COUNT", "5"),
        ("LMPOP", "1", "l", "LEFT"), ("BLMPOP", "0.01", "1", "l", "LEFT"),
        ("SET", "a", "ohmytext"), ("SET", "b", "mynewtext"), ("LCS", "a", "b"),
        ("LCS", "a", "b", "IDX", "WITHMATCHLEN"), ("LCS", "a", "b", "LEN"),
    ])


LCS = [
    ("LCS", "a", "b"), ("LCS", "b", "a"), ("LCS", "a", "b", "LEN"), ("LCS", "a", "b", "IDX"),
    ("LCS", "a", "b", "IDX", "WITHMATCHLEN"), ("LCS", "a", "b", "IDX", "MINMATCHLEN", "4"),
    ("LCS", "a", "b", "idx", "minmatchlen", "-3", "withmatchlen"),
    ("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "MINMATCHLEN", "1"),
    ("LCS", "a", "missing"), ("LCS", "missing", "a", "IDX"), ("LCS", "missing", "nope", "LEN"),
    ("LCS", "a", "a", "IDX", "WITHMATCHLEN"), ("LCS", "num", "a"),
    ("LCS", "a", "b", "LEN", "IDX"), ("LCS", "a", "b", "IDX", "LEN"),
    ("LCS", "a", "b", "MINMATCHLEN"), ("LCS", "a", "b", "MINMATCHLEN", "x"),
    ("LCS", "a", "b", "BOGUS"), ("LCS", "a", "lst"), ("LCS", "lst", "a", "BOGUS"),
    ("LCS", "a", "b", "LEN", "WITHMATCHLEN"),
]


def test_lcs(pair: Pair) -> None:
    pair.check("MSET", "a", "ohmytext", "b", "mynewtext", "num", "12345")
    pair.check("RPUSH", "lst", "x")
    for argv in LCS:
        pair.check(*argv)


def test_lcs_random_strings_match_redis(pair: Pair) -> None:
    """Ties in the table decide which subsequence and ranges come out: random small alphabets
    make many of them."""
    rng = random.Random(16)
    for _ in range(25):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        b = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 30)))
        pair.check("MSET", "x", a or "-", "y", b or "-")
        pair.check("LCS", "x", "y")
        pair.check("LCS", "x", "y", "IDX", "WITHMATCHLEN")
        pair.check("LCS", "y", "x", "IDX", "MINMATCHLEN", "2")


def test_multi_pops_from_scripts_do_not_block(pair: Pair) -> None:
    """Redis 7.0 lets scripts call BLMPOP and BZMPOP (no `noscript` flag, unlike BLPOP): they
    answer at once, with data or as on a timeout."""
    pair.check("RPUSH", "l", "a", "b", "c")
    pair.check("ZADD", "z", "1.5", "m")
    for call in ["redis.call('BLMPOP', 0, 1, 'nothing', 'LEFT')",
                 "redis.call('BLMPOP', 0, 2, 'nothing', 'l', 'RIGHT', 'COUNT', 2)",
                 "redis.call('BZMPOP', 0, 1, 'nothing', 'MIN')",
                 "redis.call('BZMPOP', 0, 1, 'z', 'MAX')",
                 "redis.call('LMPOP', 1, 'l', 'LEFT')", "redis.call('BLPOP', 'l', 0)",
                 "redis.call('LCS', 'l', 'nothing')"]:
        pair.check("EVAL", f"return {call}", "0")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("EXISTS", "z")
