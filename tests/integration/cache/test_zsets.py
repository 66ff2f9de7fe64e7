"""Sorted-set commands against redis-server 7.0, including the exact bytes of double replies."""

from __future__ import annotations

import socket
from typing import Any

import hiredis
import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair, raw_call


def raw_replies(port: int, commands: list[tuple[str, ...]], resp3: bool) -> list[bytes]:
    """The exact bytes of each reply (framed with hiredis), one command at a time."""
    out: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for argv in ([("HELLO", "3")] if resp3 else []) + list(commands):
            request = b"*%d\r\n" % len(argv)
            for arg in argv:
                data = arg.encode() if isinstance(arg, str) else arg
                request += b"$%d\r\n%b\r\n" % (len(data), data)
            sock.sendall(request)
            reader = hiredis.Reader()
            data = b""
            while True:
                chunk = sock.recv(65536)
                assert chunk, "connection closed"
                data += chunk
                reader.feed(chunk)
                if reader.gets() is not False:
                    break
            out.append(data)
    return out[1:] if resp3 else out


def check_bytes(server: ServerProcess, redis_server: RedisServerProcess,
                commands: list[tuple[str, ...]]) -> None:
    """The same commands give byte-identical replies, in RESP2 and in RESP3."""
    for resp3 in (False, True):
        ours = raw_replies(server.port, [("FLUSHALL",), *commands], resp3)
        theirs = raw_replies(redis_server.port, [("FLUSHALL",), *commands], resp3)
        for argv, a, b in zip(commands, ours[1:], theirs[1:], strict=True):
            assert a == b, f"{argv} (resp3={resp3}): jobcached {a!r} != redis {b!r}"


def check_command_info(server: ServerProcess, redis_server: RedisServerProcess,
                       names: list[str]) -> None:
    """COMMAND INFO agrees with Redis on arity, flags and key positions (first, last, step);
    Redis' `noscript` and `movablekeys` flags have no counterpart here."""

    def rows(port: int) -> dict[str, Any]:
        r = redis.Redis(port=port)
        out = {}
        for name in names:
            info = raw_call(r, "COMMAND", "INFO", name)[0]
            flags = sorted(f for f in info[2] if f not in (b"noscript", b"movablekeys"))
            out[name] = (info[1], flags, info[3:6])
        r.close()
        return out

    assert rows(server.port) == rows(redis_server.port)


ZSET_COMMANDS = [
    "ZADD", "ZREM", "ZSCORE", "ZMSCORE", "ZINCRBY", "ZCARD", "ZCOUNT", "ZLEXCOUNT", "ZRANK",
    "ZREVRANK", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX",
    "ZREVRANGE", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREMRANGEBYLEX", "ZPOPMIN", "ZPOPMAX",
    "BZPOPMIN", "BZPOPMAX", "ZSCAN",
]


def test_command_info(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_command_info(server, redis_server, ZSET_COMMANDS)


WRONG_ARITY = [
    ("ZADD", "k", "1"), ("ZINCRBY", "k", "1"), ("ZREM", "k"), ("ZSCORE", "k"),
    ("ZMSCORE", "k"), ("ZCARD",), ("ZCOUNT", "k", "0"), ("ZLEXCOUNT", "k", "-"),
    ("ZRANK", "k"), ("ZREVRANK", "k"), ("ZRANGE", "k", "0"), ("ZRANGEBYSCORE", "k", "0"),
    ("ZREVRANGEBYSCORE", "k", "0"), ("ZRANGEBYLEX", "k", "-"), ("ZREVRANGEBYLEX", "k", "+"),
    ("ZREVRANGE", "k", "0"), ("ZREMRANGEBYRANK", "k", "0"), ("ZREMRANGEBYSCORE", "k", "0"),
    ("ZREMRANGEBYLEX", "k", "-"), ("ZPOPMIN",), ("ZPOPMAX",), ("BZPOPMIN", "k"),
    ("BZPOPMAX", "k"), ("ZSCAN", "k"),
]


@pytest.mark.parametrize("argv", WRONG_ARITY, ids=lambda a: " ".join(a))
def test_wrong_number_of_arguments(pair: Pair, argv: tuple[str, ...]) -> None:
    pair.check(*argv)


def test_zadd_options(pair: Pair) -> None:
    pair.check("ZADD", "z", "1", "a", "2", "b", "3", "c")
    pair.check("ZADD", "z", "NX", "10", "a", "4", "d")
    pair.check("ZADD", "z", "XX", "10", "a", "5", "e")
    pair.check("ZADD", "z", "XX", "CH", "10", "a", "20", "b")
    pair.check("ZADD", "z", "GT", "CH", "5", "a", "30", "b", "1", "new")
    pair.check("ZADD", "z", "LT", "CH", "5", "a", "40", "b")
    pair.check("ZADD", "z", "XX", "GT", "ch", "100", "c", "1", "d")
    pair.check("ZADD", "z", "CH", "5", "a", "5", "a")
    pair.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
    pair.check("ZADD", "z", "INCR", "1.5", "a")
    pair.check("ZADD", "z", "INCR", "NX", "1", "a")
    pair.check("ZADD", "z", "INCR", "XX", "1", "nope")
    pair.check("ZADD", "z", "INCR", "GT", "-1", "a")
    pair.check("ZADD", "z", "INCR", "LT", "-1", "a")
    pair.check("ZADD", "z", "INCR", "GT", "1", "brandnew")
    pair.check("ZADD", "z", "INCR", "CH", "0", "a")
    pair.check("ZADD", "missing", "XX", "1", "a")
    pair.check("ZADD", "missing", "XX", "INCR", "1", "a")
    pair.check("EXISTS", "missing")
    pair.check("ZRANGE", "z", "0", "-1", "WITHSCORES")


def test_zadd_errors_leave_no_trace(pair: Pair) -> None:
    for argv in [("NX", "XX", "1", "a"), ("GT", "LT", "1", "a"), ("NX", "GT", "1", "a"),
                 ("NX", "LT", "1", "a"), ("INCR", "1", "a", "2", "b"), ("1", "a", "2"),
                 ("abc", "a"), ("1", "a", "abc", "b"), ("nan", "a"), ("1e400", "a"),
                 ("1e-400", "a"), (" 1", "a"), ("1 ", "a"), ("", "a"), ("0x", "a"),
                 ("1e", "a"), ("CH",), ("NX", "XX")]:
        pair.check("ZADD", "z", *argv)
        pair.check("EXISTS", "z")
    pair.check("ZINCRBY", "z", "abc", "m")
    pair.check("ZINCRBY", "z", "nx", "m")
    pair.check("ZINCRBY", "z", "incr", "5")
    pair.check("EXISTS", "z")


def test_score_syntax(pair: Pair) -> None:
    pair.check("ZADD", "z", "+1", "a", ".5", "b", "5.", "c", "1e5", "d", "infinity", "e",
               "0x1p-2", "f", "-INF", "g", "1E-3", "h", "0X10", "i", "4e-320", "j")
    pair.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
    pair.check("ZSCORE", "z", "j")


def test_zincrby(pair: Pair) -> None:
    pair.check("ZINCRBY", "z", "1", "a")
    pair.check("ZINCRBY", "z", "0.1", "a")
    pair.check("ZINCRBY", "z", "-1.1", "a")
    pair.check("ZINCRBY", "z", "inf", "a")
    pair.check("ZINCRBY", "z", "-inf", "a")
    pair.check("ZSCORE", "z", "a")
    pair.check("ZADD", "z", "INCR", "-inf", "a")
    pair.check("ZINCRBY", "z", "1e308", "b")
    pair.check("ZINCRBY", "z", "1e308", "b")
    pair.check("ZRANGE", "z", "0", "-1", "WITHSCORES")


def test_reads(pair: Pair) -> None:
    pair.check("ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d")
    for argv in [("ZSCORE", "z", "b"), ("ZSCORE", "z", "x"), ("ZSCORE", "missing", "a"),
                 ("ZMSCORE", "z", "a", "x", "d"), ("ZMSCORE", "missing", "a", "b"),
                 ("ZCARD", "z"), ("ZCARD", "missing"), ("ZRANK", "z", "c"),
                 ("ZREVRANK", "z", "c"), ("ZRANK", "z", "x"), ("ZRANK", "missing", "a"),
                 ("ZREVRANK", "missing", "a"), ("ZCOUNT", "z", "-inf", "+inf"),
                 ("ZCOUNT", "z", "(1", "3"), ("ZCOUNT", "z", "2", "(3"),
                 ("ZCOUNT", "z", "(2", "(2"), ("ZCOUNT", "z", "3", "1"),
                 ("ZCOUNT", "missing", "0", "1"), ("ZCOUNT", "z", "a", "1"),
                 ("ZCOUNT", "missing", "a", "1"), ("ZCOUNT", "z", "(nan", "1")]:
        pair.check(*argv)


def test_zrange_by_rank(pair: Pair) -> None:
    pair.check("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
    for start, stop in [("0", "-1"), ("1", "3"), ("-2", "-1"), ("3", "1"), ("-100", "100"),
                        ("5", "10"), ("-9223372036854775808", "9223372036854775807")]:
        pair.check("ZRANGE", "z", start, stop)
        pair.check("ZRANGE", "z", start, stop, "WITHSCORES")
        pair.check("ZRANGE", "z", start, stop, "REV", "WITHSCORES")
        pair.check("ZREVRANGE", "z", start, stop)
        pair.check("ZREVRANGE", "z", start, stop, "WITHSCORES")
    pair.check("ZRANGE", "z", "0", "-1", "LIMIT", "1", "-1")
    pair.check("ZRANGE", "z", "0", "-1", "LIMIT", "1", "2")
    pair.check("ZRANGE", "z", "0", "-1", "withscores", "withscores")
    pair.check("ZRANGE", "missing", "0", "-1")
    pair.check("ZRANGE", "z", "a", "1")
    pair.check("ZRANGE", "missing", "a", "1")


def test_zrange_by_score(pair: Pair) -> None:
    pair.check("ZADD", "z", "-inf", "m", "1", "a", "2", "b", "2", "c", "3", "d", "inf", "p")
    ranges = [("-inf", "+inf"), ("(1", "3"), ("1", "(3"), ("(1", "(2"), ("2", "2"),
              ("(2", "2"), ("3", "1"), ("", "2"), ("(", "2"), (" 1", "2"), ("0x1", "2"),
              ("1e999", "inf"), ("-1e999", "1e999"), ("2", "+inf")]
    for lo, hi in ranges:
        pair.check("ZRANGE", "z", lo, hi, "BYSCORE", "WITHSCORES")
        pair.check("ZRANGEBYSCORE", "z", lo, hi)
        pair.check("ZRANGE", "z", hi, lo, "BYSCORE", "REV")
        pair.check("ZREVRANGEBYSCORE", "z", hi, lo, "WITHSCORES")
        pair.check("ZCOUNT", "z", lo, hi)
    for limit in [("0", "2"), ("1", "1"), ("2", "-1"), ("-1", "2"), ("10", "1"), ("0", "0")]:
        pair.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", *limit)
        pair.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES", "LIMIT", *limit)
        pair.check("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", *limit)
        pair.check("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", *limit)
    for bad in [("abc", "1"), ("1", "abc"), ("(abc", "1"), ("nan", "1"), ("  ", "1"),
                ("1", "2", "LIMIT", "0"), ("1", "2", "LIMIT", "a", "1"),
                ("1", "2", "FOO"), ("1", "2", "WITHSCORES", "LIMIT", "0", "1", "x")]:
        pair.check("ZRANGEBYSCORE", "z", *bad)
        pair.check("ZRANGEBYSCORE", "missing", *bad)


def test_zrange_by_lex(pair: Pair) -> None:
    pair.check("ZADD", "z", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "ee")
    ranges = [("-", "+"), ("[b", "[d"), ("(b", "(d"), ("[b", "(e"), ("(a", "+"), ("-", "[c"),
              ("[e", "[a"), ("+", "-"), ("[", "+"), ("(", "+"), ("-", "(ee"), ("[ee", "+")]
    for lo, hi in ranges:
        pair.check("ZRANGE", "z", lo, hi, "BYLEX")
        pair.check("ZRANGEBYLEX", "z", lo, hi)
        pair.check("ZRANGE", "z", hi, lo, "BYLEX", "REV")
        pair.check("ZREVRANGEBYLEX", "z", hi, lo)
        pair.check("ZLEXCOUNT", "z", lo, hi)
    for limit in [("0", "2"), ("1", "-1"), ("-1", "1"), ("3", "10")]:
        pair.check("ZRANGEBYLEX", "z", "-", "+", "LIMIT", *limit)
        pair.check("ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", *limit)
    for limit in [("0", "2"), ("1", "3"), ("2", "-1"), ("0", "-5"), ("5", "1"), ("6", "1"),
                  ("100", "-1"), ("-1", "1"), ("0", "0"), ("1", "1000")]:
        pair.check("ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", *limit)
        pair.check("ZRANGE", "z", "[b", "(ee", "BYLEX", "LIMIT", *limit)
        pair.check("ZRANGE", "z", "+", "-", "BYLEX", "REV", "LIMIT", *limit)
        pair.check("ZRANGE", "z", "(ee", "[b", "REV", "BYLEX", "limit", *limit)
        pair.check("ZRANGE", "missing", "-", "+", "BYLEX", "LIMIT", *limit)
        pair.check("ZRANGEBYLEX", "z", "(a", "[e", "LIMIT", *limit)
        pair.check("ZREVRANGEBYLEX", "z", "[e", "(a", "LIMIT", *limit)
    for bad in [("a", "b"), ("[a", "b"), ("+a", "+"), ("-", "+", "WITHSCORES"),
                ("-", "+", "LIMIT", "0"), ("--", "+")]:
        pair.check("ZRANGEBYLEX", "z", *bad)
        pair.check("ZRANGE", "z", *bad[:2], "BYLEX", *bad[2:])
        pair.check("ZLEXCOUNT", "z", *bad[:2])
        pair.check("ZREMRANGEBYLEX", "missing", *bad[:2])


def test_zrange_option_errors(pair: Pair) -> None:
    pair.check("ZADD", "z", "1", "a")
    for options in [("BYSCORE", "BYLEX"), ("REV", "REV"), ("BYSCORE", "BYSCORE"),
                    ("LIMIT", "0", "1"), ("BYLEX", "WITHSCORES"), ("FOO",), ("LIMIT", "0"),
                    ("BYSCORE", "LIMIT", "0", "1", "REV")]:
        pair.check("ZRANGE", "z", "0", "-1", *options)
    pair.check("ZREVRANGE", "z", "0", "-1", "REV")
    pair.check("ZREVRANGE", "z", "0", "-1", "BYSCORE")
    pair.check("ZREVRANGE", "z", "0", "-1", "LIMIT", "0", "1")
    pair.check("ZRANGEBYSCORE", "z", "0", "1", "BYLEX")
    pair.check("ZRANGEBYLEX", "z", "-", "+", "REV")


def test_removals_by_range(pair: Pair) -> None:
    def fill() -> None:
        pair.check("DEL", "z")
        pair.check("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")

    for start, stop in [("0", "1"), ("-2", "-1"), ("3", "1"), ("0", "-1"), ("10", "20")]:
        fill()
        pair.check("ZREMRANGEBYRANK", "z", start, stop)
        pair.check("ZRANGE", "z", "0", "-1")
    for lo, hi in [("(1", "3"), ("-inf", "+inf"), ("10", "20"), ("3", "1")]:
        fill()
        pair.check("ZREMRANGEBYSCORE", "z", lo, hi)
        pair.check("ZRANGE", "z", "0", "-1")
    pair.check("EXISTS", "z")
    pair.check("ZADD", "lex", "0", "a", "0", "b", "0", "c")
    pair.check("ZREMRANGEBYLEX", "lex", "(a", "+")
    pair.check("ZREMRANGEBYLEX", "lex", "-", "+")
    pair.check("EXISTS", "lex")
    for argv in [("ZREMRANGEBYRANK", "missing", "0", "1"), ("ZREMRANGEBYRANK", "z", "a", "1"),
                 ("ZREMRANGEBYSCORE", "missing", "0", "1"), ("ZREMRANGEBYSCORE", "z", "a", "1"),
                 ("ZREMRANGEBYLEX", "z", "a", "b")]:
        pair.check(*argv)


def test_zrem_and_empty_sets_disappear(pair: Pair) -> None:
    pair.check("ZADD", "z", "1", "a", "2", "b")
    pair.check("ZREM", "z", "a", "x", "a")
    pair.check("ZREM", "z", "nope")
    pair.check("ZREM", "missing", "a")
    pair.check("ZREM", "z", "b")
    pair.check("EXISTS", "z")
    pair.check("TYPE", "z")


def test_pops(pair: Pair) -> None:
    pair.check("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
    pair.check("ZPOPMIN", "z")
    pair.check("ZPOPMAX", "z")
    pair.check("ZPOPMIN", "z", "0")
    pair.check("ZPOPMIN", "z", "2")
    pair.check("ZPOPMAX", "z", "10")
    pair.check("EXISTS", "z")
    for argv in [("ZPOPMIN", "z"), ("ZPOPMIN", "z", "2"), ("ZPOPMAX", "z", "0"),
                 ("ZPOPMIN", "z", "-1"), ("ZPOPMAX", "z", "abc"), ("ZPOPMIN", "z", "1", "2")]:
        pair.check(*argv)
    pair.check("ZADD", "z", "1", "a", "2", "b")
    pair.check("BZPOPMIN", "missing", "z", "0")
    pair.check("BZPOPMAX", "z", "0.5")
    pair.check("BZPOPMIN", "z", "abc")
    pair.check("BZPOPMIN", "z", "-1")
    pair.check("EXISTS", "z")


def test_wrong_type(pair: Pair) -> None:
    pair.check("SET", "s", "v")
    for argv in [("ZADD", "s", "1", "a"), ("ZADD", "s", "XX", "1", "a"),
                 ("ZINCRBY", "s", "1", "a"), ("ZREM", "s", "a"), ("ZSCORE", "s", "a"),
                 ("ZMSCORE", "s", "a"), ("ZCARD", "s"), ("ZCOUNT", "s", "0", "1"),
                 ("ZLEXCOUNT", "s", "-", "+"), ("ZRANK", "s", "a"), ("ZREVRANK", "s", "a"),
                 ("ZRANGE", "s", "0", "1"), ("ZRANGE", "s", "a", "b"),
                 ("ZRANGEBYSCORE", "s", "0", "1"), ("ZRANGEBYLEX", "s", "-", "+"),
                 ("ZREVRANGE", "s", "0", "1"), ("ZREMRANGEBYRANK", "s", "0", "1"),
                 ("ZREMRANGEBYSCORE", "s", "0", "1"), ("ZREMRANGEBYLEX", "s", "-", "+"),
                 ("ZPOPMIN", "s"), ("ZPOPMIN", "s", "0"), ("ZPOPMAX", "s", "-1"),
                 ("BZPOPMIN", "s", "0"), ("BZPOPMAX", "missing", "s", "0"),
                 ("BZPOPMIN", "s", "abc"), ("ZSCAN", "s", "0")]:
        pair.check(*argv)
    pair.check("GET", "s")


def test_zscan(pair: Pair) -> None:
    pair.check("ZSCAN", "missing", "0")
    pair.check("ZSCAN", "missing", "x")
    pair.check("ZADD", "z", "1", "a", "2.5", "b", "0.1", "c", "inf", "d", "-inf", "e")
    for options in [(), ("COUNT", "1"), ("MATCH", "[ab]"), ("MATCH", "*", "COUNT", "100")]:
        pair.check("ZSCAN", "z", "0", *options, unordered=True)
    for options in [("COUNT", "0"), ("COUNT", "x"), ("MATCH",), ("NOVALUES",)]:
        pair.check("ZSCAN", "z", "0", *options)
    pair.check("ZSCAN", "z", "abc")


def test_zscan_large(server: ServerProcess) -> None:
    r = server.client()
    r.delete("big")
    mapping = {f"m{i}": i / 2 for i in range(1000)}
    r.zadd("big", mapping)
    cursor, seen = 0, {}
    while True:
        cursor, page = r.zscan("big", cursor, count=37)
        seen.update(page)
        if cursor == 0:
            break
    assert seen == {k.encode(): v for k, v in mapping.items()}
    r.close()


def test_double_reply_bytes(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_bytes(server, redis_server, [
        ("ZADD", "z", "0.1", "a", "3", "b", "1e20", "c", "1.5e-7", "d", "123456789012345678",
         "e", "inf", "f", "-inf", "g", "-0.0", "h", "2.5", "i"),
        ("ZSCORE", "z", "a"), ("ZSCORE", "z", "b"), ("ZSCORE", "z", "c"), ("ZSCORE", "z", "f"),
        ("ZSCORE", "z", "h"), ("ZSCORE", "z", "nope"), ("ZMSCORE", "z", "a", "nope", "g"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZRANGE", "z", "0", "-1"),
        ("ZRANGEBYSCORE", "z", "-inf", "inf", "WITHSCORES", "LIMIT", "1", "3"),
        ("ZSCAN", "z", "0"), ("ZINCRBY", "z", "0.2", "a"), ("ZINCRBY", "z2", "-0.0", "m"),
        ("ZSCORE", "z2", "m"), ("ZADD", "z", "INCR", "1", "b"), ("ZADD", "z", "NX", "INCR",
                                                               "1", "b"),
        ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "2"), ("ZPOPMIN", "missing"),
        ("ZPOPMIN", "missing", "2"), ("ZPOPMIN", "z", "0"), ("BZPOPMIN", "z", "0"),
        ("BZPOPMAX", "missing", "0.01"), ("ZRANK", "z", "nope"),
    ])


def test_pipeline_through_redis_py(server: ServerProcess) -> None:
    r = server.client()
    r.delete("pz")
    with r.pipeline() as pipe:
        pipe.zadd("pz", {"a": 1, "b": 2}).zincrby("pz", 0.5, "a").zrange("pz", 0, -1,
                                                                         withscores=True)
        assert pipe.execute() == [2, 1.5, [(b"a", 1.5), (b"b", 2.0)]]
    with pytest.raises(redis.ResponseError, match="not a valid float"):
        r.execute_command("ZADD", "pz", "x", "a")
    r.close()
