"""List commands against redis-server 7.0: replies, options, edge cases and error texts."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair
from tests.integration.cache.test_zsets import check_bytes, check_command_info

LIST_COMMANDS = [
    "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LLEN", "LRANGE", "LINDEX", "LSET",
    "LINSERT", "LREM", "LTRIM", "LPOS", "LMOVE", "RPOPLPUSH", "BLPOP", "BRPOP", "BLMOVE",
    "BRPOPLPUSH",
]


def test_command_info(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_command_info(server, redis_server, LIST_COMMANDS)


WRONG_ARITY = [
    ("LPUSH", "k"), ("RPUSH", "k"), ("LPUSHX", "k"), ("RPUSHX", "k"), ("LPOP",), ("RPOP",),
    ("LPOP", "k", "1", "2"), ("RPOP", "k", "1", "2"), ("LLEN",), ("LLEN", "k", "x"),
    ("LRANGE", "k", "0"), ("LINDEX", "k"), ("LSET", "k", "0"), ("LINSERT", "k", "BEFORE", "p"),
    ("LREM", "k", "0"), ("LTRIM", "k", "0"), ("LPOS", "k"), ("LMOVE", "a", "b", "LEFT"),
    ("RPOPLPUSH", "a"), ("BLPOP", "k"), ("BRPOP", "k"), ("BLMOVE", "a", "b", "LEFT", "LEFT"),
    ("BRPOPLPUSH", "a", "b"),
]


@pytest.mark.parametrize("argv", WRONG_ARITY, ids=lambda a: " ".join(a))
def test_wrong_number_of_arguments(pair: Pair, argv: tuple[str, ...]) -> None:
    pair.check(*argv)


def test_push_and_length(pair: Pair) -> None:
    pair.check("LPUSH", "l", "a", "b", "c")
    pair.check("RPUSH", "l", "d", "e")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("LLEN", "l")
    pair.check("LLEN", "missing")
    pair.check("LPUSHX", "missing", "a")
    pair.check("RPUSHX", "missing", "a")
    pair.check("EXISTS", "missing")
    pair.check("LPUSHX", "l", "x", "y")
    pair.check("RPUSHX", "l", "z")
    pair.check("LRANGE", "l", "0", "-1")


def test_wrong_type(pair: Pair) -> None:
    pair.check("SET", "s", "v")
    for argv in [("LPUSH", "s", "a"), ("RPUSH", "s", "a"), ("LPUSHX", "s", "a"),
                 ("RPUSHX", "s", "a"), ("LPOP", "s"), ("RPOP", "s", "2"), ("LPOP", "s", "0"),
                 ("LLEN", "s"), ("LRANGE", "s", "0", "-1"), ("LINDEX", "s", "0"),
                 ("LINDEX", "s", "abc"), ("LSET", "s", "0", "x"), ("LSET", "s", "abc", "x"),
                 ("LINSERT", "s", "BEFORE", "a", "b"), ("LREM", "s", "0", "a"),
                 ("LTRIM", "s", "0", "1"), ("LPOS", "s", "a"), ("LMOVE", "s", "d", "LEFT", "LEFT"),
                 ("RPOPLPUSH", "s", "d"), ("BLPOP", "s", "0"), ("BRPOP", "nokey", "s", "0"),
                 ("BLMOVE", "s", "d", "LEFT", "RIGHT", "0")]:
        pair.check(*argv)
    pair.check("RPUSH", "l", "a")
    pair.check("LMOVE", "l", "s", "LEFT", "LEFT")
    pair.check("RPOPLPUSH", "l", "s")
    pair.check("BLMOVE", "l", "s", "LEFT", "LEFT", "0")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("GET", "s")


def test_pop_with_and_without_count(pair: Pair) -> None:
    pair.check("RPUSH", "l", "a", "b", "c", "d", "e")
    pair.check("LPOP", "l")
    pair.check("RPOP", "l")
    pair.check("LPOP", "l", "0")
    pair.check("LPOP", "l", "2")
    pair.check("RPOP", "l", "5")
    pair.check("EXISTS", "l")
    pair.check("LPOP", "l")
    pair.check("LPOP", "l", "1")
    pair.check("RPOP", "l", "0")
    for bad in ["-1", "abc", "1.5", "9223372036854775808", ""]:
        pair.check("LPOP", "l", bad)
        pair.check("RPOP", "l", bad)


def test_lrange_and_lindex(pair: Pair) -> None:
    pair.check("RPUSH", "l", *"abcdefghij")
    for start, stop in [("0", "-1"), ("0", "0"), ("-3", "-1"), ("2", "5"), ("5", "2"),
                        ("-100", "100"), ("100", "200"), ("-1", "-2"), ("9", "9"),
                        ("-9223372036854775808", "9223372036854775807"), ("8", "100")]:
        pair.check("LRANGE", "l", start, stop)
    for index in ["0", "9", "10", "-1", "-10", "-11", "9223372036854775807"]:
        pair.check("LINDEX", "l", index)
    pair.check("LRANGE", "missing", "0", "-1")
    pair.check("LINDEX", "missing", "0")
    pair.check("LINDEX", "missing", "abc")
    pair.check("LRANGE", "l", "0", "abc")
    pair.check("LRANGE", "l", "1.0", "2")
    pair.check("LRANGE", "l", " 1", "2")
    pair.check("LINDEX", "l", "abc")


def test_lset(pair: Pair) -> None:
    pair.check("LSET", "missing", "0", "x")
    pair.check("RPUSH", "l", "a", "b", "c")
    pair.check("LSET", "l", "0", "A")
    pair.check("LSET", "l", "-1", "C")
    pair.check("LSET", "l", "3", "x")
    pair.check("LSET", "l", "-4", "x")
    pair.check("LSET", "l", "abc", "x")
    pair.check("LRANGE", "l", "0", "-1")


def test_linsert(pair: Pair) -> None:
    pair.check("LINSERT", "missing", "BEFORE", "a", "x")
    pair.check("LINSERT", "missing", "middle", "a", "x")
    pair.check("EXISTS", "missing")
    pair.check("RPUSH", "l", "a", "b", "a")
    pair.check("LINSERT", "l", "BEFORE", "a", "x")
    pair.check("LINSERT", "l", "after", "a", "y")
    pair.check("LINSERT", "l", "AFTER", "nope", "z")
    pair.check("LINSERT", "l", "up", "a", "z")
    pair.check("LRANGE", "l", "0", "-1")


def test_lrem(pair: Pair) -> None:
    pair.check("RPUSH", "l", "a", "b", "a", "c", "a", "b", "a")
    pair.check("LREM", "l", "2", "a")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("LREM", "l", "-1", "a")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("LREM", "l", "0", "b")
    pair.check("LREM", "l", "0", "nope")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("LREM", "l", "0", "a")
    pair.check("LREM", "l", "0", "c")
    pair.check("EXISTS", "l")
    pair.check("LREM", "missing", "0", "a")
    pair.check("LREM", "missing", "abc", "a")


def test_ltrim(pair: Pair) -> None:
    for start, stop in [("1", "-2"), ("0", "-1"), ("-100", "100"), ("2", "1"), ("5", "10"),
                        ("0", "0"), ("-1", "-1")]:
        pair.check("DEL", "l")
        pair.check("RPUSH", "l", *"abcdef")
        pair.check("LTRIM", "l", start, stop)
        pair.check("LRANGE", "l", "0", "-1")
        pair.check("EXISTS", "l")
    pair.check("LTRIM", "missing", "0", "1")
    pair.check("LTRIM", "l", "a", "1")
    pair.check("LTRIM", "l", "0", "b")


def test_lpos(pair: Pair) -> None:
    pair.check("RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c")
    for options in [(), ("RANK", "1"), ("RANK", "2"), ("RANK", "-1"), ("RANK", "-3"),
                    ("RANK", "4"), ("COUNT", "0"), ("COUNT", "2"), ("COUNT", "10"),
                    ("RANK", "-1", "COUNT", "2"), ("RANK", "2", "COUNT", "0"),
                    ("MAXLEN", "3"), ("MAXLEN", "2"), ("MAXLEN", "0", "COUNT", "0"),
                    ("RANK", "-1", "MAXLEN", "1"), ("RANK", "-1", "MAXLEN", "2", "COUNT", "0"),
                    ("rank", "1", "count", "1", "maxlen", "8"),
                    ("RANK", "-9223372036854775808"), ("RANK", "9223372036854775807"),
                    ("RANK", "-9223372036854775808", "COUNT", "1")]:
        pair.check("LPOS", "l", "c", *options)
    pair.check("LPOS", "l", "nope")
    pair.check("LPOS", "l", "nope", "COUNT", "0")
    pair.check("LPOS", "missing", "c")
    pair.check("LPOS", "missing", "c", "COUNT", "1")
    for options in [("RANK", "0"), ("COUNT", "-1"), ("MAXLEN", "-1"), ("COUNT", "abc"),
                    ("MAXLEN", "x"), ("RANK", "x"), ("RANK",), ("FOO", "1"), ("COUNT",)]:
        pair.check("LPOS", "l", "c", *options)
        pair.check("LPOS", "missing", "c", *options)


def test_lmove(pair: Pair) -> None:
    pair.check("RPUSH", "src", "a", "b", "c")
    pair.check("LMOVE", "src", "dst", "LEFT", "RIGHT")
    pair.check("LMOVE", "src", "dst", "right", "left")
    pair.check("LRANGE", "src", "0", "-1")
    pair.check("LRANGE", "dst", "0", "-1")
    pair.check("LMOVE", "dst", "dst", "LEFT", "RIGHT")
    pair.check("LRANGE", "dst", "0", "-1")
    pair.check("RPOPLPUSH", "dst", "dst")
    pair.check("LRANGE", "dst", "0", "-1")
    pair.check("LMOVE", "src", "dst", "LEFT", "LEFT")
    pair.check("EXISTS", "src")
    pair.check("LMOVE", "src", "dst", "LEFT", "LEFT")
    pair.check("RPOPLPUSH", "dst", "other")
    pair.check("LRANGE", "other", "0", "-1")
    pair.check("LMOVE", "src", "dst", "UP", "LEFT")
    pair.check("LMOVE", "src", "dst", "LEFT", "DOWN")
    pair.check("BLMOVE", "dst", "x", "UP", "LEFT", "0")
    pair.check("BLMOVE", "dst", "x", "LEFT", "LEFT", "abc")
    pair.check("BLMOVE", "dst", "x", "LEFT", "LEFT", "0")
    pair.check("BRPOPLPUSH", "dst", "x", "0")
    pair.check("LRANGE", "x", "0", "-1")


def test_blocking_pops_with_data_reply_at_once(pair: Pair) -> None:
    pair.check("RPUSH", "a", "1", "2")
    pair.check("RPUSH", "b", "3")
    pair.check("BLPOP", "missing", "a", "b", "0")
    pair.check("BRPOP", "missing", "b", "a", "0")
    pair.check("BLPOP", "b", "a", "1.5")
    pair.check("BRPOP", "a", "b", "0.01")
    pair.check("EXISTS", "a", "b")


def test_blocking_timeout_arguments(pair: Pair) -> None:
    pair.check("RPUSH", "l", *[str(i) for i in range(100)])
    for timeout in ["abc", "-1", "-0.5", "inf", "-inf", "nan", "1e400", "1e5000", "1e-5000",
                    " 1", "1 ", "", "9223372036854775807", "92233720368547758",
                    "0x10", "0x1p3", "+1", ".5", "5.", "1e3", "-0", "0.0001"]:
        pair.check("BLPOP", "l", timeout)
        pair.check("BRPOP", "l", timeout)
    pair.check("LRANGE", "l", "0", "-1")


def test_blocking_in_multi_does_not_block(pair: Pair) -> None:
    pair.check("MULTI")
    pair.check("BLPOP", "missing", "0")
    pair.check("BRPOP", "missing", "other", "0")
    pair.check("BLMOVE", "missing", "d", "LEFT", "LEFT", "0")
    pair.check("LPUSH", "missing", "a")
    pair.check("BLPOP", "missing", "0")
    pair.check("EXEC")


def test_empty_list_disappears(pair: Pair) -> None:
    pair.check("RPUSH", "l", "a")
    pair.check("LPOP", "l")
    pair.check("EXISTS", "l")
    pair.check("TYPE", "l")
    pair.check("RPUSH", "l", "a", "b")
    pair.check("LREM", "l", "0", "a")
    pair.check("RPOP", "l", "1")
    pair.check("EXISTS", "l")


def test_binary_elements(pair: Pair) -> None:
    pair.check("RPUSH", "l", b"\x00\xff", b"", b"a\r\nb")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("LPOS", "l", b"")
    pair.check("LREM", "l", "0", b"")
    pair.check("LRANGE", "l", "0", "-1")


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def test_large_list_and_memory(server: ServerProcess) -> None:
    r = server.client()
    r.delete("big", "fresh")
    r.rpush("big", *range(100_000))
    assert r.llen("big") == 100_000
    assert r.lrange("big", 50_000, 50_002) == [b"50000", b"50001", b"50002"]
    assert r.lrange("big", -2, -1) == [b"99998", b"99999"]
    assert r.lpos("big", "99999", maxlen=0) == 99999
    assert r.lpos("big", "99999", maxlen=10) is None
    assert r.ltrim("big", 10, 19)
    assert r.lrange("big", 0, -1) == [str(i).encode() for i in range(10, 20)]
    # The running memory figure after all that matches a list built directly (a deque's
    # blocks may differ by one).
    trimmed = used_memory(r)
    r.delete("big")
    base = used_memory(r)
    r.rpush("big", *range(10, 20))
    assert abs((trimmed - base) - (used_memory(r) - base)) <= 1024
    r.delete("big")
    assert used_memory(r) == base
    r.close()


def test_pipeline_through_redis_py(server: ServerProcess) -> None:
    r = server.client()
    r.delete("p")
    with r.pipeline() as pipe:
        pipe.rpush("p", "a", "b").lmove("p", "p", "LEFT", "RIGHT").lrange("p", 0, -1)
        assert pipe.execute() == [2, b"a", [b"b", b"a"]]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.set("str", "x")
        r.lpush("str", "a")
    r.close()


def test_reply_bytes(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_bytes(server, redis_server, [
        ("LPOP", "missing"), ("LPOP", "missing", "1"), ("RPOP", "missing", "0"),
        ("RPUSH", "l", "a", "b"), ("LPOP", "l", "0"), ("LPOS", "l", "x"),
        ("LPOS", "l", "x", "COUNT", "0"), ("LPOS", "missing", "x", "COUNT", "0"),
        ("LINDEX", "l", "5"), ("LMOVE", "missing", "l", "LEFT", "LEFT"), ("LRANGE", "l", "5", "9"),
        ("BLPOP", "l", "0"), ("BRPOP", "missing", "l", "0"), ("LTRIM", "l", "0", "-1"),
        ("LSET", "missing", "0", "x"),
    ])
