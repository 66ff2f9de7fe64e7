"""SORT and SORT_RO against redis-server 7.0, in RESP2 and RESP3."""

from __future__ import annotations

import pytest

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair
from tests.integration.cache.test_zsets import check_command_info


def test_command_info(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_command_info(server, redis_server, ["SORT", "SORT_RO"])


@pytest.mark.parametrize("argv", [("SORT",), ("SORT_RO",)], ids=lambda a: a[0])
def test_wrong_number_of_arguments(pair: Pair, argv: tuple[str, ...]) -> None:
    pair.check(*argv)


def _fill(pair: Pair) -> None:
    pair.check("RPUSH", "l", "3", "1", "2", "10", "-1.5", "1e2", "0x10", " 7", "2")
    pair.check("SADD", "s", "5", "3", "8", "-2", "0", "100", "11")
    pair.check("ZADD", "z", "1", "c", "2", "a", "3", "b", "4", "d")
    pair.check("RPUSH", "words", "banana", "apple", "Cherry", "apple2", "", "b\x00z", "b")
    for k, v in [("w_c", "3"), ("w_a", "1"), ("w_b", "20"), ("w_5", "-1"), ("w_3", "4"),
                 ("w_8", "0"), ("w_0", "2.5"), ("w_100", "1e3"), ("w_-2", "9"),
                 ("name_c", "gamma"), ("name_a", "alpha"), ("name_b", "beta")]:
        pair.check("SET", k, v)
    pair.check("HSET", "h_a", "w", "9", "n", "A")
    pair.check("HSET", "h_b", "w", "7", "n", "B")
    pair.check("HSET", "h_c", "w", "8")


def test_plain_sorts(pair: Pair) -> None:
    _fill(pair)
    for key in ["l", "s"]:
        for opts in [(), ("DESC",), ("ASC",), ("LIMIT", "0", "3"), ("LIMIT", "2", "3", "DESC"),
                     ("LIMIT", "-5", "2"), ("LIMIT", "1", "-1"), ("LIMIT", "100", "5"),
                     ("LIMIT", "0", "0"), ("ALPHA",), ("ALPHA", "DESC", "LIMIT", "1", "4"),
                     ("limit", "3", "100", "alpha")]:
            pair.check("SORT", key, *opts)
            pair.check("SORT_RO", key, *opts)
    for opts in [("ALPHA",), ("ALPHA", "DESC"), ("ALPHA", "LIMIT", "2", "2")]:
        pair.check("SORT", "words", *opts)
        pair.check("SORT", "z", *opts)
    pair.check("SORT", "missing")
    pair.check("SORT", "missing", "BY", "nosort", "STORE", "dst")
    pair.check("EXISTS", "dst")


def test_by_patterns(pair: Pair) -> None:
    _fill(pair)
    pair.check("RPUSH", "keys", "a", "b", "c", "d")
    for opts in [("BY", "w_*"), ("BY", "w_*", "DESC"), ("BY", "h_*->w"), ("BY", "h_*->w", "DESC"),
                 ("BY", "name_*", "ALPHA"), ("BY", "name_*", "ALPHA", "DESC"),
                 ("BY", "w_*", "LIMIT", "1", "2"),
                 ("BY", "nosort"), ("BY", "nosort", "DESC"), ("BY", "nosort", "LIMIT", "1", "2"),
                 ("BY", "nosort", "DESC", "LIMIT", "1", "2"), ("BY", "w_*->"),
                 ("BY", "h_*->missing"), ("BY", "l")]:
        pair.check("SORT", "keys", *opts)
        pair.check("SORT", "z", *opts)
    # Equal ALPHA weights (here: missing) keep the load order: the list's, or the sorted set's
    # hash order in Redis, which is unspecified.
    pair.check("SORT", "keys", "BY", "h_*->n", "ALPHA")
    pair.check("SORT", "keys", "by", "x*y", "alpha", "desc")
    pair.check("SORT", "z", "BY", "h_*->n", "ALPHA", unordered=True)
    pair.check("SORT", "s", "BY", "w_*")
    pair.check("SORT", "s", "BY", "w_*", "DESC", "LIMIT", "2", "3")
    pair.check("SORT", "s", "BY", "nosort", unordered=True)
    pair.check("SORT", "s", "BY", "nosort", "DESC", unordered=True)
    # In a script a set is sorted anyway (as ALPHA), so its effects do not depend on set order.
    pair.check("EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'nosort')", "1", "s")
    pair.check("EVAL", "return redis.call('SORT_RO', KEYS[1], 'BY', 'nosort', 'DESC')", "1", "s")


def test_get_patterns(pair: Pair) -> None:
    _fill(pair)
    pair.check("RPUSH", "keys", "a", "b", "c", "d")
    for opts in [("GET", "#"), ("GET", "name_*"), ("GET", "#", "GET", "name_*", "GET", "h_*->n"),
                 ("BY", "w_*", "GET", "name_*", "GET", "w_*"), ("GET", "h_*->w", "DESC"),
                 ("GET", "nostar"), ("GET", "h_*"), ("GET", "name_*->x"), ("GET", "*"),
                 ("BY", "nosort", "GET", "#", "GET", "name_*", "LIMIT", "1", "2")]:
        pair.check("SORT", "keys", *opts, "ALPHA")
        pair.check("SORT_RO", "z", *opts, "ALPHA")


def test_store(pair: Pair) -> None:
    _fill(pair)
    pair.check("SET", "dst", "string")
    pair.check("EXPIRE", "dst", "100")
    pair.check("SORT", "l", "STORE", "dst")
    pair.check("TYPE", "dst")
    pair.check("TTL", "dst")
    pair.check("LRANGE", "dst", "0", "-1")
    pair.check("HSET", "dst2", "f", "v")
    pair.check("SORT", "s", "BY", "nosort", "STORE", "dst2")  # a stored set is always sorted
    pair.check("LRANGE", "dst2", "0", "-1")
    pair.check("SORT", "s", "BY", "nosort", "DESC", "LIMIT", "1", "3", "STORE", "dst2")
    pair.check("LRANGE", "dst2", "0", "-1")
    pair.check("RPUSH", "keys", "a", "b", "c", "d")
    pair.check("SORT", "keys", "BY", "w_*", "GET", "#", "GET", "name_*", "STORE", "dst3")
    pair.check("LRANGE", "dst3", "0", "-1")
    pair.check("SORT", "words", "ALPHA", "STORE", "dst4")
    pair.check("LRANGE", "dst4", "0", "-1")
    pair.check("SORT", "keys", "LIMIT", "0", "0", "ALPHA", "STORE", "dst4")
    pair.check("EXISTS", "dst4")
    pair.check("SORT", "keys", "LIMIT", "0", "0", "ALPHA", "STORE", "dst4")
    pair.check("SORT", "l", "STORE", "l")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("SORT_RO", "l", "STORE", "dst5")
    pair.check("EXISTS", "dst5")


def test_errors(pair: Pair) -> None:
    _fill(pair)
    pair.check("SET", "str", "x")
    pair.check("RPUSH", "keys", "a", "x")
    for argv in [("SORT", "str"), ("SORT", "str", "BOGUS"), ("SORT", "l", "BOGUS"),
                 ("SORT", "words"), ("SORT", "words", "STORE", "dst"), ("SORT", "l", "LIMIT", "1"),
                 ("SORT", "l", "LIMIT", "a", "1"), ("SORT", "l", "LIMIT", "1", "1.5"),
                 ("SORT", "l", "BY"), ("SORT", "l", "GET"), ("SORT", "l", "STORE"),
                 ("SORT", "keys", "BY", "name_*"), ("SORT_RO", "l", "STORE", "x"),
                 ("SORT", "missing", "BOGUS"), ("HSET", "hh", "f", "v"), ("SORT", "hh")]:
        pair.check(*argv)
    pair.check("EXISTS", "dst")
    pair.check("RPUSH", "odd", "", "  3", "inf", "-inf", "1\x00junk", "0x1p2", "-0", "0", "+5")
    pair.check("SORT", "odd")
    pair.check("SORT", "odd", "DESC")
    for weight in [" ", "5 ", "1e", "abc"]:
        pair.check("SET", "w_x", weight)
        pair.check("SORT", "keys", "BY", "w_*")
    pair.check("RPUSH", "bad", "1", "nan", "2")
    pair.check("SORT", "bad")
    pair.check("RPUSH", "big", "1e400", "1")
    pair.check("SORT", "big")
    pair.check("RPUSH", "tiny", "1e-400", "1")
    pair.check("SORT", "tiny")
    # Redis 7.0 leaves strtod's ERANGE in errno and never clears it before the next SORT (a
    # redis-server bug: later sorts fail until some other call resets errno); a ZADD does.
    pair.check("ZADD", "errno-reset", "1", "x")


def test_short_limits_of_long_lists(pair: Pair) -> None:
    """A LIMIT window much shorter than the list (taken with a heap when no weights are equal)
    and lists with equal weights (byte order among them), both directions."""
    distinct = [str((i * 7919) % 1000) for i in range(300)]
    pair.check("RPUSH", "big", *distinct)
    pair.check("RPUSH", "ties", *[str(i % 7) for i in range(200)], "-0", "0.0", "00", "1e0")
    for key in ["big", "ties"]:
        for opts in [("LIMIT", "0", "5"), ("LIMIT", "3", "4", "DESC"), ("LIMIT", "290", "20"),
                     ("LIMIT", "0", "1", "DESC"), ("LIMIT", "10", "0")]:
            pair.check("SORT", key, *opts)
    pair.check("SORT", "big", "BY", "big", "LIMIT", "0", "3", "DESC")
