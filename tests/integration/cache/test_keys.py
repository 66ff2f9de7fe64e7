"""Generic key commands against redis-server 7.0, and the effects they propagate.

Random or unordered replies (RANDOMKEY, KEYS, SCAN) are checked by their properties; TTL replies
use far-future absolute times or second rounding so that both servers agree exactly.
"""

from __future__ import annotations

import time

import redis

from jobcached.cache.memory import entry_size_check
from tests.integration.cache.differential import Pair, raw_call
from tests.integration.cache.test_strings import (
    FAR_FUTURE_MS,
    FAR_FUTURE_S,
    Local,
    close_ints,
    command_table_matches,
    run,
)

KEY_COMMANDS = ["DEL", "UNLINK", "EXISTS", "TOUCH", "TYPE", "EXPIRE", "PEXPIRE", "EXPIREAT",
                "PEXPIREAT", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "PERSIST", "KEYS", "SCAN",
                "RENAME", "RENAMENX", "RANDOMKEY", "COPY", "OBJECT|ENCODING", "OBJECT|FREQ",
                "OBJECT|IDLETIME", "DBSIZE", "FLUSHDB", "FLUSHALL"]


def test_del_unlink_exists_touch(pair: Pair) -> None:
    run(pair,
        ("MSET", "a", "1", "b", "2", "c", "3"), ("HSET", "h", "f", "v"),
        ("EXISTS", "a"), ("EXISTS", "a", "a", "nope", "h"), ("TOUCH", "a", "b", "nope", "a"),
        ("DEL", "a", "a", "nope"), ("EXISTS", "a"), ("UNLINK", "b", "h", "h"),
        ("EXISTS", "b", "h"), ("DEL", "nope"), ("UNLINK", "nope"), ("DBSIZE",),
        ("DEL",), ("UNLINK",), ("EXISTS",), ("TOUCH",))


def test_type(pair: Pair) -> None:
    run(pair,
        ("SET", "s", "v"), ("HSET", "h", "f", "v"), ("TYPE", "s"), ("TYPE", "h"),
        ("TYPE", "nope"), ("TYPE",), ("TYPE", "a", "b"))


def test_expire_relative(pair: Pair) -> None:
    run(pair,
        ("SET", "k", "v"), ("EXPIRE", "k", "100"), ("TTL", "k"), ("PEXPIRE", "k", "200000"),
        ("TTL", "k"), ("EXPIRE", "nope", "100"), ("PEXPIRE", "nope", "100"),
        ("EXPIRE", "k", "0"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("PEXPIRE", "k", "-1"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("EXPIRE", "k", "-9223372036854775"), ("EXISTS", "k"),
        ("HSET", "h", "f", "v"), ("EXPIRE", "h", "100"), ("TTL", "h"), ("HGET", "h", "f"))


def test_expire_absolute_and_conditions(pair: Pair) -> None:
    later, earlier = str(FAR_FUTURE_S + 100), str(FAR_FUTURE_S)
    run(pair,
        ("SET", "k", "v"),
        ("EXPIREAT", "k", earlier, "XX"), ("EXPIREAT", "k", earlier, "GT"),
        ("EXPIREAT", "k", earlier, "LT"), ("EXPIRETIME", "k"),
        ("EXPIREAT", "k", later, "NX"), ("EXPIREAT", "k", later, "LT"),
        ("EXPIREAT", "k", later, "GT"), ("EXPIRETIME", "k"),
        ("EXPIREAT", "k", earlier, "GT"), ("EXPIREAT", "k", later, "GT"),
        ("EXPIREAT", "k", earlier, "xx", "lt"), ("EXPIRETIME", "k"),
        ("PEXPIREAT", "k", str(FAR_FUTURE_MS), "XX"), ("PEXPIRETIME", "k"), ("EXPIRETIME", "k"),
        ("PEXPIREAT", "k", str(FAR_FUTURE_MS), "GT"), ("PEXPIREAT", "k", str(FAR_FUTURE_MS), "LT"),
        ("EXPIRE", "k", "100", "NX"), ("EXPIRE", "k", "100", "GT"), ("PEXPIRE", "k", "100", "XX"),
        ("TTL", "k"),
        ("PERSIST", "k"), ("EXPIRE", "k", "100", "GT"), ("TTL", "k"),
        ("EXPIRE", "k", "100", "LT"), ("TTL", "k"), ("PERSIST", "k"),
        ("PEXPIREAT", "k", "9223372036854775807"), ("EXPIRETIME", "k"),
        ("EXPIREAT", "nope", earlier, "NX"),
        ("EXPIREAT", "k", "1", "XX"), ("EXISTS", "k"))


def test_pexpire_conditions(pair: Pair) -> None:
    far = str(FAR_FUTURE_MS)
    run(pair,
        # NX: only a key without a TTL gets one
        ("SET", "k", "v"), ("PEXPIRE", "k", "100000000", "NX"), ("TTL", "k"),
        ("PEXPIRE", "k", "5000000", "NX"), ("TTL", "k"), ("PEXPIRE", "nope", "1000", "NX"),
        # GT: no TTL counts as infinite, so GT never sets one on a persistent key
        ("SET", "g", "v"), ("PEXPIRE", "g", "100000000", "GT"), ("TTL", "g"),
        ("PEXPIRE", "g", "100000000"), ("PEXPIRE", "g", "200000000", "GT"), ("TTL", "g"),
        ("PEXPIRE", "g", "5000000", "GT"), ("TTL", "g"), ("PEXPIRE", "nope", "1000", "GT"),
        ("PEXPIREAT", "g", far), ("PEXPIRE", "g", "100000000", "gt"), ("PEXPIRETIME", "g"),
        # LT: any TTL is less than none
        ("SET", "l", "v"), ("PEXPIRE", "l", "200000000", "LT"), ("TTL", "l"),
        ("PEXPIRE", "l", "300000000", "LT"), ("TTL", "l"),
        ("PEXPIRE", "l", "100000000", "LT"), ("TTL", "l"), ("PEXPIRE", "nope", "1000", "LT"),
        ("PEXPIREAT", "l", far), ("PEXPIRE", "l", "100000000", "lt"), ("TTL", "l"),
        # a condition that holds with a time in the past deletes the key
        ("SET", "d", "v"), ("PEXPIRE", "d", "-1", "NX"), ("EXISTS", "d"),
        ("SET", "d", "v", "PX", "100000000"), ("PEXPIRE", "d", "0", "LT"), ("EXISTS", "d"),
        ("SET", "d", "v", "PX", "100000000"), ("PEXPIRE", "d", "0", "GT"), ("EXISTS", "d"),
        ("TTL", "d"))


def test_pexpireat_nx_and_expire_xx(pair: Pair) -> None:
    far, farther = str(FAR_FUTURE_MS), str(FAR_FUTURE_MS + 5000)
    run(pair,
        ("SET", "k", "v"), ("PEXPIREAT", "k", far, "NX"), ("PEXPIRETIME", "k"),
        ("EXPIRETIME", "k"), ("PEXPIREAT", "k", farther, "NX"), ("PEXPIRETIME", "k"),
        ("PEXPIREAT", "nope", far, "NX"), ("EXISTS", "nope"),
        ("SET", "old", "v"), ("PEXPIREAT", "old", "1", "NX"), ("EXISTS", "old"),
        # XX: only a key that has a TTL gets a new one
        ("SET", "p", "v"), ("EXPIRE", "p", "100000", "XX"), ("TTL", "p"), ("EXPIRETIME", "p"),
        ("EXPIRE", "nope", "100000", "XX"), ("EXISTS", "nope"),
        ("EXPIRE", "k", "100000", "XX"), ("TTL", "k"), ("EXPIRE", "k", "200000", "xx"),
        ("TTL", "k"), ("EXPIRE", "k", "0", "XX"), ("EXISTS", "k"),
        ("SET", "h", "v", "EX", "100"), ("EXPIRE", "h", "-5", "XX"), ("EXISTS", "h"))


def test_expire_errors(pair: Pair) -> None:
    run(pair,
        ("SET", "k", "v"),
        ("EXPIRE", "k", "100", "NX", "XX"), ("EXPIRE", "k", "100", "NX", "GT"),
        ("EXPIRE", "k", "100", "LT", "NX"), ("EXPIRE", "k", "100", "GT", "LT"),
        ("EXPIRE", "k", "100", "XX", "GT", "LT"), ("EXPIRE", "k", "100", "foo"),
        ("EXPIRE", "k", "100", b"fo\x00o"), ("EXPIRE", "k", "abc", "foo"),
        ("EXPIRE", "k", "100", "NX", "NX"), ("TTL", "k"),
        ("EXPIRE", "k", "abc"), ("EXPIRE", "nope", "abc"), ("EXPIRE", "k", "1.5"),
        ("EXPIRE", "k", "9223372036854776"), ("EXPIRE", "k", "-9223372036854776"),
        ("EXPIREAT", "k", "9223372036854776"), ("PEXPIRE", "k", "9223372036854775807"),
        ("PEXPIREAT", "k", "9223372036854775808"), ("TTL", "k"),
        ("EXPIRE", "k"), ("PEXPIRE",), ("EXPIREAT", "k"), ("PEXPIREAT", "k"))


def test_ttl_family(pair: Pair) -> None:
    run(pair,
        ("TTL", "nope"), ("PTTL", "nope"), ("EXPIRETIME", "nope"), ("PEXPIRETIME", "nope"),
        ("SET", "k", "v"), ("TTL", "k"), ("PTTL", "k"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
        ("PEXPIREAT", "k", str(FAR_FUTURE_MS)), ("PEXPIRETIME", "k"), ("EXPIRETIME", "k"),
        ("PEXPIREAT", "k", str(FAR_FUTURE_MS - 623)), ("EXPIRETIME", "k"),
        ("SET", "t", "v", "EX", "1000"), ("TTL", "t"),
        ("TTL",), ("PTTL", "a", "b"), ("EXPIRETIME",), ("PEXPIRETIME", "a", "b"))
    close_ints(pair, "PTTL", "t", tolerance=200)
    close_ints(pair, "PTTL", "k", tolerance=1000)


def test_ttl_runs_out(pair: Pair) -> None:
    run(pair, ("SET", "k", "v", "PX", "30"), ("HSET", "h", "f", "v"), ("PEXPIRE", "h", "30"))
    time.sleep(0.1)
    run(pair, ("EXISTS", "k", "h"), ("TTL", "k"), ("GET", "k"), ("HGETALL", "h"))


def test_persist(pair: Pair) -> None:
    run(pair,
        ("PERSIST", "nope"), ("SET", "k", "v"), ("PERSIST", "k"), ("EXPIRE", "k", "100"),
        ("PERSIST", "k"), ("TTL", "k"), ("PERSIST", "k"), ("PERSIST",), ("PERSIST", "a", "b"))


def test_keys(pair: Pair) -> None:
    run(pair, ("KEYS", "*"), ("MSET", "one", "1", "two", "2", "three", "3", "four", "4",
                              "", "empty", "a*b", "star", "[x]", "bracket"),
        ("HSET", "hash", "f", "v"))
    for pattern in ["*", "t*", "*o*", "?o*", "[ot]*", "[^o]*", "[a-t]??", "*e", "t[wh]*", "",
                    "a\\*b", "\\[x\\]", "[x]", "*[", "nomatch*", "h[a-z]sh", "[z-a]*", "T*"]:
        pair.check("KEYS", pattern, unordered=True)
    run(pair, ("KEYS",), ("KEYS", "a", "b"))


def test_keys_and_scan_with_a_huge_pattern_stay_bounded(pair: Pair) -> None:
    run(pair, *[("SET", f"key:{i}", "v") for i in range(200)])
    pattern = "a*" * 50_000 + "b"  # 100 KB
    started = time.monotonic()
    ours = pair.ours.execute_command("KEYS", pattern)
    _, found = pair.ours.execute_command("SCAN", "0", "MATCH", pattern, "COUNT", "1000")
    assert ours == [] and found == []
    assert time.monotonic() - started < 2.0
    pair.check("KEYS", "key:1*", unordered=True)


def scan_all(client: redis.Redis, *options: str) -> list[bytes]:
    found: list[bytes] = []
    cursor = b"0"
    for _ in range(10_000):
        cursor, keys = raw_call(client, "SCAN", cursor, *options)
        found.extend(keys)
        if cursor == b"0":
            return found
    raise AssertionError("SCAN did not finish")


def test_scan_returns_every_key(pair: Pair) -> None:
    names = [f"user:{i}" for i in range(300)] + [f"post:{i}" for i in range(200)]
    pipe = pair.ours.pipeline(transaction=False)
    for name in names:
        pipe.set(name, "v")
    pipe.hset("hash:1", "f", "v")
    pipe.execute()
    pair.theirs.mset({name: "v" for name in names})
    pair.theirs.hset("hash:1", "f", "v")
    for options in [(), ("COUNT", "7"), ("COUNT", "1000"), ("MATCH", "user:1*"),
                    ("MATCH", "post:*", "COUNT", "3"), ("TYPE", "hash"), ("TYPE", "STRING"),
                    ("TYPE", "zset"), ("match", "*", "count", "50", "type", "string")]:
        ours = scan_all(pair.ours, *options)
        theirs = scan_all(pair.theirs, *options)
        assert set(ours) == set(theirs), options


def test_scan_is_sound_while_keys_change(pair: Pair) -> None:
    client = pair.ours
    client.mset({f"k{i}": "v" for i in range(1000)})
    seen: set[bytes] = set()
    cursor = b"0"
    step = 0
    while True:
        cursor, keys = raw_call(client, "SCAN", cursor, "COUNT", "20")
        seen.update(keys)
        step += 1
        # delete some keys not yet necessarily seen and add new ones, between calls
        client.delete(f"k{step * 7 % 1000}")
        client.set(f"new{step}", "v")
        if cursor == b"0":
            break
    survivors = {f"k{i}".encode() for i in range(1000)} - {
        f"k{s * 7 % 1000}".encode() for s in range(1, step + 1)}
    assert survivors <= seen


def test_scan_errors(pair: Pair) -> None:
    run(pair,
        ("SET", "k", "v"),
        ("SCAN", ""), ("SCAN", "18446744073709551616"), ("SCAN", "0x10"), ("SCAN", " 0"),
        ("SCAN", "0 "), ("SCAN", "+"), ("SCAN", "-"), ("SCAN", "abc"), ("SCAN", "1.5"),
        ("SCAN", "0", "COUNT", "0"), ("SCAN", "0", "COUNT", "-1"), ("SCAN", "0", "COUNT", "abc"),
        ("SCAN", "0", "COUNT"), ("SCAN", "0", "MATCH"), ("SCAN", "0", "TYPE"),
        ("SCAN", "0", "foo", "bar"), ("SCAN", "0", "COUNT", "10", "x"),
        ("SCAN", "0", "TYPE", "foo"), ("SCAN", "0", "MATCH", "nomatch"), ("SCAN",))


def test_rename(pair: Pair) -> None:
    run(pair,
        ("RENAME", "nope", "x"), ("RENAME", "nope", "nope"), ("RENAMENX", "nope", "x"),
        ("SET", "a", "1", "EX", "100"), ("RENAME", "a", "b"), ("EXISTS", "a"), ("GET", "b"),
        ("TTL", "b"), ("RENAME", "b", "b"), ("GET", "b"), ("RENAMENX", "b", "b"),
        ("SET", "c", "3"), ("RENAME", "b", "c"), ("GET", "c"), ("TTL", "c"),
        ("HSET", "h", "f", "v"), ("RENAMENX", "h", "c"), ("RENAMENX", "h", "d"), ("HGETALL", "d"),
        ("TYPE", "h"), ("SET", "e", "5", "EX", "100"), ("RENAME", "d", "e"), ("TTL", "e"),
        ("TYPE", "e"), ("DBSIZE",),
        ("RENAME", "a"), ("RENAMENX", "a", "b", "c"))


def test_randomkey(pair: Pair) -> None:
    run(pair, ("RANDOMKEY",), ("RANDOMKEY", "x"))
    pair.ours.mset({"a": 1, "b": 2, "c": 3})
    assert {pair.ours.randomkey() for _ in range(60)} == {b"a", b"b", b"c"}


def test_copy(pair: Pair) -> None:
    run(pair,
        ("COPY", "nope", "x"), ("COPY", "nope", "nope"),
        ("SET", "k", "v", "EX", "100"), ("COPY", "k", "k"), ("COPY", "k", "c"), ("GET", "c"),
        ("TTL", "c"), ("COPY", "k", "c"), ("SET", "k", "w"), ("COPY", "k", "c", "REPLACE"),
        ("GET", "c"), ("TTL", "c"), ("COPY", "k", "c", "replace", "REPLACE", "db", "0"),
        ("HSET", "h", "f", "v"), ("COPY", "h", "h2"), ("HSET", "h2", "g", "w"), ("HGETALL", "h"),
        ("HGETALL", "h2"), ("COPY", "h", "k", "REPLACE"), ("TYPE", "k"),
        ("COPY", "k", "x", "DB", "16"), ("COPY", "k", "x", "DB", "-1"),
        ("COPY", "k", "x", "DB", "abc"), ("COPY", "k", "x", "DB", "4294967296"),
        ("COPY", "k", "x", "DB"), ("COPY", "k", "x", "REPLACE", "foo"), ("COPY", "k", "k", "foo"),
        ("COPY", "k", "x", "DB", "0"), ("TYPE", "x"), ("COPY", "k"))


def test_object(pair: Pair) -> None:
    run(pair,
        ("OBJECT", "ENCODING", "nope"), ("OBJECT", "FREQ", "nope"), ("OBJECT", "IDLETIME", "nope"),
        ("SET", "i", "12345"), ("SET", "big", "99999999999999999999"),
        ("SET", "min", "-9223372036854775808"), ("SET", "z", "-0"), ("SET", "lead", "0123"),
        ("SET", "e", "x" * 44), ("SET", "r", "x" * 45), ("HSET", "h", "f", "v"),
        ("HSET", "H", "f", "v" * 65),
        *[("OBJECT", "ENCODING", k) for k in ("i", "big", "min", "z", "lead", "e", "r", "h", "H")],
        ("OBJECT", "encoding", "i"), ("OBJECT", "FREQ", "i"),
        ("OBJECT", "foo", "k"), ("OBJECT", "ENCODING", "k", "x"), ("OBJECT", "ENCODING"),
        ("OBJECT",), ("OBJECT", "FREQ"))
    # idle seconds, read right after the SET: Redis' LRU clock ticks once a second, so either
    # server may already say 1 (compared exactly, this failed now and then)
    assert pair.ours.execute_command("OBJECT", "IDLETIME", "i") in (0, 1)
    assert pair.theirs.execute_command("OBJECT", "IDLETIME", "i") in (0, 1)
    ours = pair.ours.execute_command("OBJECT", "HELP")
    assert any(b"ENCODING" in line for line in ours)


def test_object_under_an_lfu_policy(pair: Pair) -> None:
    run(pair, ("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"))
    try:
        run(pair, ("SET", "k", "v"), ("OBJECT", "IDLETIME", "k"), ("OBJECT", "IDLETIME", "nope"),
            ("OBJECT", "FREQ", "nope"))
        assert isinstance(pair.ours.execute_command("OBJECT", "FREQ", "k"), int)
        # Redis 7: a new key starts at LFU_INIT_VAL (5); OBJECT FREQ does not count as an
        # access; the first read increments with probability 1 (the base is 0 at 5).
        run(pair, ("SET", "f", "v"), ("OBJECT", "FREQ", "f"), ("OBJECT", "FREQ", "f"),
            ("GET", "f"), ("OBJECT", "FREQ", "f"),
            ("HSET", "h", "a", "1"), ("OBJECT", "FREQ", "h"), ("HGET", "h", "a"),
            ("OBJECT", "FREQ", "h"))
    finally:
        run(pair, ("CONFIG", "SET", "maxmemory-policy", "noeviction"))


def test_dbsize_and_flush(pair: Pair) -> None:
    run(pair,
        ("DBSIZE",), ("MSET", "a", "1", "b", "2"), ("HSET", "h", "f", "v"), ("DBSIZE",),
        ("FLUSHDB",), ("DBSIZE",), ("SET", "a", "1"), ("FLUSHALL", "SYNC"), ("DBSIZE",),
        ("FLUSHALL", "ASYNC"), ("FLUSHDB", "async"), ("FLUSHALL", "foo"), ("FLUSHDB", "a", "b"),
        ("DBSIZE", "x"),
        ("MSET", "a", "1", "b", "2"), ("SADD", "s", "m"), ("FLUSHDB", "SYNC"), ("DBSIZE",),
        ("EXISTS", "a", "s"), ("FLUSHDB", "sync"), ("FLUSHDB", "SYNC", "ASYNC"),
        ("FLUSHDB", "SYNC", "x"), ("FLUSHDB", "foo"))


def test_watch_sees_ttl_and_rename_changes(pair: Pair) -> None:
    for change in (("EXPIRE", "w", "100"), ("RENAME", "other", "w"), ("PERSIST", "w"),
                   ("COPY", "other2", "w", "REPLACE")):
        run(pair, ("SET", "w", "1", "EX", "50"), ("SET", "other", "x"), ("SET", "other2", "y"),
            ("WATCH", "w"))
        pair.ours.execute_command(*change)
        pair.theirs.execute_command(*change)
        run(pair, ("MULTI",), ("GET", "w"), ("EXEC",))


def test_command_table(pair: Pair) -> None:
    command_table_matches(pair, KEY_COMMANDS)


# --------------------------------------------------------------------------- effects


def test_expire_effects_use_absolute_times() -> None:
    local = Local()
    now = local.clock.now_ms()
    local("SET", "k", "v")
    assert local.effects("EXPIRE", "k", "10") == [[b"PEXPIREAT", b"k", b"%d" % (now + 10_000)]]
    assert local.effects("PEXPIRE", "k", "10") == [[b"PEXPIREAT", b"k", b"%d" % (now + 10)]]
    assert local.effects("EXPIREAT", "k", "2000000000") == [
        [b"PEXPIREAT", b"k", b"2000000000000"]]
    assert local.effects("PEXPIREAT", "k", "2000000000001") == [
        [b"PEXPIREAT", b"k", b"2000000000001"]]
    assert local.effects("EXPIRE", "k", "10", "NX") == []
    assert local.effects("EXPIRE", "nope", "10") == []
    assert local.effects("PERSIST", "k") == [[b"PERSIST", b"k"]]
    assert local.effects("PERSIST", "k") == []
    assert local.effects("EXPIRE", "k", "0") == [[b"DEL", b"k"]]
    assert local("EXISTS", "k") == 0


def test_key_effects() -> None:
    local = Local()
    local("MSET", "a", "1", "b", "2")
    assert local.effects("DEL", "a", "nope", "a") == [[b"DEL", b"a"]]
    assert local.effects("UNLINK", "nope") == []
    assert local.effects("RENAME", "b", "c") == [[b"RENAME", b"b", b"c"]]
    assert local.effects("RENAME", "c", "c") == []
    local("SET", "d", "4")
    assert local.effects("RENAMENX", "c", "d") == []
    assert local.effects("RENAMENX", "c", "e") == [[b"RENAME", b"c", b"e"]]
    assert local.effects("COPY", "e", "f") == [[b"COPY", b"e", b"f"]]
    assert local.effects("COPY", "e", "f") == []
    assert local.effects("COPY", "e", "f", "DB", "0", "REPLACE") == [
        [b"COPY", b"e", b"f", b"REPLACE"]]
    assert local.effects("TOUCH", "e") == []


def test_ttl_changes_keep_memory_exact() -> None:
    local = Local()
    local("HSET", "h", "f", "v" * 100)
    local("SET", "s", "x" * 700)
    local("EXPIRE", "h", "100")
    local("PEXPIREAT", "s", "2000000000000")
    local("COPY", "h", "h2")
    local("RENAME", "s", "s2")
    local("PERSIST", "h")
    ks = local.state.dbs[0]
    total = sum(entry_size_check(k, e.value, e.expire_at != 0)
                for shard in ks.shards for k, e in shard.data.items())
    assert ks.stats.used_memory == total
