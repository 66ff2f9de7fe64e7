"""Keyspace notifications, differential: the same scripted commands run on jobcached and on
redis-server 7.0 while a subscriber on `__key*__:*` captures what each publishes; the two
captures must be identical, in order, under several `notify-keyspace-events` settings and
under RESP2 and RESP3. Also: CONFIG SET/GET canonicalises the flag string as Redis does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair, raw_call

END_CHANNEL = b"end-of-script"
READ_TIMEOUT_SECONDS = 5.0

#: ~170 commands of every family (strings, keys, hashes, lists, sets, sorted sets, streams,
#: bitmaps, HyperLogLog) that each change keys the way one Redis event name reports it (and
#: some that change nothing, which must publish nothing). `sleep` lets a PX 50 key (a stream,
#: later a string) expire before a read (50 ms, not 1: on a loaded machine SET itself may
#: straddle a millisecond); one key at a time, as Redis' active expiry takes keys at random.
SCRIPT: list[tuple[Any, ...]] = [
    ("SET", "s", "1"), ("SET", "s", "2", "EX", "100"), ("SETEX", "s2", "100", "v"),
    ("PSETEX", "s3", "100000", "v"), ("SETNX", "s", "x"), ("SETNX", "s4", "x"),
    ("GETSET", "s4", "y"), ("MSET", "m1", "a", "m2", "b"), ("MSETNX", "m1", "a", "m3", "c"),
    ("APPEND", "s", "tail"), ("APPEND", "new-append", "x"), ("SETRANGE", "s", "2", "zz"),
    ("INCR", "n"), ("INCRBY", "n", "5"), ("DECR", "n"), ("DECRBY", "n", "2"),
    ("INCRBYFLOAT", "n", "1.5"), ("GETEX", "s", "PX", "50000"), ("GETEX", "s", "PERSIST"),
    ("GETDEL", "m2"), ("GET", "missing"), ("EXPIRE", "m1", "100"), ("PEXPIRE", "m1", "0"),
    ("PERSIST", "s"), ("PERSIST", "s"), ("EXPIREAT", "s3", "1"),
    ("RENAME", "s", "s-renamed"), ("RENAMENX", "s-renamed", "s4"),
    ("RENAMENX", "s-renamed", "s5"), ("RENAME", "s5", "s5"),
    ("COPY", "s5", "s6"), ("COPY", "s5", "s6", "REPLACE"), ("COPY", "s5", "s5", "DB", "1"),
    ("MOVE", "s6", "2"), ("DEL", "s5", "nothing", "s4"), ("UNLINK", "n"),
    ("HSET", "h", "a", "1", "b", "2"), ("HSETNX", "h", "a", "x"), ("HSETNX", "h", "c", "3"),
    ("HMSET", "h", "d", "4"), ("HINCRBY", "h", "a", "2"), ("HINCRBYFLOAT", "h", "b", "0.5"),
    ("HDEL", "h", "a", "zz"), ("HDEL", "h", "b", "c", "d"),
    ("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPUSHX", "l", "d"), ("RPUSHX", "nol", "x"),
    ("LINSERT", "l", "BEFORE", "c", "x"), ("LSET", "l", "0", "z"), ("LREM", "l", "0", "x"),
    ("LTRIM", "l", "0", "-1"), ("LTRIM", "l", "0", "1"), ("LPOP", "l"), ("RPOP", "l"),
    ("RPUSH", "l", "a", "b", "c"), ("LMOVE", "l", "l2", "LEFT", "RIGHT"),
    ("RPOPLPUSH", "l", "l2"), ("LMOVE", "l", "l2", "RIGHT", "LEFT"), ("LPOP", "l2", "5"),
    ("BLPOP", "nol", "l2", "0.01"),
    ("SADD", "st", "a", "b", "c", "d"), ("SADD", "st", "a"), ("SREM", "st", "a", "x"),
    ("SMOVE", "st", "st2", "b"), ("SMOVE", "st", "st", "c"), ("SPOP", "st"),
    ("SADD", "st3", "x", "y"), ("SINTERSTORE", "si", "st2", "st2"),
    ("SUNIONSTORE", "su", "st2", "st3"), ("SDIFFSTORE", "su", "st2", "st2"),
    ("SPOP", "st3", "5"),
    ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"), ("ZADD", "z", "INCR", "5", "a"),
    ("ZINCRBY", "z", "1", "b"), ("ZADD", "z", "XX", "1", "nope"), ("ZREM", "z", "d", "x"),
    ("ZREMRANGEBYSCORE", "z", "0", "3"), ("ZADD", "z", "1", "p", "2", "q"),
    ("ZREMRANGEBYRANK", "z", "0", "0"), ("ZREMRANGEBYLEX", "z", "-", "+"),
    ("ZADD", "z", "1", "p", "2", "q"), ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "3"),
    ("BZPOPMIN", "z", "0.01"),
    ("ZADD", "za", "1", "a", "2", "b"), ("SADD", "sb", "b", "c"),
    ("ZUNIONSTORE", "zu", "2", "za", "sb"), ("ZINTERSTORE", "zi", "2", "za", "sb"),
    ("ZDIFFSTORE", "zd", "2", "za", "sb"), ("ZINTERSTORE", "zi", "2", "za", "nothing"),
    ("ZDIFFSTORE", "zd", "2", "za", "za"), ("ZUNIONSTORE", "nothing2", "1", "nothing"),
    ("SET", "ow", "v"), ("ZINTERSTORE", "ow", "1", "za"),
    ("ZRANGESTORE", "zr", "zu", "0", "1"), ("ZRANGESTORE", "zr", "zu", "5", "6"),
    ("ZMPOP", "1", "zu", "MIN", "COUNT", "2"), ("ZMPOP", "2", "nothing", "zu", "MAX", "COUNT", "5"),
    ("BZMPOP", "0.01", "1", "za", "MIN"), ("ZRANDMEMBER", "za", "2"), ("ZUNION", "1", "za"),
    ("RPUSH", "lm", "a", "b", "c"), ("LMPOP", "1", "lm", "LEFT"),
    ("LMPOP", "2", "nothing", "lm", "RIGHT", "COUNT", "5"), ("BLMPOP", "0.01", "1", "lm", "LEFT"),
    ("LCS", "ow", "nothing"),
    ("HGET", "nohash", "f"), ("EXISTS", "nothing"),
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
    ("GEOADD", "g", "NX", "1", "2", "Palermo"),
    ("GEOSEARCHSTORE", "gs", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gr"),
    ("GEORADIUSBYMEMBER", "g", "Palermo", "1", "m", "STOREDIST", "gr"),
    ("GEOSEARCHSTORE", "gs", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m"),
    ("GEOSEARCH", "nog", "FROMMEMBER", "x", "BYRADIUS", "1", "m"),
    ("RPUSH", "sl", "3", "1", "2"), ("SORT", "sl", "STORE", "sorted"),
    ("SORT", "sl", "BY", "w_*", "GET", "#", "GET", "w_*"), ("SORT", "nol", "STORE", "sorted"),
    ("XADD", "x", "1-1", "f", "v"), ("XADD", "x", "*", "f", "v", "g", "w"),
    ("XADD", "x", "MAXLEN", "1", "*", "f", "v"), ("XADD", "x", "MAXLEN", "~", "1", "*", "f", "v"),
    ("XADD", "nox", "NOMKSTREAM", "*", "a", "b"), ("XTRIM", "x", "MAXLEN", "0"),
    ("XTRIM", "x", "MAXLEN", "0"), ("XADD", "x", "5-1", "a", "b"), ("XADD", "x", "6-1", "a", "b"),
    ("XDEL", "x", "5-1", "9-9"), ("XDEL", "x", "9-9"), ("XGROUP", "CREATE", "x", "g", "0"),
    ("XGROUP", "CREATE", "x", "g", "0"), ("XGROUP", "CREATE", "x2", "g", "$", "MKSTREAM"),
    ("XGROUP", "CREATECONSUMER", "x", "g", "c"), ("XGROUP", "CREATECONSUMER", "x", "g", "c"),
    ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "x", ">"),
    ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "x", ">"),
    ("XREADGROUP", "GROUP", "g", "c4", "STREAMS", "x", "0"), ("XACK", "x", "g", "6-1"),
    ("XADD", "x", "7-1", "a", "b"), ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "x", ">"),
    ("XCLAIM", "x", "g", "c5", "0", "7-1"), ("XCLAIM", "x", "g", "c6", "999999999", "7-1"),
    ("XAUTOCLAIM", "x", "g", "c7", "0", "0"), ("XAUTOCLAIM", "x", "g", "c8", "0", "9-0"),
    ("XCLAIM", "x", "g", "c9", "0", "6-1", "FORCE"), ("XGROUP", "SETID", "x", "g", "0"),
    ("XGROUP", "DELCONSUMER", "x", "g", "c"), ("XGROUP", "DELCONSUMER", "x", "g", "nobody"),
    ("XSETID", "x", "99-0"), ("XGROUP", "DESTROY", "x", "g"), ("XGROUP", "DESTROY", "x", "g"),
    ("XTRIM", "x", "MINID", "100"), ("XREAD", "STREAMS", "x", "0"), ("RENAME", "x", "xr"),
    ("COPY", "xr", "xc"), ("MOVE", "xc", "1"), ("EXPIRE", "xr", "100"), ("PERSIST", "xr"),
    ("PEXPIRE", "xr", "0"), ("DEL", "x2"), ("XADD", "xs", "*", "a", "b"), ("PEXPIRE", "xs", "50"),
    ("sleep",), ("XLEN", "xs"),
    ("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "1"), ("SETBIT", "b", "200", "0"),
    ("SETBIT", "b2", "100", "0"), ("BITOP", "AND", "bd", "b", "b2"),
    ("BITOP", "OR", "bd", "nokey", "nokey2"), ("BITOP", "OR", "bd2", "nokey"),
    ("BITOP", "NOT", "bn", "b"), ("BITFIELD", "bf", "SET", "u8", "0", "255"),
    ("BITFIELD", "bf", "SET", "u8", "0", "255"), ("BITFIELD", "bf", "GET", "u8", "0"),
    ("BITFIELD", "bf", "INCRBY", "u8", "0", "1", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300"),
    ("BITFIELD", "bf3", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300"),
    ("BITFIELD", "bf", "SET", "u8", "100", "0"), ("BITFIELD_RO", "bf", "GET", "u8", "0"),
    ("PFADD", "h", "a", "b"), ("PFADD", "h", "a"), ("PFADD", "h2"), ("PFADD", "h2"),
    ("PFADD", "h3", "z"), ("PFCOUNT", "h", "h3"), ("PFCOUNT", "h"), ("PFMERGE", "hm", "h", "h3"),
    ("PFMERGE", "hm2"), ("PFMERGE", "h"), ("PFADD", "new-append", "a"),
    ("SET", "short", "v", "PX", "50"), ("sleep",), ("GET", "short"),
    ("SELECT", "1"), ("SET", "in-db1", "v"), ("DEL", "s5"), ("SWAPDB", "1", "2"),
    ("FLUSHDB",), ("SELECT", "0"), ("FLUSHALL",),
]


def capture(client: redis.Redis, flags: str, protocol: int) -> list[tuple[bytes, bytes]]:
    """Run SCRIPT on `client`'s server with `flags` set; what `__key*__:*` received."""
    client.config_set("notify-keyspace-events", flags)
    listener = client.pubsub()
    listener.psubscribe("__key*__:*")
    listener.subscribe(END_CHANNEL)
    for _ in range(2):
        listener.get_message(timeout=READ_TIMEOUT_SECONDS)  # the two confirmations
    for argv in SCRIPT:
        if argv == ("sleep",):
            time.sleep(0.1)
        else:
            raw_call(client, *argv)
    client.publish(END_CHANNEL, "done")
    events: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        message = listener.get_message(timeout=READ_TIMEOUT_SECONDS)
        if message is None:
            continue
        if message["channel"] == END_CHANNEL:
            break
        events.append((message["channel"], message["data"]))
    else:
        raise AssertionError(f"no end marker under protocol {protocol}")
    listener.close()
    client.config_set("notify-keyspace-events", "")
    return events


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def clients(request: pytest.FixtureRequest, server: ServerProcess,
            redis_server: RedisServerProcess) -> Iterator[tuple[redis.Redis, redis.Redis, int]]:
    ours = server.client(protocol=request.param, single_connection_client=True)
    theirs = redis_server.client(protocol=request.param, single_connection_client=True)
    for client in (ours, theirs):
        client.flushall()
    yield ours, theirs, request.param
    for client in (ours, theirs):
        client.config_set("notify-keyspace-events", "")
        client.close()


@pytest.mark.parametrize("flags", ["KEA", "Kg$", "Elshz", "KEAnm", "Exe", "Kt", "AKEn", "E$t"])
def test_scripted_commands_publish_what_redis_publishes(
        clients: tuple[redis.Redis, redis.Redis, int], flags: str) -> None:
    ours, theirs, protocol = clients
    expected = capture(theirs, flags, protocol)
    got = capture(ours, flags, protocol)
    if flags in ("KEA", "KEAnm"):
        assert len(expected) >= 250  # the script really exercises the events
    assert got == expected


@pytest.mark.parametrize("flags", ["KEA", "AKE", "Elg", "gsn$lhzxetdKEm", "AKEn", "nK",
                                   "x", "", "AKEm", "Q", "KEAq"])
def test_config_set_canonicalises_the_flag_string(pair: Pair, flags: str) -> None:
    pair.check("CONFIG", "SET", "notify-keyspace-events", flags)
    pair.check("CONFIG", "GET", "notify-keyspace-events")
    pair.check("CONFIG", "SET", "notify-keyspace-events", "")
