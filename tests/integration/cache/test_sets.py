"""Set commands against redis-server 7.0; random ones (SPOP, SRANDMEMBER) by their properties."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair
from tests.integration.cache.test_zsets import check_bytes, check_command_info

SET_COMMANDS = [
    "SADD", "SREM", "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SCARD", "SPOP", "SRANDMEMBER",
    "SMOVE", "SINTER", "SUNION", "SDIFF", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE",
    "SINTERCARD", "SSCAN",
]


def test_command_info(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_command_info(server, redis_server, SET_COMMANDS)


WRONG_ARITY = [
    ("SADD", "k"), ("SREM", "k"), ("SMEMBERS",), ("SMEMBERS", "k", "x"), ("SISMEMBER", "k"),
    ("SMISMEMBER", "k"), ("SCARD",), ("SPOP",), ("SRANDMEMBER",), ("SMOVE", "a", "b"),
    ("SINTER",), ("SUNION",), ("SDIFF",), ("SINTERSTORE", "d"), ("SUNIONSTORE", "d"),
    ("SDIFFSTORE", "d"), ("SINTERCARD", "1"), ("SSCAN", "k"),
]


@pytest.mark.parametrize("argv", WRONG_ARITY, ids=lambda a: " ".join(a))
def test_wrong_number_of_arguments(pair: Pair, argv: tuple[str, ...]) -> None:
    pair.check(*argv)


def test_add_remove_membership(pair: Pair) -> None:
    pair.check("SADD", "s", "a", "b", "c", "a")
    pair.check("SADD", "s", "c", "d")
    pair.check("SCARD", "s")
    pair.check("SMEMBERS", "s", unordered=True)
    pair.check("SISMEMBER", "s", "a")
    pair.check("SISMEMBER", "s", "z")
    pair.check("SMISMEMBER", "s", "a", "z", "d", "a")
    pair.check("SREM", "s", "a", "z", "a")
    pair.check("SREM", "s", "nope")
    pair.check("SMEMBERS", "s", unordered=True)
    pair.check("SREM", "s", "b", "c", "d")
    pair.check("EXISTS", "s")
    for argv in [("SCARD", "s"), ("SMEMBERS", "s"), ("SISMEMBER", "s", "a"),
                 ("SMISMEMBER", "s", "a", "b"), ("SREM", "s", "a")]:
        pair.check(*argv)


def test_wrong_type(pair: Pair) -> None:
    pair.check("SET", "str", "v")
    pair.check("SADD", "set", "a")
    for argv in [("SADD", "str", "a"), ("SREM", "str", "a"), ("SMEMBERS", "str"),
                 ("SISMEMBER", "str", "a"), ("SMISMEMBER", "str", "a"), ("SCARD", "str"),
                 ("SPOP", "str"), ("SPOP", "str", "0"), ("SPOP", "str", "2"),
                 ("SRANDMEMBER", "str"), ("SRANDMEMBER", "str", "0"),
                 ("SRANDMEMBER", "str", "-2"), ("SMOVE", "str", "set", "a"),
                 ("SMOVE", "set", "str", "a"), ("SMOVE", "missing", "str", "a"),
                 ("SINTER", "set", "str"), ("SINTER", "missing", "str"),
                 ("SUNION", "str", "missing"), ("SDIFF", "missing", "str"),
                 ("SDIFF", "str", "set"), ("SINTERSTORE", "d", "set", "str"),
                 ("SUNIONSTORE", "d", "str"), ("SDIFFSTORE", "d", "missing", "str"),
                 ("SINTERCARD", "2", "missing", "str"), ("SSCAN", "str", "0"),
                 ("SSCAN", "str", "abc")]:
        pair.check(*argv)
    pair.check("SMEMBERS", "set")
    pair.check("EXISTS", "d")


def test_smove(pair: Pair) -> None:
    pair.check("SADD", "a", "x", "y")
    pair.check("SADD", "b", "y")
    pair.check("SMOVE", "a", "b", "x")
    pair.check("SMOVE", "a", "b", "x")
    pair.check("SMOVE", "a", "b", "y")
    pair.check("EXISTS", "a")
    pair.check("SMEMBERS", "b", unordered=True)
    pair.check("SMOVE", "b", "b", "x")
    pair.check("SMOVE", "b", "b", "nope")
    pair.check("SMOVE", "missing", "b", "x")
    pair.check("SMOVE", "b", "new", "x")
    pair.check("SMEMBERS", "new")
    pair.check("SMEMBERS", "b", unordered=True)


def test_algebra(pair: Pair) -> None:
    pair.check("SADD", "a", "1", "2", "3", "4")
    pair.check("SADD", "b", "3", "4", "5")
    pair.check("SADD", "c", "4", "5", "6", "x")
    for name in ("SINTER", "SUNION", "SDIFF"):
        for keys in [("a",), ("a", "b"), ("a", "b", "c"), ("c", "b", "a"), ("a", "missing"),
                     ("missing", "a"), ("missing",), ("a", "a")]:
            pair.check(name, *keys, unordered=True)


def test_store_variants(pair: Pair) -> None:
    pair.check("SADD", "a", "1", "2", "3")
    pair.check("SADD", "b", "2", "3", "4")
    pair.check("SET", "dst", "was a string")
    pair.check("EXPIRE", "dst", "100")
    pair.check("SINTERSTORE", "dst", "a", "b")
    pair.check("TTL", "dst")
    pair.check("SMEMBERS", "dst", unordered=True)
    pair.check("SUNIONSTORE", "dst", "a", "b")
    pair.check("SMEMBERS", "dst", unordered=True)
    pair.check("SDIFFSTORE", "dst", "a", "b")
    pair.check("SMEMBERS", "dst", unordered=True)
    pair.check("SDIFFSTORE", "a", "a", "b")
    pair.check("SMEMBERS", "a", unordered=True)
    pair.check("SINTERSTORE", "dst", "a", "missing")
    pair.check("EXISTS", "dst")
    pair.check("SUNIONSTORE", "dst", "missing")
    pair.check("EXISTS", "dst")
    pair.check("SDIFFSTORE", "dst", "b", "b")
    pair.check("EXISTS", "dst")


def test_sintercard(pair: Pair) -> None:
    pair.check("SADD", "a", *"abcdefgh")
    pair.check("SADD", "b", *"cdefghij")
    pair.check("SADD", "c", *"efghijkl")
    for argv in [("1", "a"), ("2", "a", "b"), ("3", "a", "b", "c"), ("2", "a", "missing"),
                 ("2", "a", "b", "LIMIT", "0"), ("2", "a", "b", "LIMIT", "3"),
                 ("2", "a", "b", "limit", "100"), ("3", "c", "b", "a", "LIMIT", "1"),
                 ("0", "a"), ("-1", "a"), ("abc", "a"), ("3", "a", "b"),
                 ("1", "a", "LIMIT", "-1"), ("1", "a", "LIMIT", "x"), ("1", "a", "LIMIT"),
                 ("1", "a", "FOO", "1"), ("1", "a", "b"), ("9223372036854775808", "a")]:
        pair.check("SINTERCARD", *argv)


def test_spop_errors_and_edges(pair: Pair) -> None:
    pair.check("SPOP", "missing")
    pair.check("SPOP", "missing", "0")
    pair.check("SPOP", "missing", "3")
    pair.check("SADD", "s", "a", "b", "c")
    for argv in [("SPOP", "s", "-1"), ("SPOP", "s", "abc"), ("SPOP", "s", "1", "2"),
                 ("SPOP", "s", "0"), ("SRANDMEMBER", "s", "abc"),
                 ("SRANDMEMBER", "s", "1", "2"), ("SRANDMEMBER", "s", "0"),
                 ("SRANDMEMBER", "s", "-9223372036854775808"),
                 ("SRANDMEMBER", "s", "9223372036854775808"), ("SRANDMEMBER", "missing"),
                 ("SRANDMEMBER", "missing", "5"), ("SRANDMEMBER", "missing", "-5")]:
        pair.check(*argv)
    pair.check("SPOP", "s", "3", unordered=True)
    pair.check("EXISTS", "s")
    pair.check("SADD", "s", "a", "b", "c")
    pair.check("SPOP", "s", "10", unordered=True)
    pair.check("EXISTS", "s")
    pair.check("SADD", "s", "only")
    pair.check("SPOP", "s")
    pair.check("SRANDMEMBER", "s", "-3")


@pytest.mark.parametrize("size", [5, 2000])
def test_spop_srandmember_properties(server: ServerProcess, size: int) -> None:
    r = server.client()
    r.delete("s")
    members = {str(i).encode() for i in range(size)}
    r.sadd("s", *members)
    one = r.srandmember("s")
    assert one in members
    distinct = r.srandmember("s", 3)
    assert len(distinct) == 3 and len(set(distinct)) == 3 and set(distinct) <= members
    assert set(r.srandmember("s", size + 10)) == members
    repeated = r.srandmember("s", -(size * 3))
    assert len(repeated) == size * 3 and set(repeated) <= members
    assert r.scard("s") == size
    popped = r.spop("s")
    assert popped in members and not r.sismember("s", popped)
    several = r.spop("s", 3)
    assert len(set(several)) == 3 and set(several) <= members - {popped}
    assert r.scard("s") == size - 4
    rest = r.spop("s", size)
    assert set(rest) | set(several) | {popped} == members
    assert not r.exists("s")
    r.close()


def test_srandmember_is_random(server: ServerProcess) -> None:
    r = server.client()
    r.delete("s")
    r.sadd("s", *range(10))
    seen = {r.srandmember("s") for _ in range(200)}
    assert len(seen) == 10
    r.close()


def test_srandmember_huge_negative_count_is_refused(server: ServerProcess) -> None:
    r = server.client()
    r.sadd("huge-count", "a")
    with pytest.raises(redis.ResponseError, match="count is too large"):
        r.srandmember("huge-count", -(10**12))
    assert r.srandmember("huge-count", -3) == [b"a", b"a", b"a"]
    r.close()


def test_sscan_small_sets(pair: Pair) -> None:
    pair.check("SSCAN", "missing", "0")
    pair.check("SSCAN", "missing", "abc")
    pair.check("SSCAN", "missing", "0", "COUNT", "0")
    pair.check("SADD", "ints", *[str(i) for i in range(50)])
    pair.check("SADD", "strs", "apple", "banana", "cherry")
    for options in [(), ("COUNT", "5"), ("MATCH", "1*"), ("MATCH", "*"), ("count", "1000"),
                    ("MATCH", "?", "COUNT", "100")]:
        pair.check("SSCAN", "ints", "0", *options)
    pair.check("SSCAN", "strs", "0", "MATCH", "*an*")
    for cursor in ["abc", " 1", "18446744073709551616", "1.5", "+"]:
        pair.check("SSCAN", "ints", cursor)
    for options in [("COUNT", "0"), ("COUNT", "-1"), ("COUNT", "abc"), ("MATCH",),
                    ("FOO", "bar"), ("COUNT",)]:
        pair.check("SSCAN", "ints", "0", *options)


def full_sscan(r: redis.Redis, key: str, count: int, match: str | None = None) -> list[bytes]:
    cursor = 0
    out: list[bytes] = []
    while True:
        cursor, page = r.sscan(key, cursor, match=match, count=count)
        out.extend(page)
        if cursor == 0:
            return out


def test_sscan_large_set_guarantees(server: ServerProcess) -> None:
    r = server.client()
    r.delete("big")
    members = {f"m{i}".encode() for i in range(5000)}
    r.sadd("big", *members)
    first = r.sscan("big", 0, count=100)
    assert first[0] != 0 and 0 < len(first[1]) <= 100
    seen = full_sscan(r, "big", 97)
    assert sorted(seen) == sorted(members)  # exactly once each when nothing changes
    assert set(full_sscan(r, "big", 500, match="m1*")) == {m for m in members if m[:2] == b"m1"}
    # Members present for the whole iteration come back even while others come and go.
    cursor, stable = 0, set()
    step = 0
    while True:
        cursor, page = r.sscan("big", cursor, count=50)
        stable.update(page)
        step += 1
        r.sadd("big", f"new{step}")
        r.srem("big", f"m{step}")
        if cursor == 0:
            break
    survivors = {m for m in members if int(m[1:]) > step}
    assert survivors <= stable
    r.close()


def test_empty_sets_disappear_and_binary_members(pair: Pair) -> None:
    pair.check("SADD", "s", b"\x00", b"", b"\xff\r\n")
    pair.check("SISMEMBER", "s", b"")
    pair.check("SMEMBERS", "s", unordered=True)
    pair.check("SREM", "s", b"\x00", b"", b"\xff\r\n")
    pair.check("TYPE", "s")


def test_reply_bytes(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    # One-member replies, so that the bytes do not depend on the order of members.
    check_bytes(server, redis_server, [
        ("SADD", "s", "a"), ("SMEMBERS", "s"), ("SMEMBERS", "missing"), ("SPOP", "s", "0"),
        ("SPOP", "missing", "0"), ("SPOP", "missing"), ("SINTER", "s"), ("SUNION", "s"),
        ("SDIFF", "s", "missing"), ("SRANDMEMBER", "s", "2"), ("SRANDMEMBER", "s", "-2"),
        ("SRANDMEMBER", "missing", "1"), ("SRANDMEMBER", "missing"), ("SMISMEMBER", "s", "a"),
        ("SSCAN", "s", "0"), ("SPOP", "s", "1"), ("SADD", "ints", "3", "-1", "20"),
        ("SSCAN", "ints", "0"),
    ])
