"""Sorted-set algebra (ZUNION / ZINTER / ZDIFF, STORE forms, ZINTERCARD), ZRANGESTORE, ZMPOP
and ZRANDMEMBER against redis-server 7.0, RESP2 and RESP3 (ZRANDMEMBER by its properties)."""

from __future__ import annotations

from typing import Any

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair
from tests.integration.cache.test_strings import Local
from tests.integration.cache.test_zsets import check_bytes, check_command_info

COMMANDS = ["ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE",
            "ZINTERCARD", "ZRANGESTORE", "ZMPOP", "BZMPOP", "ZRANDMEMBER"]


def test_command_info(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_command_info(server, redis_server, COMMANDS)


WRONG_ARITY = [("ZUNION", "1"), ("ZINTER", "1"), ("ZDIFF", "1"), ("ZUNIONSTORE", "d", "1"),
               ("ZINTERSTORE", "d", "1"), ("ZDIFFSTORE", "d", "1"), ("ZINTERCARD", "1"),
               ("ZRANGESTORE", "d", "s", "0"), ("ZMPOP", "1", "k"), ("BZMPOP", "0", "1", "k"),
               ("ZRANDMEMBER",)]


def test_wrong_number_of_arguments(pair: Pair) -> None:
    for argv in WRONG_ARITY:
        pair.check(*argv)


def _fill(pair: Pair) -> None:
    pair.check("ZADD", "za", "1", "a", "2", "b", "3", "c")
    pair.check("ZADD", "zb", "10", "b", "20", "c", "30", "d", "0.5", "e")
    pair.check("ZADD", "zc", "-1", "c", "7", "x")
    pair.check("SADD", "sa", "a", "c", "x", "y")
    pair.check("SET", "str", "v")


ALGEBRA = [
    ("ZUNION", "2", "za", "zb"),
    ("ZUNION", "2", "za", "zb", "WITHSCORES"),
    ("ZUNION", "3", "za", "zb", "zc", "WEIGHTS", "2", "0.5", "-1", "WITHSCORES"),
    ("ZUNION", "2", "za", "zb", "AGGREGATE", "MIN", "WITHSCORES"),
    ("ZUNION", "2", "za", "zb", "aggregate", "max", "withscores"),
    ("ZUNION", "2", "za", "sa", "WITHSCORES"),
    ("ZUNION", "2", "missing", "za", "WITHSCORES"),
    ("ZUNION", "1", "missing"),
    ("ZUNION", "2", "za", "za", "WITHSCORES"),
    ("ZUNION", "2", "za", "zb", "WEIGHTS", "1", "2", "AGGREGATE", "SUM", "WEIGHTS", "3", "4",
     "WITHSCORES"),
    ("ZINTER", "2", "za", "zb", "WITHSCORES"),
    ("ZINTER", "3", "za", "zb", "zc", "WITHSCORES"),
    ("ZINTER", "2", "za", "sa", "WEIGHTS", "3", "5", "WITHSCORES"),
    ("ZINTER", "2", "za", "za", "AGGREGATE", "MAX", "WITHSCORES"),
    ("ZINTER", "2", "za", "missing", "WITHSCORES"),
    ("ZINTER", "2", "sa", "sa", "WITHSCORES"),
    ("ZDIFF", "2", "za", "zb"),
    ("ZDIFF", "2", "zb", "za", "WITHSCORES"),
    ("ZDIFF", "3", "zb", "sa", "zc", "WITHSCORES"),
    ("ZDIFF", "2", "sa", "za", "WITHSCORES"),
    ("ZDIFF", "1", "missing", "WITHSCORES"),
    ("ZDIFF", "2", "missing", "za"),
    ("ZINTERCARD", "2", "za", "zb"),
    ("ZINTERCARD", "2", "za", "zb", "LIMIT", "1"),
    ("ZINTERCARD", "2", "za", "zb", "LIMIT", "0"),
    ("ZINTERCARD", "2", "za", "sa", "limit", "5"),
    ("ZINTERCARD", "1", "missing"),
    ("ZUNION", "1", "zc", "WEIGHTS", "0", "WITHSCORES"),
    ("ZINTER", "2", "zc", "zc", "WEIGHTS", "-0", "0", "WITHSCORES"),
    ("ZUNION", "2", "zc", "za", "WEIGHTS", "-0", "1e-320", "WITHSCORES"),
]


def test_algebra_replies(pair: Pair) -> None:
    _fill(pair)
    for argv in ALGEBRA:
        pair.check(*argv)


ERRORS = [
    ("ZUNION", "0", "za"), ("ZUNION", "-1", "za"), ("ZUNION", "x", "za"),
    ("ZUNION", "3", "za", "zb"), ("ZUNION", "99999999999999999999", "za"),
    ("ZUNION", "9223372036854775807", "za"), ("ZUNION", "1.0", "za"),
    ("ZINTER", "0", "za"), ("ZDIFF", "0", "za"), ("ZUNIONSTORE", "d", "0", "za"),
    ("ZINTERSTORE", "d", "0", "za"), ("ZDIFFSTORE", "d", "-5", "za"),
    ("ZINTERCARD", "0", "za"), ("ZINTERCARD", "-1", "za"), ("ZINTERCARD", "3", "za", "zb"),
    ("ZUNION", "2", "za", "zb", "WEIGHTS", "1"),
    ("ZUNION", "2", "za", "zb", "WEIGHTS", "1", "x"),
    ("ZUNION", "2", "za", "zb", "WEIGHTS", "1", "nan"),
    ("ZUNION", "2", "za", "zb", "WEIGHTS", "1", " 2"),
    ("ZUNION", "2", "za", "zb", "WEIGHTS", "1", "2", "3"),
    ("ZUNION", "2", "za", "zb", "AGGREGATE", "AVG"),
    ("ZUNION", "2", "za", "zb", "AGGREGATE"),
    ("ZUNION", "2", "za", "zb", "BOGUS"),
    ("ZDIFF", "2", "za", "zb", "WEIGHTS", "1", "2"),
    ("ZDIFF", "2", "za", "zb", "AGGREGATE", "MIN"),
    ("ZUNIONSTORE", "d", "2", "za", "zb", "WITHSCORES"),
    ("ZINTERCARD", "2", "za", "zb", "LIMIT", "-1"),
    ("ZINTERCARD", "2", "za", "zb", "LIMIT", "x"),
    ("ZINTERCARD", "2", "za", "zb", "LIMIT"),
    ("ZINTERCARD", "2", "za", "zb", "WITHSCORES"),
    ("ZINTERCARD", "2", "za", "zb", "WEIGHTS", "1", "1"),
    ("ZUNION", "2", "za", "str"), ("ZINTER", "2", "missing", "str"),
    ("ZDIFF", "2", "za", "str"), ("ZINTERCARD", "2", "str", "za"),
    ("ZUNIONSTORE", "d", "1", "str"), ("ZUNION", "1", "str", "BOGUS"),
    ("ZUNION", "1", "str", "WEIGHTS", "x"),
]


def test_algebra_errors(pair: Pair) -> None:
    _fill(pair)
    for argv in ERRORS:
        pair.check(*argv)
    pair.check("EXISTS", "d")


def test_infinite_scores_and_nan_from_weights(pair: Pair) -> None:
    pair.check("ZADD", "p", "inf", "a", "-inf", "b", "1", "c", "0", "z")
    pair.check("ZADD", "q", "-inf", "a", "inf", "b", "inf", "c", "5", "z")
    pair.check("ZADD", "r", "3", "a", "inf", "c", "-7", "z")
    for argv in [
        ("ZUNION", "2", "p", "q", "WITHSCORES"),
        ("ZINTER", "2", "p", "q", "WITHSCORES"),
        ("ZUNION", "3", "p", "q", "r", "WITHSCORES"),
        ("ZINTER", "3", "r", "p", "q", "WITHSCORES"),
        ("ZUNION", "2", "p", "q", "WEIGHTS", "0", "1", "WITHSCORES"),
        ("ZINTER", "2", "p", "q", "WEIGHTS", "0", "0", "WITHSCORES"),
        ("ZINTER", "2", "p", "q", "WEIGHTS", "1", "0", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZINTER", "2", "p", "q", "WEIGHTS", "1", "0", "AGGREGATE", "MAX", "WITHSCORES"),
        ("ZUNION", "2", "p", "q", "WEIGHTS", "inf", "-inf", "WITHSCORES"),
        ("ZUNION", "2", "p", "q", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZUNION", "2", "p", "q", "AGGREGATE", "MAX", "WITHSCORES"),
        ("ZUNION", "1", "p", "WEIGHTS", "-1", "WITHSCORES"),
        ("ZUNION", "1", "p", "WEIGHTS", "1e308", "WITHSCORES"),
        ("ZUNION", "2", "p", "p", "WEIGHTS", "1e308", "1e308", "WITHSCORES"),
        ("ZUNIONSTORE", "d", "2", "p", "q", "WEIGHTS", "0", "-1"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZSCORE", "d", "z"),
        ("ZINTERSTORE", "d", "2", "p", "q", "WEIGHTS", "-1", "0"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
    ]:
        pair.check(*argv)


def test_store_forms(pair: Pair) -> None:
    _fill(pair)
    pair.check("ZADD", "old", "1", "o")
    pair.check("PEXPIRE", "old", "100000")
    for argv in [
        ("ZUNIONSTORE", "old", "2", "za", "zb", "WEIGHTS", "1", "2"),
        ("TTL", "old"), ("ZRANGE", "old", "0", "-1", "WITHSCORES"),
        ("ZINTERSTORE", "str2", "2", "za", "sa"), ("TYPE", "str2"),
        ("ZINTERSTORE", "d1", "2", "za", "zb", "AGGREGATE", "MIN"),
        ("ZRANGE", "d1", "0", "-1", "WITHSCORES"),
        ("ZDIFFSTORE", "d2", "2", "zb", "za"), ("ZRANGE", "d2", "0", "-1", "WITHSCORES"),
        ("ZDIFFSTORE", "d2", "2", "za", "za"), ("EXISTS", "d2"),
        ("ZINTERSTORE", "d1", "2", "za", "missing"), ("EXISTS", "d1"),
        ("ZUNIONSTORE", "nothing", "1", "missing"), ("EXISTS", "nothing"),
        ("ZUNIONSTORE", "za", "2", "za", "zb"), ("ZRANGE", "za", "0", "-1", "WITHSCORES"),
        ("ZINTERSTORE", "str", "1", "sa"), ("ZRANGE", "str", "0", "-1", "WITHSCORES"),
        ("ZUNIONSTORE", "d3", "1", "zc", "WEIGHTS", "0"),
        ("ZRANGE", "d3", "0", "-1", "WITHSCORES"),
    ]:
        pair.check(*argv)


def test_reply_bytes(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_bytes(server, redis_server, [
        ("ZADD", "a", "1.5", "x", "0", "y", "inf", "z"), ("SADD", "s", "x", "w"),
        ("ZUNION", "2", "a", "s", "WITHSCORES"), ("ZINTER", "2", "a", "s", "WITHSCORES"),
        ("ZDIFF", "2", "a", "s", "WITHSCORES"), ("ZUNION", "1", "a", "WEIGHTS", "-1",
                                                 "WITHSCORES"),
        ("ZINTERCARD", "2", "a", "s"), ("ZMPOP", "1", "a", "MIN", "COUNT", "2"),
        ("ZMPOP", "1", "nope", "MAX"), ("ZRANGESTORE", "d", "a", "0", "-1"),
    ])


ZRANGESTORE = [
    ("ZRANGESTORE", "d", "src", "0", "-1"),
    ("ZRANGESTORE", "d", "src", "1", "2", "REV"),
    ("ZRANGESTORE", "d", "src", "(1", "+inf", "BYSCORE"),
    ("ZRANGESTORE", "d", "src", "+inf", "(1", "BYSCORE", "REV", "LIMIT", "1", "2"),
    ("ZRANGESTORE", "d", "lex", "[b", "(d", "BYLEX"),
    ("ZRANGESTORE", "d", "lex", "+", "-", "BYLEX", "REV", "LIMIT", "0", "2"),
    ("ZRANGESTORE", "d", "src", "5", "10"),
    ("ZRANGESTORE", "d", "missing", "0", "-1"),
    ("ZRANGESTORE", "d", "src", "0", "-1", "WITHSCORES"),
    ("ZRANGESTORE", "d", "src", "0", "-1", "LIMIT", "0", "1"),
    ("ZRANGESTORE", "d", "src", "x", "1", "BYSCORE"),
    ("ZRANGESTORE", "d", "src", "a", "b", "BYLEX"),
    ("ZRANGESTORE", "d", "src", "0", "-1", "BYSCORE", "BYLEX"),
    ("ZRANGESTORE", "d", "str", "0", "-1"),
    ("ZRANGESTORE", "str", "src", "0", "0"),
    ("ZRANGESTORE", "src", "src", "0", "1"),
]


def test_zrangestore(pair: Pair) -> None:
    for argv in ZRANGESTORE:
        pair.flush()
        pair.check("ZADD", "src", "1", "a", "2", "b", "3", "c", "4", "d")
        pair.check("ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e")
        pair.check("SET", "str", "v")
        pair.check("ZADD", "d", "9", "old")
        pair.check(*argv)
        for dst in ("d", "str", "src"):
            if pair.check("TYPE", dst) == b"zset":
                pair.check("ZRANGE", dst, "0", "-1", "WITHSCORES")


ZMPOP = [
    ("ZMPOP", "1", "z1", "MIN"),
    ("ZMPOP", "1", "z1", "max", "COUNT", "2"),
    ("ZMPOP", "2", "missing", "z1", "MIN", "count", "10"),
    ("ZMPOP", "2", "missing", "nope", "MIN"),
    ("ZMPOP", "2", "z1", "str", "MIN"),
    ("ZMPOP", "2", "str", "z1", "MIN"),
    ("ZMPOP", "1", "lst", "MIN"),
    ("ZMPOP", "0", "z1", "MIN"), ("ZMPOP", "-1", "z1", "MIN"), ("ZMPOP", "x", "z1", "MIN"),
    ("ZMPOP", "3", "z1", "MIN"), ("ZMPOP", "1", "z1", "LEFT"), ("ZMPOP", "1", "z1"),
    ("ZMPOP", "1", "z1", "MIN", "COUNT", "0"), ("ZMPOP", "1", "z1", "MIN", "COUNT", "-1"),
    ("ZMPOP", "1", "z1", "MIN", "COUNT"), ("ZMPOP", "1", "z1", "MIN", "COUNT", "1",
                                           "COUNT", "1"),
    ("ZMPOP", "1", "z1", "MIN", "BOGUS"),
    ("ZMPOP", "1", "z1", "MIN", "COUNT", "99999999999999999999"),
    ("BZMPOP", "0", "1", "z1", "MAX", "COUNT", "2"),
    ("BZMPOP", "0.1", "2", "missing", "z1", "MIN"),
    ("BZMPOP", "-1", "1", "z1", "MIN"), ("BZMPOP", "x", "1", "z1", "MIN"),
    ("BZMPOP", "0", "0", "z1", "MIN"), ("BZMPOP", "0", "1", "str", "MIN"),
    ("BZMPOP", "0", "1", "z1", "MIN", "COUNT", "0"),
]


def test_zmpop(pair: Pair) -> None:
    for argv in ZMPOP:
        pair.flush()
        pair.check("ZADD", "z1", "1", "a", "2", "b", "3", "c")
        pair.check("SET", "str", "v")
        pair.check("RPUSH", "lst", "x")
        pair.check(*argv)
        pair.check("ZRANGE", "z1", "0", "-1", "WITHSCORES")


def test_zmpop_empties_the_key(pair: Pair) -> None:
    pair.check("ZADD", "z", "1", "a", "2", "b")
    pair.check("ZMPOP", "1", "z", "MAX", "COUNT", "5")
    pair.check("EXISTS", "z")
    pair.check("ZMPOP", "1", "z", "MAX")


def test_blocking_commands_inside_multi(pair: Pair) -> None:
    pair.check("MULTI")
    pair.check("BZMPOP", "0", "1", "nothing", "MIN")
    pair.check("BLMPOP", "0", "1", "nothing", "LEFT")
    pair.check("ZADD", "z", "1", "a")
    pair.check("BZMPOP", "0", "1", "z", "MIN")
    pair.check("EXEC")


RANDMEMBER_ERRORS = [
    ("ZRANDMEMBER", "z", "x"), ("ZRANDMEMBER", "z", "1", "BOGUS"),
    ("ZRANDMEMBER", "z", "1", "WITHSCORES", "x"),
    ("ZRANDMEMBER", "z", "-9223372036854775808"),
    ("ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"),
    ("ZRANDMEMBER", "z", "-4611686018427387904", "WITHSCORES"),
    ("ZRANDMEMBER", "str"), ("ZRANDMEMBER", "str", "0"), ("ZRANDMEMBER", "str", "-3"),
    ("ZRANDMEMBER", "missing"), ("ZRANDMEMBER", "missing", "3"),
    ("ZRANDMEMBER", "missing", "-3", "WITHSCORES"), ("ZRANDMEMBER", "z", "0"),
    ("ZRANDMEMBER", "z", "0", "WITHSCORES"), ("ZRANDMEMBER", "z", "5"),
    ("ZRANDMEMBER", "z", "3", "WITHSCORES"), ("ZRANDMEMBER", "one", "1", "WITHSCORES"),
    ("ZRANDMEMBER", "one", "-2", "WITHSCORES"), ("ZRANDMEMBER", "one"),
]


def test_zrandmember_deterministic_cases(pair: Pair) -> None:
    pair.check("ZADD", "z", "1", "a", "2", "b", "3", "c")
    pair.check("ZADD", "one", "1.5", "only")
    pair.check("SET", "str", "v")
    for argv in RANDMEMBER_ERRORS:
        pair.check(*argv)


def _as_pairs(reply: Any, resp3: bool) -> list[tuple[Any, Any]]:
    if resp3:
        return [tuple(p) for p in reply]
    return list(zip(reply[::2], reply[1::2], strict=True))


def test_zrandmember_properties(pair: Pair) -> None:
    """Random picks: same shape and member/score pairs as Redis, distinct when count > 0."""
    resp3 = pair.ours.get_connection_kwargs().get("protocol") == 3
    members = [f"m{i}" for i in range(40)]
    args = [x for i, m in enumerate(members) for x in (str(i * 1.5), m)]
    pair.check("ZADD", "z", *args)
    scores = dict(_as_pairs(pair.check("ZRANGE", "z", "0", "-1", "WITHSCORES"), resp3))
    for argv, distinct in [(("10",), True), (("-60",), False), (("10", "WITHSCORES"), True),
                           (("-60", "WITHSCORES"), False), (("1",), True)]:
        ours, theirs = pair.both("ZRANDMEMBER", "z", *argv)
        assert len(ours) == len(theirs)
        if argv[-1] == "WITHSCORES":
            got = _as_pairs(ours, resp3)
            assert all(scores[m] == score for m, score in got)
            picked = [m for m, _ in got]
        else:
            picked = ours
        assert set(picked) <= set(scores)
        if distinct:
            assert len(set(picked)) == len(picked)
    single, _ = pair.both("ZRANDMEMBER", "z")
    assert single in scores
    whole = set(pair.both("ZRANDMEMBER", "z", "100")[0])
    assert whole == set(scores)



def test_effects_and_memory() -> None:
    """What each write propagates (the STORE forms themselves, multi-pops as the ZPOPMIN /
    LPOP they amount to, nothing when nothing changed), and the running memory figure stays
    equal to a full walk after each of them."""
    local = Local()
    local("ZADD", "a", *[x for i in range(50) for x in (str(i), f"m{i}")])
    local("SADD", "s", *[f"m{i}" for i in range(0, 100, 2)])
    local("RPUSH", "l", *[str(i) for i in range(20)])
    local("SET", "d", "a string the store overwrites")
    cases: list[tuple[tuple[str, ...], list[list[bytes]]]] = [
        (("ZUNIONSTORE", "d", "2", "a", "s", "WEIGHTS", "1", "0.5"),
         [[b"ZUNIONSTORE", b"d", b"2", b"a", b"s", b"WEIGHTS", b"1", b"0.5"]]),
        (("ZINTERSTORE", "i", "2", "a", "s"), [[b"ZINTERSTORE", b"i", b"2", b"a", b"s"]]),
        (("ZDIFFSTORE", "i", "1", "nothing"), [[b"ZDIFFSTORE", b"i", b"1", b"nothing"]]),
        (("ZDIFFSTORE", "i", "1", "nothing"), []),
        (("ZRANGESTORE", "r", "d", "0", "9"), [[b"ZRANGESTORE", b"r", b"d", b"0", b"9"]]),
        (("ZRANGESTORE", "none", "missing", "0", "9"), []),
        (("ZMPOP", "2", "missing", "d", "MIN", "COUNT", "30"), [[b"ZPOPMIN", b"d", b"30"]]),
        (("ZMPOP", "1", "r", "MAX", "COUNT", "50"), [[b"ZPOPMAX", b"r", b"10"]]),
        (("ZMPOP", "1", "r", "MAX"), []),
        (("BZMPOP", "0", "1", "d", "MAX"), [[b"ZPOPMAX", b"d", b"1"]]),
        (("LMPOP", "1", "l", "RIGHT", "COUNT", "15"), [[b"RPOP", b"l", b"15"]]),
        (("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "9"), [[b"LPOP", b"l", b"5"]]),
        (("LMPOP", "1", "l", "LEFT"), []),
    ]
    for argv, effects in cases:
        assert local.effects(*argv) == effects, argv
        local.memory_is_exact()
