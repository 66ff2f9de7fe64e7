"""DUMP and RESTORE against redis-server 7.0: payloads travel both ways with the same content.

Every type in its small and large encodings is built with the same commands on both servers;
redis-server's DUMP restored into jobcached, and jobcached's DUMP restored into redis-server,
must read back the same through the type's own read commands. Where Redis' bytes do not
depend on hash-table order or on deleted stream entries, our DUMP must be byte-identical.
Corrupt payloads must get Redis' error and leave the server healthy.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobcached.cache.rdbformat import seal
from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair, raw_call
from tests.integration.cache.test_strings import Local, command_table_matches

_rng = random.Random(16)
_NOISE = bytes(_rng.randrange(256) for _ in range(5000))  # incompressible

#: key -> the commands that build it (the key is their first argument after the name)
DATA: dict[str, list[tuple[Any, ...]]] = {
    "s:small": [("SET", "s:small", "hello")],
    "s:int8": [("SET", "s:int8", "-7")],
    "s:int16": [("SET", "s:int16", "1234")],
    "s:int32": [("SET", "s:int32", "-2147483648")],
    "s:int64": [("SET", "s:int64", "12345678901234")],
    "s:notint": [("SET", "s:notint", "007")],
    "s:empty": [("SET", "s:empty", "")],
    "s:21": [("SET", "s:21", "abcabcabcabcabcabcabc")],
    "s:compressible": [("SET", "s:compressible", "redis " * 300)],
    "s:noise": [("SET", "s:noise", _NOISE)],
    "s:huge": [("SET", "s:huge", "y" * 40000)],  # past LZF_MAX_BYTES: written plain
    "l:small": [("RPUSH", "l:small", "a", "1", "-5", "300", "70000", "-9000000", "x" * 70,
                 "9999999999", "", "12345678901234567890")],
    "l:one": [("LPUSH", "l:one", "only")],
    "l:nodes": [("RPUSH", "l:nodes", *[f"element-{i:05d}-" + "z" * 20 for i in range(800)])],
    "l:big-element": [("RPUSH", "l:big-element", "a", "q" * 10000, "b")],
    "l:noise": [("RPUSH", "l:noise", _NOISE[:3000], _NOISE[3000:])],
    "set:intset": [("SADD", "set:intset", "3", "1", "-2", "100000")],
    "set:intset64": [("SADD", "set:intset64", "1", "9223372036854775807",
                      "-9223372036854775808")],
    "set:strings": [("SADD", "set:strings", "a", "b", "c", "1")],
    "set:big": [("SADD", "set:big", *range(600))],
    "h:small": [("HSET", "h:small", "f", "v", "n", "42", "neg", "-1", "e", "")],
    "h:long-value": [("HSET", "h:long-value", "f", "v" * 100, "g", "1")],
    "h:big": [("HSET", "h:big", *[x for i in range(600) for x in (f"f{i}", f"v{i}")])],
    "z:small": [("ZADD", "z:small", "1", "a", "2.5", "b", "-3", "c", "0", "d",
                 "1e300", "e", "-inf", "f", "inf", "g", "0.1", "h")],
    "z:big": [("ZADD", "z:big", *[x for i in range(200) for x in (str(i / 7), f"m{i}")])],
    "z:long-member": [("ZADD", "z:long-member", "1", "m" * 100, "2", "n")],
    "x:small": [("XADD", "x:small", "1-1", "f", "v", "n", "1"),
                ("XADD", "x:small", "1-2", "f", "w", "n", "2"),
                ("XADD", "x:small", "5-0", "other", "x")],
    "x:nodes": [("XADD", "x:nodes", f"{i + 1}-0", "field", f"value-{i}", "n", str(i))
                for i in range(250)],
    "x:empty": [("XADD", "x:empty", "1-1", "a", "b"), ("XDEL", "x:empty", "1-1")],
    "x:mkstream": [("XGROUP", "CREATE", "x:mkstream", "g", "$", "MKSTREAM")],
    "x:entries-read": [("XADD", "x:entries-read", "1-1", "a", "b"),
                       ("XGROUP", "CREATE", "x:entries-read", "g", "0", "ENTRIESREAD", "1")],
    "hll:sparse": [("PFADD", "hll:sparse", "a", "b", "c")],
    "hll:dense": [("PFADD", "hll:dense", *[f"e{i}" for i in range(3000)])],
}
#: keys whose DUMP depends on more than content: hash-table order, or deleted entries
NOT_BYTE_IDENTICAL = {"s:huge", "set:strings", "set:big", "h:long-value", "h:big", "x:empty",
                      "x:groups"}
GROUPS = [("XADD", "x:groups", "1-1", "a", "1"), ("XADD", "x:groups", "2-1", "a", "2"),
          ("XADD", "x:groups", "3-1", "b", "3"), ("XADD", "x:groups", "4-1", "a", "4"),
          ("XGROUP", "CREATE", "x:groups", "g1", "0"),
          ("XGROUP", "CREATE", "x:groups", "g0", "$"),
          ("XGROUP", "CREATECONSUMER", "x:groups", "g1", "idle"),
          ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "2", "STREAMS", "x:groups", ">"),
          ("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "1", "STREAMS", "x:groups", ">"),
          ("XACK", "x:groups", "g1", "1-1"), ("XDEL", "x:groups", "4-1")]
DATA["x:groups"] = GROUPS


def build(client: redis.Redis) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("FLUSHALL")
    for commands in DATA.values():
        for cmd in commands:
            pipe.execute_command(*cmd)
    pipe.execute()


def content(client: redis.Redis, key: str) -> Any:
    """Everything a key holds, through its type's read commands."""
    kind = client.type(key)
    if kind == b"string":
        return kind, client.get(key)
    if kind == b"list":
        return kind, client.lrange(key, 0, -1)
    if kind == b"set":
        return kind, sorted(client.smembers(key))
    if kind == b"hash":
        return kind, sorted(client.hgetall(key).items())
    if kind == b"zset":
        return kind, client.zrange(key, 0, -1, withscores=True)
    if kind == b"stream":
        info = raw_call(client, "XINFO", "STREAM", key, "FULL")
        fields = info if isinstance(info, dict) else dict(zip(info[::2], info[1::2],
                                                              strict=True))
        for shape in (b"radix-tree-keys", b"radix-tree-nodes"):
            fields.pop(shape)  # how Redis' tree happens to be split, not content
        return kind, fields, raw_call(client, "XRANGE", key, "-", "+")
    return kind, None


@pytest.fixture
def both(server: ServerProcess, redis_server: RedisServerProcess) -> Iterator[Pair]:
    p = Pair(server.client(), redis_server.client())
    build(p.ours)
    build(p.theirs)
    yield p
    p.ours.close()
    p.theirs.close()


def test_every_type_round_trips_both_ways(both: Pair) -> None:
    """redis-server's DUMP restored here, ours restored there: the same content; and our
    bytes are Redis' except where Redis' depend on its hash tables or deleted stream entries."""
    for key in DATA:
        theirs, ours = both.theirs.dump(key), both.ours.dump(key)
        assert theirs is not None and ours is not None, key
        assert raw_call(both.ours, "RESTORE", "copy:" + key, "0", theirs) == b"OK", key
        assert content(both.ours, "copy:" + key) == content(both.theirs, key), key
        assert raw_call(both.theirs, "RESTORE", "copy:" + key, "0", ours) == b"OK", key
        assert content(both.theirs, "copy:" + key) == content(both.ours, key), key
        if key != "x:groups":  # its PEL and consumers hold each server's own times
            assert content(both.ours, key) == content(both.theirs, key), key
        if key not in NOT_BYTE_IDENTICAL:
            assert ours == theirs, key


def test_legacy_encodings_from_older_payloads(server: ServerProcess) -> None:
    """Types Redis 7.0 still loads but no longer writes: ziplist / zipmap / intset blobs
    and plain lists, built by hand (they match src/ziplist.c and zipmap.c's layouts)."""
    client = server.client()
    ziplist = (b"\x13\x00\x00\x00\x0f\x00\x00\x00\x03\x00"  # zlbytes 19, zltail, 3 entries
               b"\x00\x01a" b"\x03\xf2" b"\x02\xfe\x85" b"\xff")  # "a", 1 (4-bit), -123 (int8)
    zipmap = b"\x01\x01k\x02\x01vv\x00\xff"  # k -> "vv" with one free byte
    cases = {
        b"\x01\x02\x01a\xc0\x07": (b"list", [b"a", b"7"]),  # RDB_TYPE_LIST
        b"\x0a\x13" + ziplist: (b"list", [b"a", b"1", b"-123"]),  # LIST_ZIPLIST
        b"\x0e\x01\x13" + ziplist: (b"list", [b"a", b"1", b"-123"]),  # LIST_QUICKLIST
        b"\x09\x09" + zipmap: (b"hash", [(b"k", b"vv")]),  # HASH_ZIPMAP
        b"\x03\x01\x01m\x031.5": (b"zset", [(b"m", 1.5)]),  # ZSET, text double
    }
    zipmap = b"\x01\x01k\x01\x00v\xff"
    cases[b"\x09\x07" + zipmap] = (b"hash", [(b"k", b"v")])
    for i, (fragment, expected) in enumerate(cases.items()):
        key = f"legacy{i}"
        assert client.execute_command("RESTORE", key, 0, seal(fragment)) == b"OK", fragment
        assert content(client, key) == expected, fragment
    client.close()


# ---------------------------------------------------------------------------------- errors


def test_command_table(pair: Pair) -> None:
    command_table_matches(pair, ["DUMP", "RESTORE", "MIGRATE"])


def test_errors_match_redis(pair: Pair) -> None:
    pair.check("SET", "src", "hello")
    payload = pair.theirs.execute_command("DUMP", "src")
    assert payload == pair.ours.execute_command("DUMP", "src")
    bad_crc = payload[:-1] + bytes([payload[-1] ^ 1])
    newer = payload[:-10] + b"\x0b\x00" + payload[-8:]
    for argv in [
        ("DUMP", "missing"), ("DUMP",), ("RESTORE", "k", "0"),
        ("RESTORE", "src", "0", payload), ("RESTORE", "k", "-1", payload),
        ("RESTORE", "k", "x", payload), ("RESTORE", "k", "0", bad_crc),
        ("RESTORE", "k", "0", newer), ("RESTORE", "k", "0", payload[:5]),
        ("RESTORE", "k", "0", ""), ("RESTORE", "k", "0", seal(b"\x00")),
        ("RESTORE", "k", "0", seal(b"\x07\x00")), ("RESTORE", "k", "0", seal(b"\xf5\x01a")),
        ("RESTORE", "k", "0", payload, "BOGUS"), ("RESTORE", "k", "0", payload, "IDLETIME"),
        ("RESTORE", "k", "0", payload, "IDLETIME", "-1"),
        ("RESTORE", "k", "0", payload, "IDLETIME", "x"),
        ("RESTORE", "k", "0", payload, "FREQ", "256"), ("RESTORE", "k", "0", payload, "FREQ", "-1"),
        ("RESTORE", "k", "0", payload, "IDLETIME", "1", "FREQ", "1"),
        ("RESTORE", "k", "0", payload, "FREQ", "1", "IDLETIME", "1"),
        ("RESTORE", "src", "-1", payload, "REPLACE"), ("GET", "src"),
        ("RESTORE", "src", "0", payload, "REPLACE"), ("GET", "src"),
        ("RESTORE", "k", "1", payload, "ABSTTL"), ("EXISTS", "k"),
        ("RESTORE", "src", "1", payload, "ABSTTL", "REPLACE"), ("EXISTS", "src"),
        ("RESTORE", "k", "0", payload, "REPLACE", "ABSTTL", "IDLETIME", "5"), ("GET", "k"),
        ("RESTORE", "t", "100000", payload), ("TTL", "t"),
        ("RESTORE", "t2", "99999999999999", payload, "ABSTTL"), ("PEXPIRETIME", "t2"),
    ]:
        pair.check(*argv)


def test_idletime_and_freq(pair: Pair) -> None:
    pair.check("SET", "src", "v")
    payload = pair.theirs.execute_command("DUMP", "src")
    pair.check("RESTORE", "idle", "0", payload, "IDLETIME", "1000")
    pair.check("OBJECT", "IDLETIME", "idle")
    pair.check("RESTORE", "idle2", "0", payload, "FREQ", "100")  # ignored under LRU
    for client in (pair.ours, pair.theirs):
        client.config_set("maxmemory-policy", "allkeys-lfu")
    try:
        pair.check("RESTORE", "f", "0", payload, "FREQ", "100")
        pair.check("OBJECT", "FREQ", "f")
    finally:
        for client in (pair.ours, pair.theirs):
            client.config_set("maxmemory-policy", "noeviction")


def test_restore_notifies_and_wakes_blocked_clients(server: ServerProcess) -> None:
    client = server.client()
    client.flushall()
    client.rpush("src", "a")
    payload = client.dump("src")
    client.config_set("notify-keyspace-events", "KEA")
    sub = client.pubsub()
    sub.psubscribe("__keyevent@0__:restore")
    sub.get_message(timeout=1)
    try:
        client.restore("dst", 0, payload)
        message = sub.get_message(timeout=2)
        assert message is not None and message["data"] == b"dst"
    finally:
        client.config_set("notify-keyspace-events", "")
        sub.close()
    assert client.lpop("dst") == b"a"
    client.close()


def test_restore_propagates_an_absolute_ttl_and_accounts_memory() -> None:
    local = Local()
    now = local.clock.now_ms()
    local("HSET", "h", "f", "v")
    local("RPUSH", "l", *[b"x" * 30 for _ in range(400)])
    local("XADD", "x", "1-1", "a", "b")
    local("XGROUP", "CREATE", "x", "g", "0")
    local("XREADGROUP", "GROUP", "g", "c", "STREAMS", "x", ">")
    for key in (b"h", b"l", b"x"):
        payload = local("DUMP", key)
        assert local.effects("RESTORE", key + b"2", "5000", payload) == [
            [b"RESTORE", key + b"2", b"%d" % (now + 5000), payload, b"ABSTTL"]]
        assert local.effects("RESTORE", key + b"3", "0", payload, "IDLETIME", "9") == [
            [b"RESTORE", key + b"3", b"0", payload, b"IDLETIME", b"9"]]
        assert local.effects("RESTORE", key, "1", payload, "REPLACE", "ABSTTL") == [
            [b"DEL", key]]
        local.memory_is_exact()


# ---------------------------------------------------------------------------------- fuzzing
_FUZZ_KEYS = ["s:compressible", "l:small", "l:nodes", "set:intset", "set:strings", "h:small",
              "h:big", "z:small", "z:big", "x:small", "x:groups"]
_EXPECTED_ERRORS = {"Bad data format", "DUMP payload version or checksum are wrong"}


@pytest.fixture(scope="module")
def payloads(redis_server: RedisServerProcess) -> dict[str, bytes]:
    client = redis_server.client()
    build(client)
    out = {key: client.dump(key) for key in _FUZZ_KEYS}
    client.close()
    return out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupt_payloads_are_refused_and_the_server_stays_healthy(
        server: ServerProcess, payloads: dict[str, bytes], data: st.DataObject) -> None:
    """Random byte flips, truncations and insertions with a recomputed checksum reach the
    parser: the reply is OK (a corruption that still parses) or Redis' error, never a crash;
    without the recomputed checksum it is always the checksum error."""
    key = data.draw(st.sampled_from(_FUZZ_KEYS))
    fragment = bytearray(payloads[key][:-10])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(fragment) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            fragment[pos] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del fragment[pos:pos + data.draw(st.integers(1, 8))]
        else:
            fragment[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        if not fragment:
            fragment.append(0)
    client = server.client()
    try:
        for payload, checksummed in ((seal(bytes(fragment)), True),
                                     (bytes(fragment) + payloads[key][-10:], False)):
            reply = raw_call(client, "RESTORE", "fuzz", "0", payload, "REPLACE")
            if checksummed:
                assert reply == b"OK" or reply[1] in _EXPECTED_ERRORS, reply
            elif bytes(fragment) != payloads[key][:-10]:
                assert reply == ("error", "DUMP payload version or checksum are wrong")
        assert client.ping()
        client.delete("fuzz")
    finally:
        client.close()
