"""Hash commands against redis-server 7.0, and the effects they propagate.

Small hashes keep insertion order in both servers (Redis' listpack, Python's dict), so their
replies compare exactly; past 512 fields Redis switches to a hash table and the order differs,
so those compare unordered. HRANDFIELD and large HSCANs are checked by their properties.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from jobcached.commands.dispatch import execute
from jobcached.net.replies import ErrorReply
from tests.integration.cache.differential import Pair, raw_call
from tests.integration.cache.test_strings import Local, command_table_matches, run

HASH_COMMANDS = ["HSET", "HSETNX", "HGET", "HMGET", "HMSET", "HDEL", "HEXISTS", "HGETALL",
                 "HKEYS", "HVALS", "HLEN", "HSTRLEN", "HINCRBY", "HINCRBYFLOAT", "HRANDFIELD",
                 "HSCAN"]


def as_dict(reply: Any) -> dict[bytes, bytes]:
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def same_hash(pair: Pair, key: str) -> None:
    """HGETALL equal as a mapping (for hashes Redis keeps as a hash table, in its own order)."""
    ours, theirs = pair.both("HGETALL", key)
    assert as_dict(ours) == as_dict(theirs)


def test_hset_hget_and_order(pair: Pair) -> None:
    run(pair,
        ("HSET", "h", "b", "2", "a", "1", "c", "3"), ("HGETALL", "h"), ("HKEYS", "h"),
        ("HVALS", "h"), ("HSET", "h", "a", "10", "d", "4"), ("HGETALL", "h"),
        ("HSET", "h", "e", "5", "e", "6"), ("HGET", "h", "e"), ("HLEN", "h"),
        ("HDEL", "h", "b"), ("HSET", "h", "b", "again"), ("HGETALL", "h"),
        ("HGET", "h", "nope"), ("HGET", "nope", "a"), ("HGETALL", "nope"), ("HKEYS", "nope"),
        ("HVALS", "nope"), ("HLEN", "nope"),
        ("HSET", "h", "", ""), ("HGET", "h", ""), ("HSET", "h", b"\x00\xff", b"\xfe"),
        ("HGETALL", "h"))


def test_hmset_hmget(pair: Pair) -> None:
    run(pair,
        ("HMSET", "h", "a", "1", "b", "2"), ("HMGET", "h", "a", "nope", "b", "a"),
        ("HMGET", "nope", "a", "b"), ("HMSET", "h", "a", "x"), ("HGETALL", "h"),
        ("HMSET", "h", "a"), ("HMSET", "h", "a", "1", "b"), ("HMSET", "h"), ("HMGET", "h"))


def test_hset_arity(pair: Pair) -> None:
    run(pair,
        ("HSET", "h", "a"), ("HSET", "h"), ("HSET", "h", "a", "1", "b"), ("EXISTS", "h"),
        ("SET", "s", "v"), ("HSET", "s", "a"), ("HSET", "s", "a", "1"))


def test_hsetnx_hexists_hstrlen(pair: Pair) -> None:
    run(pair,
        ("HSETNX", "h", "a", "1"), ("HSETNX", "h", "a", "2"), ("HGET", "h", "a"),
        ("HEXISTS", "h", "a"), ("HEXISTS", "h", "b"), ("HEXISTS", "nope", "a"),
        ("HSET", "h", "long", "x" * 100), ("HSTRLEN", "h", "long"), ("HSTRLEN", "h", "a"),
        ("HSTRLEN", "h", "nope"), ("HSTRLEN", "nope", "a"),
        ("HSETNX", "h", "a"), ("HEXISTS", "h"), ("HSTRLEN", "h", "a", "b"))


def test_hdel(pair: Pair) -> None:
    run(pair,
        ("HSET", "h", "a", "1", "b", "2", "c", "3"), ("HDEL", "h", "a", "a", "nope"),
        ("HGETALL", "h"), ("HDEL", "nope", "a"), ("HDEL", "h", "b", "c"), ("EXISTS", "h"),
        ("HDEL", "h", "b"), ("HDEL", "h"))


def test_expiry_of_a_hash(pair: Pair) -> None:
    run(pair,
        ("HSET", "h", "a", "1"), ("EXPIRE", "h", "100"), ("HSET", "h", "b", "2"), ("TTL", "h"),
        ("HDEL", "h", "a"), ("TTL", "h"), ("HINCRBY", "h", "n", "1"), ("TTL", "h"))


def test_wrong_type(pair: Pair) -> None:
    run(pair, ("SET", "s", "v"),
        *[(cmd, "s", *args) for cmd, args in [
            ("HSET", ("f", "v")), ("HMSET", ("f", "v")), ("HSETNX", ("f", "v")), ("HGET", ("f",)),
            ("HMGET", ("f",)), ("HDEL", ("f",)), ("HEXISTS", ("f",)), ("HGETALL", ()),
            ("HKEYS", ()), ("HVALS", ()), ("HLEN", ()), ("HSTRLEN", ("f",)),
            ("HINCRBY", ("f", "1")), ("HINCRBYFLOAT", ("f", "1")), ("HRANDFIELD", ()),
            ("HRANDFIELD", ("2",)), ("HRANDFIELD", ("2", "WITHVALUES")), ("HSCAN", ("0",))]],
        ("GET", "s"))


def test_large_hash(pair: Pair) -> None:
    fields: list[Any] = []
    for i in range(600):
        fields += [f"field:{i}", f"value:{i}"]
    run(pair, ("HSET", "big", *fields[:1022]), ("OBJECT", "ENCODING", "big"),
        ("HSET", "big", *fields[1022:1026]), ("OBJECT", "ENCODING", "big"),
        ("HSET", "big", *fields[1026:]), ("HLEN", "big"), ("OBJECT", "ENCODING", "big"),
        ("HGET", "big", "field:150"), ("HSET", "wide", "f", "v" * 65),
        ("OBJECT", "ENCODING", "wide"), ("HSET", "small", "f", "v"),
        ("OBJECT", "ENCODING", "small"))
    for cmd in ("HKEYS", "HVALS"):
        pair.check(cmd, "big", unordered=True)
    same_hash(pair, "big")


# --------------------------------------------------------------------------- counters


def test_hincrby(pair: Pair) -> None:
    run(pair,
        ("HINCRBY", "h", "n", "5"), ("HINCRBY", "h", "n", "-10"), ("HGET", "h", "n"),
        ("HINCRBY", "h", "m", "9223372036854775807"), ("HINCRBY", "h", "m", "1"),
        ("HINCRBY", "h", "m", "-9223372036854775807"), ("HINCRBY", "h", "m", "-1"),
        ("HINCRBY", "h", "m", "-1"), ("HINCRBY", "h", "m", "-1"), ("HGET", "h", "m"),
        ("HINCRBY", "h", "k", "-9223372036854775808"), ("HINCRBY", "h", "k", "-1"),
        ("HINCRBY", "h", "k", "1"),
        ("HSET", "h", "s", "abc", "f", "1.5", "sp", " 1", "z", "01"),
        *[("HINCRBY", "h", f, "1") for f in ("s", "f", "sp", "z")],
        ("HINCRBY", "h", "n", "x"), ("HINCRBY", "h", "n", "1.5"), ("HINCRBY", "h", "n", ""),
        ("HINCRBY", "h", "n", "9223372036854775808"), ("HINCRBY", "fresh", "n", "x"),
        ("EXISTS", "fresh"), ("HGETALL", "h"),
        ("HINCRBY", "h", "n"), ("HINCRBY", "h", "n", "1", "2"))


def test_hincrbyfloat(pair: Pair) -> None:
    run(pair,
        ("HINCRBYFLOAT", "h", "f", "10.5"), ("HINCRBYFLOAT", "h", "f", "0.1"),
        ("HINCRBYFLOAT", "h", "g", "3.0e3"), ("HINCRBYFLOAT", "h", "g", "-3000"),
        ("HINCRBYFLOAT", "h", "big", "1e400"), ("HINCRBYFLOAT", "h", "x", "0x1p-2"),
        ("HINCRBYFLOAT", "h", "b", "1e4932"), ("HINCRBYFLOAT", "h", "b", "1e4932"),
        ("HINCRBYFLOAT", "h", "c", "1e-5000"), ("HINCRBYFLOAT", "h", "c", "1e-4950"),
        ("HINCRBYFLOAT", "h", "d", "inf"), ("HINCRBYFLOAT", "h", "d", "-Infinity"),
        ("HINCRBYFLOAT", "h", "d", "nan"), ("HINCRBYFLOAT", "h", "d", "abc"),
        ("HINCRBYFLOAT", "h", "d", ""), ("HINCRBYFLOAT", "h", "d", " 1"),
        ("HINCRBYFLOAT", "new", "f", "+inf"), ("HINCRBYFLOAT", "new", "f", "x"), ("EXISTS", "new"),
        ("HSET", "h", "s", "abc", "i", "7", "inf", "inf", "e", ""),
        ("HINCRBYFLOAT", "h", "s", "1"), ("HINCRBYFLOAT", "h", "i", "0.5"),
        ("HINCRBYFLOAT", "h", "inf", "1"), ("HINCRBYFLOAT", "h", "e", "1"),
        ("HINCRBYFLOAT", "h", "f"), ("HINCRBYFLOAT", "h", "f", "1", "2"))
    same_hash(pair, "h")  # values over 64 bytes: Redis' order is its hash table's


# --------------------------------------------------------------------------- HRANDFIELD


def test_hrandfield_errors_and_edges(pair: Pair) -> None:
    # Never send Redis an in-range negative count on a non-empty hash: it builds the whole reply.
    run(pair,
        ("HRANDFIELD", "nope"), ("HRANDFIELD", "nope", "5"), ("HRANDFIELD", "nope", "-5"),
        ("HRANDFIELD", "nope", "5", "WITHVALUES"), ("HRANDFIELD", "nope", "abc"),
        ("HRANDFIELD", "nope", "-9223372036854775808"),
        ("HSET", "h", "a", "1", "b", "2", "c", "3"),
        ("HRANDFIELD", "h", "0"), ("HRANDFIELD", "h", "0", "WITHVALUES"),
        ("HRANDFIELD", "h", "3"), ("HRANDFIELD", "h", "5"), ("HRANDFIELD", "h", "5", "withvalues"),
        ("HRANDFIELD", "h", "abc"), ("HRANDFIELD", "h", "1.5"),
        ("HRANDFIELD", "h", "-9223372036854775808"),
        ("HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"),
        ("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"),
        ("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"),
        ("HRANDFIELD", "h", "9223372036854775807", "WITHVALUES"),
        ("HRANDFIELD", "h", "1", "foo"), ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
        ("HRANDFIELD",))


def test_hrandfield_properties(pair: Pair) -> None:
    fields = {f"f{i}".encode(): f"v{i}".encode() for i in range(10)}
    r = pair.ours
    resp3 = r.connection_pool.connection_kwargs.get("protocol") == 3
    r.hset("h", mapping=fields)
    assert {r.execute_command("HRANDFIELD", "h") for _ in range(100)} == set(fields)
    for count in (1, 3, 9):
        got = r.execute_command("HRANDFIELD", "h", count)
        assert len(got) == count == len(set(got)) and set(got) <= set(fields)
    got = r.execute_command("HRANDFIELD", "h", -50)
    assert len(got) == 50 and set(got) <= set(fields)
    for count in (4, -30, 20):
        got = r.execute_command("HRANDFIELD", "h", count, "WITHVALUES")
        pairs = got if resp3 else list(zip(got[::2], got[1::2], strict=True))
        assert len(pairs) == min(abs(count), 10) if count > 0 else len(pairs) == -count
        assert all(fields[bytes(f)] == v for f, v in pairs)
        if count > 0:
            assert len({bytes(f) for f, _ in pairs}) == len(pairs)


def test_hrandfield_refuses_huge_replies(pair: Pair) -> None:
    # Ours only: Redis would try to build these replies (billions of elements).
    r = pair.ours
    r.hset("h", "a", "1")
    for argv in (("-1000000000",), ("-9223372036854775807",), ("-5000001", "WITHVALUES")):
        with pytest.raises(redis.ResponseError, match="count is too large"):
            r.execute_command("HRANDFIELD", "h", *argv)
    assert r.execute_command("HRANDFIELD", "nope", "-1000000000") == []
    assert len(r.execute_command("HRANDFIELD", "h", "-1000")) == 1000


# --------------------------------------------------------------------------- HSCAN


def test_hscan_small_hashes_come_whole(pair: Pair) -> None:
    run(pair,
        ("HSCAN", "nope", "0"), ("HSCAN", "nope", "0", "foo"), ("HSCAN", "nope", "x"),
        ("HSET", "h", "alpha", "1", "beta", "2", "gamma", "3", "", "empty"),
        ("HSCAN", "h", "0"), ("HSCAN", "h", "0", "COUNT", "1"), ("HSCAN", "h", "0", "MATCH", "*a"),
        ("HSCAN", "h", "0", "MATCH", "*"), ("HSCAN", "h", "0", "MATCH", "?eta", "COUNT", "100"),
        ("HSCAN", "h", "0", "MATCH", ""),
        ("HSCAN", "h", "abc"), ("HSCAN", "h", "-1x"), ("HSCAN", "h", "0", "COUNT", "0"),
        ("HSCAN", "h", "0", "COUNT", "x"), ("HSCAN", "h", "0", "MATCH"),
        ("HSCAN", "h", "0", "TYPE", "string"), ("HSCAN", "h", "0", "NOVALUES"),
        ("HSCAN", "h"), ("HSCAN",))


def hscan_all(client: Any, key: str, *options: str, between: Any = None) -> list[bytes]:
    items: list[bytes] = []
    cursor: Any = b"0"
    for step in range(100_000):
        cursor, chunk = raw_call(client, "HSCAN", key, cursor, *options)
        items.extend(chunk)
        if between is not None:
            between(step)
        if cursor == b"0":
            return items
    raise AssertionError("HSCAN did not finish")


def test_hscan_large_hash(pair: Pair) -> None:
    mapping = {f"field:{i}": f"value:{i}" for i in range(1000)}
    pair.ours.hset("big", mapping=mapping)
    pair.theirs.hset("big", mapping=mapping)
    for options in [(), ("COUNT", "7"), ("COUNT", "5000"), ("MATCH", "field:1*"),
                    ("MATCH", "field:?", "COUNT", "50")]:
        ours = hscan_all(pair.ours, "big", *options)
        theirs = hscan_all(pair.theirs, "big", *options)
        assert as_dict(ours) == as_dict(theirs), options
    cursor, chunk = raw_call(pair.ours, "HSCAN", "big", "0", "COUNT", "10")
    assert cursor != b"0" and len(chunk) == 20


def test_hscan_is_sound_while_fields_change(pair: Pair) -> None:
    r = pair.ours
    r.hset("big", mapping={f"f{i}": "v" for i in range(1000)})
    deleted: set[bytes] = set()

    def churn(step: int) -> None:
        victim = f"f{step * 37 % 1000}".encode()
        r.hdel("big", victim)
        deleted.add(victim)
        r.hset("big", f"new{step}", "v")

    items = hscan_all(r, "big", "COUNT", "15", between=churn)
    seen = set(items[::2])
    survivors = {f"f{i}".encode() for i in range(1000)} - deleted
    assert survivors <= seen


def test_command_table(pair: Pair) -> None:
    command_table_matches(pair, HASH_COMMANDS)


# --------------------------------------------------------------------------- effects


def test_hash_effects() -> None:
    local = Local()
    assert local.effects("HSET", "h", "a", "1") == [[b"HSET", b"h", b"a", b"1"]]
    assert local.effects("HMSET", "h", "b", "2") == [[b"HSET", b"h", b"b", b"2"]]
    assert local.effects("HSETNX", "h", "a", "x") == []
    assert local.effects("HSETNX", "h", "c", "3") == [[b"HSET", b"h", b"c", b"3"]]
    assert local.effects("HINCRBY", "h", "a", "5") == [[b"HSET", b"h", b"a", b"6"]]
    assert local.effects("HINCRBYFLOAT", "h", "f", "10.5") == [[b"HSET", b"h", b"f", b"10.5"]]
    assert local.effects("HINCRBYFLOAT", "h", "f", "0.1") == [[b"HSET", b"h", b"f", b"10.6"]]
    assert local.effects("HDEL", "h", "a", "nope", "a") == [[b"HDEL", b"h", b"a"]]
    assert local.effects("HDEL", "h", "nope") == []
    assert local.effects("HGETALL", "h") == []


def test_failed_hash_commands_leave_no_trace() -> None:
    local = Local()
    local("HSET", "h", "s", "abc", "n", "9223372036854775807")
    before = local.state.backlog.count
    for argv in (["HINCRBYFLOAT", "new", "f", "+inf"], ["HINCRBYFLOAT", "new", "f", "nan"],
                 ["HINCRBY", "new", "f", "x"], ["HINCRBY", "h", "n", "1"],
                 ["HINCRBY", "h", "s", "1"], ["HINCRBYFLOAT", "h", "s", "1"],
                 ["HSET", "new", "a"], ["HRANDFIELD", "h", "-100000000"]):
        reply = execute(local.session, [a.encode() for a in argv])
        assert isinstance(reply, ErrorReply), argv
    assert local.state.backlog.count == before
    assert local("EXISTS", "new") == 0
    assert local("HGETALL", "h") == {b"s": b"abc", b"n": b"9223372036854775807"}


def test_hash_memory_accounting_stays_exact() -> None:
    local = Local()
    local("HSET", "h", *[f"f{i}" for i in range(400)])
    local("HSET", "h", "f0", "x" * 1000, "f2", "")
    local("HDEL", "h", *[f"f{i}" for i in range(0, 400, 3)])
    local("HINCRBY", "h", "n", "12345")
    local("HINCRBYFLOAT", "h", "n", "0.25")
    local("HSETNX", "h", "new", "y" * 600)
    local("HMSET", "g", "a", "1")
    local("HDEL", "g", "a")
    assert local("EXISTS", "g") == 0
    local.memory_is_exact()
