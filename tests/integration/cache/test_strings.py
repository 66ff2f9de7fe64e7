"""String commands against redis-server 7.0, and the effects they propagate.

Differential tests send each command to both servers (`pair.check`) and require identical
replies, errors included, under RESP2 and RESP3. Effects are checked in-process, on a server
state driven by a manual clock: the replication record must carry absolute times only.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from jobcached.cache.memory import entry_size_check
from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.net.replies import ErrorReply
from jobcached.server.session import Session
from jobcached.server.state import ServerState
from tests.integration.cache.differential import Pair

load_all()

FAR_FUTURE_S = 4102444800  # 2100-01-01, so TTL replies do not depend on when the test runs
FAR_FUTURE_MS = FAR_FUTURE_S * 1000 + 123


def run(pair: Pair, *commands: tuple[Any, ...]) -> None:
    for cmd in commands:
        pair.check(*cmd)


def close_ints(pair: Pair, *argv: Any, tolerance: int = 1000) -> None:
    """Replies that are times measured a moment apart: equal within `tolerance`."""
    ours, theirs = pair.both(*argv)
    assert isinstance(ours, int) and isinstance(theirs, int), (ours, theirs)
    assert abs(ours - theirs) <= tolerance, (argv, ours, theirs)


# --------------------------------------------------------------------------- GET / SET


def test_get_and_plain_set(pair: Pair) -> None:
    run(pair,
        ("GET", "k"), ("SET", "k", "v"), ("GET", "k"), ("SET", "k", ""), ("GET", "k"),
        ("SET", "k", b"\x00\xff bin"), ("GET", "k"), ("SET", "k", "x" * 1000), ("GET", "k"),
        ("HSET", "h", "f", "v"), ("GET", "h"), ("SET", "h", "now a string"), ("GET", "h"),
        ("TYPE", "h"),
        ("GET",), ("GET", "a", "b"), ("SET", "k"), ("SET",))


def test_set_conditions_and_get(pair: Pair) -> None:
    run(pair,
        ("SET", "k", "1", "NX"), ("SET", "k", "2", "NX"), ("GET", "k"),
        ("SET", "k", "3", "XX"), ("SET", "missing", "3", "XX"), ("EXISTS", "missing"),
        ("SET", "k", "4", "GET"), ("SET", "new", "4", "GET"), ("GET", "new"),
        ("SET", "k", "5", "NX", "GET"), ("GET", "k"), ("SET", "k2", "5", "nx", "get"),
        ("SET", "k", "6", "XX", "GET"), ("SET", "nope", "6", "XX", "GET"), ("EXISTS", "nope"),
        ("SET", "k", "7", "get", "GET", "nx", "NX"),
        ("HSET", "h", "f", "v"), ("SET", "h", "x", "GET"), ("SET", "h", "x", "NX", "GET"),
        ("TYPE", "h"), ("SET", "h", "x", "NX"), ("SET", "h", "x", "XX"), ("TYPE", "h"))


def test_set_option_syntax(pair: Pair) -> None:
    run(pair,
        ("SET", "k", "v", "NX", "XX"), ("SET", "k", "v", "XX", "NX"),
        ("SET", "k", "v", "EX", "10", "PX", "100"), ("SET", "k", "v", "EX"),
        ("SET", "k", "v", "PX"), ("SET", "k", "v", "EXAT"), ("SET", "k", "v", "PXAT"),
        ("SET", "k", "v", "KEEPTTL", "EX", "10"), ("SET", "k", "v", "EX", "10", "KEEPTTL"),
        ("SET", "k", "v", "PERSIST"), ("SET", "k", "v", "foo"), ("SET", "k", "v", "EX", "10", "x"),
        ("SET", "k", "v", "EX", "abc"), ("SET", "k", "v", "EX", "1.5"), ("SET", "k", "v", "PX", ""),
        ("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "-1"), ("SET", "k", "v", "PX", "0"),
        ("SET", "k", "v", "EXAT", "0"), ("SET", "k", "v", "PXAT", "-5"),
        ("SET", "k", "v", "EX", "9223372036854775"), ("SET", "k", "v", "EX", "9223372036854776"),
        ("SET", "k", "v", "PX", "9223372036854775807"),
        ("SET", "k", "v", "EX", "9223372036854775808"),
        ("GET", "k"),  # nothing above was applied
        ("SET", "k", "v", "EX", "10", "EX", "20"), ("TTL", "k"),
        ("SET", "k", "v", "ex", "100", "px", "5"))


def test_set_ttls(pair: Pair) -> None:
    run(pair,
        ("SET", "k", "v", "EX", "100"), ("TTL", "k"),
        ("SET", "k", "v", "KEEPTTL"), ("TTL", "k"),
        ("SET", "k", "v", "XX", "GET", "KEEPTTL"), ("TTL", "k"),
        ("SET", "k", "v"), ("TTL", "k"),
        ("SET", "k", "v", "PX", "100000"), ("TTL", "k"),
        ("SET", "k", "v", "EXAT", str(FAR_FUTURE_S)), ("EXPIRETIME", "k"),
        ("SET", "k", "v", "PXAT", str(FAR_FUTURE_MS)), ("PEXPIRETIME", "k"),
        ("SET", "k", "w", "NX", "EX", "5"), ("PEXPIRETIME", "k"),  # NX refused: TTL untouched
        ("SET", "k", "v", "EXAT", "1"), ("EXISTS", "k"),  # in the past: stored and gone
        ("SET", "k", "v"), ("SET", "k", "old", "PXAT", "1", "GET"), ("GET", "k"),
        ("SET", "p", "v", "PX", "1"))
    close_ints(pair, "PTTL", "p", tolerance=5)


def test_setnx_setex_psetex(pair: Pair) -> None:
    run(pair,
        ("SETNX", "k", "1"), ("SETNX", "k", "2"), ("GET", "k"),
        ("HSET", "h", "f", "v"), ("SETNX", "h", "x"), ("TYPE", "h"),
        ("SETEX", "k", "100", "v"), ("GET", "k"), ("TTL", "k"),
        ("SETEX", "k", "0", "v"), ("SETEX", "k", "-1", "v"), ("SETEX", "k", "abc", "v"),
        ("SETEX", "k", "9223372036854776", "v"),
        ("PSETEX", "k", "100000", "w"), ("GET", "k"), ("TTL", "k"),
        ("PSETEX", "k", "0", "v"), ("PSETEX", "k", "x", "v"),
        ("SETEX", "h", "10", "v"), ("TYPE", "h"), ("TTL", "h"),
        ("SETNX", "k"), ("SETEX", "k", "10"), ("PSETEX", "k", "10", "v", "x"))


def test_getset_and_getdel(pair: Pair) -> None:
    run(pair,
        ("GETSET", "k", "1"), ("GETSET", "k", "2"), ("GET", "k"),
        ("SET", "t", "v", "EX", "100"), ("GETSET", "t", "w"), ("TTL", "t"),
        ("HSET", "h", "f", "v"), ("GETSET", "h", "x"), ("TYPE", "h"),
        ("GETDEL", "k"), ("GETDEL", "k"), ("EXISTS", "k"), ("GETDEL", "h"), ("TYPE", "h"),
        ("GETSET", "k"), ("GETDEL",), ("GETDEL", "a", "b"))


def test_getex(pair: Pair) -> None:
    run(pair,
        ("GETEX", "missing"), ("GETEX", "missing", "EX", "0"), ("GETEX", "missing", "EX", "x"),
        ("GETEX", "missing", "PERSIST"), ("GETEX", "missing", "foo"),
        ("SET", "k", "v"), ("GETEX", "k"), ("TTL", "k"),
        ("GETEX", "k", "EX", "100"), ("TTL", "k"), ("GETEX", "k", "PX", "200000"), ("TTL", "k"),
        ("GETEX", "k", "EXAT", str(FAR_FUTURE_S)), ("EXPIRETIME", "k"),
        ("GETEX", "k", "PXAT", str(FAR_FUTURE_MS)), ("PEXPIRETIME", "k"),
        ("GETEX", "k", "PERSIST"), ("TTL", "k"), ("GETEX", "k", "persist"), ("TTL", "k"),
        ("GETEX", "k", "EX", "0"), ("GETEX", "k", "PX", "-1"), ("GETEX", "k", "EX", "abc"),
        ("GETEX", "k", "EX", "9223372036854776"),
        ("GETEX", "k", "PERSIST", "EX", "10"), ("GETEX", "k", "EX", "10", "PERSIST"),
        ("GETEX", "k", "EX", "10", "PX", "10"), ("GETEX", "k", "EX"), ("GETEX", "k", "NX"),
        ("GETEX", "k", "KEEPTTL"), ("GETEX", "k", "GET"), ("GETEX", "k", "EX", "10", "EX", "20"),
        ("TTL", "k"),
        ("GETEX", "k", "EXAT", "1"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("GETEX", "k", "PXAT", "1"), ("GET", "k"),
        ("HSET", "h", "f", "v"), ("GETEX", "h"), ("GETEX", "h", "EX", "10"), ("TTL", "h"),
        ("GETEX",))


# --------------------------------------------------------------------------- multi-key


def test_mget_mset_msetnx(pair: Pair) -> None:
    run(pair,
        ("MSET", "a", "1", "b", "2"), ("MGET", "a", "b", "c"), ("MGET", "a"),
        ("MSET", "a", "x", "a", "y"), ("GET", "a"),
        ("SET", "t", "v", "EX", "100"), ("MSET", "t", "w"), ("TTL", "t"),
        ("HSET", "h", "f", "v"), ("MGET", "a", "h", "nope"),
        ("MSETNX", "a", "1", "n", "2"), ("EXISTS", "n"), ("MSETNX", "n", "1", "m", "2"),
        ("MGET", "n", "m"), ("MSETNX", "h", "1"), ("TYPE", "h"), ("MSETNX", "q", "1", "q", "2"),
        ("GET", "q"),
        ("MSET", "a"), ("MSET", "a", "1", "b"), ("MSETNX", "a", "1", "b"), ("MSETNX", "a"),
        ("MSET",), ("MGET",), ("GET", "b"))


# --------------------------------------------------------------------------- ranges


def test_append_and_strlen(pair: Pair) -> None:
    run(pair,
        ("APPEND", "k", "Hello"), ("APPEND", "k", " World"), ("GET", "k"), ("STRLEN", "k"),
        ("APPEND", "k", ""), ("STRLEN", "missing"), ("APPEND", "e", ""), ("EXISTS", "e"),
        ("SET", "t", "v", "EX", "100"), ("APPEND", "t", "w"), ("TTL", "t"), ("GET", "t"),
        ("SET", "n", "12"), ("APPEND", "n", "34"), ("INCR", "n"),
        ("HSET", "h", "f", "v"), ("APPEND", "h", "x"), ("STRLEN", "h"),
        ("APPEND", "k"), ("STRLEN",), ("STRLEN", "a", "b"))


@pytest.mark.parametrize("start,end", [
    ("0", "-1"), ("0", "4"), ("6", "10"), ("-5", "-1"), ("-1", "-5"), ("5", "3"), ("-100", "100"),
    ("0", "-100"), ("-3", "-100"), ("-100", "-3"), ("3", "3"), ("10", "10"), ("11", "20"),
    ("9223372036854775807", "9223372036854775807"), ("-9223372036854775808", "0"),
    ("-9223372036854775808", "-9223372036854775808"), ("0", "9223372036854775807"),
    ("x", "1"), ("1", "1.5"), ("", "1"), ("1", "9223372036854775808")])
def test_getrange(pair: Pair, start: str, end: str) -> None:
    run(pair,
        ("SET", "s", "Hello World"), ("GETRANGE", "s", start, end), ("SUBSTR", "s", start, end),
        ("GETRANGE", "missing", start, end), ("SET", "e", ""), ("GETRANGE", "e", start, end),
        ("SET", "i", "1234567"), ("GETRANGE", "i", start, end))


def test_getrange_errors(pair: Pair) -> None:
    run(pair,
        ("HSET", "h", "f", "v"), ("GETRANGE", "h", "0", "-1"), ("GETRANGE", "h", "x", "1"),
        ("GETRANGE", "s", "0"), ("SUBSTR", "s"), ("GETRANGE", "s", "0", "1", "2"))


def test_setrange(pair: Pair) -> None:
    run(pair,
        ("SETRANGE", "k", "0", "Hello"), ("GET", "k"), ("SETRANGE", "k", "1", "ipp"),
        ("GET", "k"), ("SETRANGE", "k", "8", "x"), ("GET", "k"), ("STRLEN", "k"),
        ("SETRANGE", "k", "3", ""), ("SETRANGE", "k", "100", ""), ("STRLEN", "k"),
        ("SETRANGE", "new", "3", "abc"), ("GET", "new"),
        ("SETRANGE", "none", "5", ""), ("EXISTS", "none"),
        ("SETRANGE", "none", "536870911", ""), ("EXISTS", "none"),
        ("SET", "t", "v", "EX", "100"), ("SETRANGE", "t", "0", "w"), ("TTL", "t"),
        ("SETRANGE", "k", "-1", "x"), ("SETRANGE", "k", "x", "x"), ("SETRANGE", "k", "1.0", "x"),
        ("SETRANGE", "none", "536870912", "x"), ("SETRANGE", "k", "536870911", "xx"),
        ("SETRANGE", "k", "9223372036854775807", "x"), ("SETRANGE", "k", "-1", ""),
        ("EXISTS", "none"), ("GET", "k"),
        ("HSET", "h", "f", "v"), ("SETRANGE", "h", "0", ""), ("SETRANGE", "h", "0", "x"),
        ("SETRANGE", "k", "0"), ("SETRANGE", "k", "0", "a", "b"))


# --------------------------------------------------------------------------- counters


def test_incr_decr(pair: Pair) -> None:
    run(pair,
        ("INCR", "n"), ("INCR", "n"), ("DECR", "n"), ("DECR", "n"), ("DECR", "n"), ("GET", "n"),
        ("INCRBY", "n", "100"), ("INCRBY", "n", "-1000"), ("DECRBY", "n", "-5"),
        ("DECRBY", "n", "7"), ("GET", "n"),
        ("SET", "n", "9223372036854775806"), ("INCR", "n"), ("INCR", "n"), ("GET", "n"),
        ("INCRBY", "n", "-9223372036854775807"), ("INCRBY", "n", "9223372036854775807"),
        ("SET", "n", "-9223372036854775807"), ("DECR", "n"), ("DECR", "n"),
        ("DECRBY", "n", "1"), ("INCRBY", "n", "-1"), ("DECRBY", "n", "-9223372036854775808"),
        ("INCRBY", "n", "-9223372036854775808"), ("GET", "n"),
        ("SET", "n", "0"), ("DECRBY", "n", "9223372036854775807"), ("DECR", "n"),
        ("SET", "t", "10", "EX", "100"), ("INCR", "t"), ("TTL", "t"), ("INCRBY", "t", "5"),
        ("TTL", "t"), ("DECR", "t"), ("TTL", "t"))


@pytest.mark.parametrize("stored", [
    " 1", "1 ", "1.0", "abc", "", "+1", "01", "0x10", "1e3", "9223372036854775808",
    "-9223372036854775809", "99999999999999999999", "12345678901234567890123", "\x001"])
def test_incr_refuses_non_integers(pair: Pair, stored: str) -> None:
    run(pair,
        ("SET", "n", stored), ("INCR", "n"), ("DECR", "n"), ("INCRBY", "n", "1"),
        ("DECRBY", "n", "1"), ("GET", "n"),
        ("INCRBY", "fresh", stored), ("DECRBY", "fresh", stored), ("EXISTS", "fresh"))


def test_counter_errors(pair: Pair) -> None:
    run(pair,
        ("HSET", "h", "f", "1"), ("INCR", "h"), ("DECR", "h"), ("INCRBY", "h", "1"),
        ("DECRBY", "h", "1"), ("INCRBYFLOAT", "h", "1"),
        ("INCR",), ("INCR", "a", "b"), ("INCRBY", "a"), ("DECRBY", "a", "1", "2"),
        ("INCRBYFLOAT", "a"), ("INCRBYFLOAT", "a", "1", "2"))


@pytest.mark.parametrize("increments", [
    ["0.1"], ["10.5", "0.1"], ["3.0e3"], ["1e400"], ["-1e400", "1"], ["0x1p3", "0X1.8P-2"],
    ["+.5", "5.", "-0.0"], ["1.18e4932"], ["1.19e4932"], ["1e4932", "1e4932"], ["1e-4950"],
    ["1e-4951"], ["1e-5000"], ["1e5000"], ["inf"], ["-infinity"], ["nan"], ["NaN"], ["1e"],
    ["."], [" 1"], ["1 "], ["0x"], ["0x1p"], ["1_0"], ["1,5"], [""], ["5e-18", "1e-18"],
    ["0.000003814697265625"], ["123456789012345678901234567890"], ["9223372036854775807", "1"],
    ["1.5", "-1.5"], ["-0.1", "0.1"], ["1e-17", "1e-17"], ["2.5e-17"], ["0" * 5119],
    ["0" * 5120], ["1e" + "9" * 5000], ["0e" + "9" * 5000], ["1e-" + "9" * 5000],
    ["1" * 4000 + "e-3990"], ["0x" + "f" * 5000], ["1e-0000000000000000001"]],
    ids=lambda increments: "-".join(increments)[:40])
def test_incrbyfloat(pair: Pair, increments: list[str]) -> None:
    for increment in increments:
        pair.check("INCRBYFLOAT", "f", increment)
        pair.check("GET", "f")


@pytest.mark.parametrize("stored", [
    "10", "10.5", "-0", "3.0000000000000000001", "1.7976931348623157e308", "abc", " 1", "",
    "0x10", "inf", "-inf", "1e-18", "\x001", "1\x00"])
def test_incrbyfloat_on_stored_values(pair: Pair, stored: str) -> None:
    run(pair,
        ("SET", "f", stored), ("INCRBYFLOAT", "f", "0"), ("GET", "f"),
        ("INCRBYFLOAT", "f", "1.5"), ("GET", "f"))


def test_incrbyfloat_keeps_the_ttl(pair: Pair) -> None:
    run(pair,
        ("SET", "f", "1", "EX", "100"), ("INCRBYFLOAT", "f", "0.5"), ("TTL", "f"),
        ("GET", "f"), ("OBJECT", "ENCODING", "f"))


def test_incrbyfloat_random_sequences(pair: Pair) -> None:
    rng = random.Random(20240607)
    for i in range(120):
        kind = rng.random()
        if kind < 0.4:
            value = f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 19)}f}"
        elif kind < 0.7:
            value = f"{rng.uniform(-10, 10):.{rng.randint(0, 22)}e}{rng.randint(-30, 30):+d}"
        else:
            value = repr(rng.uniform(-1, 1))
        pair.check("INCRBYFLOAT", f"f{i % 7}", value)


# --------------------------------------------------------------------------- table


STRING_COMMANDS = ["GET", "SET", "SETNX", "SETEX", "PSETEX", "MGET", "MSET", "MSETNX", "GETSET",
                   "GETDEL", "GETEX", "APPEND", "STRLEN", "GETRANGE", "SUBSTR", "SETRANGE",
                   "INCR", "DECR", "INCRBY", "DECRBY", "INCRBYFLOAT"]
POLICY_FLAGS = {b"write", b"readonly", b"denyoom", b"fast"}


def command_table_matches(pair: Pair, names: list[str]) -> None:
    """Arity, the policy flags (write / readonly / denyoom / fast) and key positions."""
    for name in names:
        ours, theirs = pair.both("COMMAND", "INFO", name)
        assert ours and theirs and ours[0] and theirs[0], name
        (o, t) = ours[0], theirs[0]
        assert o[1] == t[1], (name, "arity", o[1], t[1])
        assert set(o[2]) & POLICY_FLAGS == set(t[2]) & POLICY_FLAGS, (name, o[2], t[2])
        assert o[3:6] == t[3:6], (name, "keys", o[3:6], t[3:6])


def test_command_table(pair: Pair) -> None:
    command_table_matches(pair, STRING_COMMANDS)


# --------------------------------------------------------------------------- effects


class _NoConnection:
    def close_after_reply(self) -> None: ...
    def abort(self) -> None: ...
    def query_buffer_bytes(self) -> int: return 0
    def output_buffer_bytes(self) -> int: return 0


class Local:
    """An in-process server state and session, on a manual clock; records what is propagated."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.state = ServerState(Config(), self.clock)
        self.state.backlog.activate()  # keep the effect records, as for a follower
        self.session = Session(self.state, _NoConnection(), "127.0.0.1:1", "127.0.0.1:2", True)

    def __call__(self, *argv: str | bytes) -> Any:
        reply = execute(self.session, [a if isinstance(a, bytes) else a.encode() for a in argv])
        assert not isinstance(reply, ErrorReply), (argv, reply)
        return reply

    def effects(self, *argv: str | bytes) -> list[list[bytes]]:
        """Run argv and return the effects it propagated."""
        before = self.state.backlog.count
        self(*argv)
        count = self.state.backlog.count - before
        return self.state.backlog.last(count) if count else []

    def memory_is_exact(self) -> None:
        """The running used_memory equals a full walk (the notify_modified contract)."""
        ks = self.state.dbs[0]
        total = sum(entry_size_check(key, e.value, e.expire_at != 0)
                    for shard in ks.shards for key, e in shard.data.items())
        assert ks.stats.used_memory == total


def test_set_effects_use_absolute_times() -> None:
    local = Local()
    now = local.clock.now_ms()
    assert local.effects("SET", "k", "v") == [[b"SET", b"k", b"v"]]
    assert local.effects("SET", "k", "v", "EX", "10") == [
        [b"SET", b"k", b"v", b"PXAT", b"%d" % (now + 10_000)]]
    assert local.effects("SET", "k", "v", "PX", "5", "XX") == [
        [b"SET", b"k", b"v", b"PXAT", b"%d" % (now + 5)]]
    assert local.effects("SET", "k", "w", "EXAT", "2000000000") == [
        [b"SET", b"k", b"w", b"PXAT", b"2000000000000"]]
    assert local.effects("SET", "k", "v", "KEEPTTL", "GET") == [[b"SET", b"k", b"v", b"KEEPTTL"]]
    assert local.effects("SET", "k", "v", "NX") == []
    assert local.effects("SET", "nope", "v", "XX") == []
    assert local.effects("SET", "k", "v", "PXAT", "1") == [[b"DEL", b"k"]]
    assert local.effects("SET", "k", "v", "PXAT", "1") == []  # nothing existed, nothing changed
    assert local.effects("SETEX", "k", "3", "v") == [
        [b"SET", b"k", b"v", b"PXAT", b"%d" % (now + 3000)]]
    assert local.effects("PSETEX", "k", "3", "v") == [
        [b"SET", b"k", b"v", b"PXAT", b"%d" % (now + 3)]]
    assert local.effects("SETNX", "k", "v") == []
    assert local.effects("GETSET", "k", "x") == [[b"SET", b"k", b"x"]]
    assert local.effects("MSETNX", "a", "1", "b", "2") == [[b"MSET", b"a", b"1", b"b", b"2"]]
    assert local.effects("MSETNX", "a", "1", "c", "2") == []
    assert local.effects("GETDEL", "k") == [[b"DEL", b"k"]]
    assert local.effects("GETDEL", "k") == []


def test_getex_effects() -> None:
    local = Local()
    now = local.clock.now_ms()
    local("SET", "k", "v")
    assert local.effects("GETEX", "k") == []
    assert local.effects("GETEX", "k", "PERSIST") == []  # no TTL to remove
    assert local.effects("GETEX", "k", "EX", "7") == [[b"PEXPIREAT", b"k", b"%d" % (now + 7000)]]
    assert local.effects("GETEX", "k", "PXAT", "2000000000000") == [
        [b"PEXPIREAT", b"k", b"2000000000000"]]
    assert local.effects("GETEX", "k", "PERSIST") == [[b"PERSIST", b"k"]]
    assert local.effects("GETEX", "k", "EXAT", "1") == [[b"DEL", b"k"]]
    assert local.effects("GETEX", "k", "EX", "1") == []


def test_counter_and_range_effects() -> None:
    local = Local()
    assert local.effects("INCR", "n") == [[b"INCR", b"n"]]
    assert local.effects("INCRBY", "n", "5") == [[b"INCRBY", b"n", b"5"]]
    assert local.effects("INCRBYFLOAT", "n", "0.1") == [[b"SET", b"n", b"6.1", b"KEEPTTL"]]
    assert local.effects("INCRBYFLOAT", "f", "3.0e3") == [[b"SET", b"f", b"3000", b"KEEPTTL"]]
    assert local.effects("APPEND", "s", "ab") == [[b"APPEND", b"s", b"ab"]]
    assert local.effects("SETRANGE", "s", "1", "X") == [[b"SETRANGE", b"s", b"1", b"X"]]
    assert local.effects("SETRANGE", "s", "1", "") == []
    assert local("GET", "s") == b"aX"


def test_failed_commands_leave_no_trace() -> None:
    local = Local()
    local("SET", "n", "9223372036854775807", "EX", "100")
    before = local.state.backlog.count
    for argv in (["INCR", "n"], ["INCRBYFLOAT", "f", "inf"], ["INCRBYFLOAT", "f", "nan"],
                 ["SETRANGE", "big", "536870912", "x"], ["SET", "k", "v", "EX", "0"],
                 ["GETEX", "n", "EX", "-1"], ["DECRBY", "n", "-9223372036854775808"]):
        reply = execute(local.session, [a.encode() for a in argv])
        assert isinstance(reply, ErrorReply), argv
    assert local.state.backlog.count == before
    assert local("EXISTS", "f", "big", "k") == 0
    assert local("GET", "n") == b"9223372036854775807"


def test_string_memory_accounting_stays_exact() -> None:
    local = Local()
    local("SET", "k", "v" * 100)
    local("APPEND", "k", "w" * 1000)
    local("SETRANGE", "k", "5000", "x")
    local("SET", "t", "1", "EX", "100")
    local("INCRBY", "t", "123456789")
    local("INCRBYFLOAT", "t", "0.5")
    local("GETEX", "t", "PERSIST")
    local("GETSET", "k", "short")
    local("MSET", "a", "1", "b", "2" * 600)
    local("GETDEL", "a")
    local.memory_is_exact()
