"""Random command sequences across all cache types, sent to redis-server and to jobcached.

Hypothesis draws sequences over a handful of keys, so types collide (WRONGTYPE), options
combine, and arguments are sometimes malformed (errors must match too). Every reply must be
identical. The allow-list of known differences: commands whose replies are random or depend
on timing or on internal encodings are left out of the generator on purpose — RANDOMKEY,
SPOP/SRANDMEMBER/HRANDFIELD without a deterministic form, SCAN cursors, TTL/PTTL readings,
OBJECT ENCODING — and replies that are unordered by contract (KEYS, SMEMBERS, set algebra) are
compared as multisets.

Two runs of the same property. The default one (`make test`, CI) is reproducible and quick:
derandomized (the same sequences every run, seeded from the test), no example database (a
failure saved on one machine cannot change what another runs), a per-example deadline, and no
shrinking: a failure reports the whole failing sequence and the first command whose replies
differ, instead of spending minutes minimizing it. The `fuzz` one (`make fuzz`) draws fresh
sequences, many more of them, keeps failures in the local example database and shrinks them.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from jobcached.cache.rdbformat import seal
from jobcached.cache.rdbvalue import dump_value
from jobcached.cache.stream import Stream, make_id
from jobcached.cache.zset import ZSet
from tests.integration.cache.differential import Pair

KEYS = st.sampled_from([b"k1", b"k2", b"k3", b"{t}a", b"{t}b"])
FIELDS = st.sampled_from([b"f1", b"f2", b"f3"])
VALUES = st.sampled_from([b"", b"v", b"10", b"-3", b"3.5", b"abc", b"9223372036854775807",
                          b"1e3", b"inf", b"nan", b" 1"])
INTS = st.sampled_from([b"0", b"1", b"-1", b"2", b"5", b"-100", b"x", b"1.5",
                        b"9223372036854775807"])
SCORES = st.sampled_from([b"0", b"1", b"-1.5", b"2.25", b"+inf", b"-inf", b"(1", b"nan", b"x"])
LEX = st.sampled_from([b"-", b"+", b"[", b"(", b"[a", b"(b", b"[v", b"(v", b"c"])
BIT_OFFSETS = st.sampled_from([b"0", b"7", b"13", b"100", b"-1", b"x", b"#1", b"4294967296"])
FIELD_TYPES = st.sampled_from([b"u1", b"i8", b"u8", b"i16", b"u63", b"i64", b"u64", b"x"])
FIELD_OPS = st.lists(st.one_of(
    st.tuples(st.just(b"GET"), FIELD_TYPES, BIT_OFFSETS),
    st.tuples(st.sampled_from([b"SET", b"INCRBY"]), FIELD_TYPES, BIT_OFFSETS, INTS),
    st.tuples(st.just(b"OVERFLOW"), st.sampled_from([b"WRAP", b"SAT", b"FAIL"]))),
    min_size=1, max_size=3).map(lambda ops: [arg for op in ops for arg in op])
XIDS = st.sampled_from([b"1-0", b"1-1", b"2", b"3-0", b"5-*", b"0-0", b"-", b"+", b"(1", b"x",
                        b"7-2", b"$", b">"])
GROUPS = st.sampled_from([b"g1", b"g2"])
CONSUMERS = st.sampled_from([b"c1", b"c2"])
TRIMS = st.sampled_from([[], [b"MAXLEN", b"1"], [b"MAXLEN", b"~", b"0"], [b"MINID", b"2"],
                         [b"MAXLEN", b"=", b"x"], [b"MINID", b"~", b"3", b"LIMIT", b"1"]])
DBS = st.sampled_from([b"0", b"1", b"2", b"16", b"-1", b"x"])
LONLATS = st.sampled_from([[b"13.36", b"38.11"], [b"15.08", b"37.5"], [b"0", b"0"],
                           [b"-180", b"85.05112878"], [b"179.9", b"-0.1"], [b"181", b"0"],
                           [b"x", b"1"]])
GEO_AREAS = st.sampled_from([[b"BYRADIUS", b"200", b"km"], [b"BYRADIUS", b"0", b"m"],
                             [b"BYBOX", b"400", b"300", b"km"], [b"BYRADIUS", b"-1", b"mi"],
                             [b"BYBOX", b"1", b"1", b"yd"]])
GEO_OPTIONS = st.lists(st.sampled_from(
    [[b"ASC"], [b"DESC"], [b"WITHDIST"], [b"WITHCOORD"], [b"WITHHASH"], [b"COUNT", b"2"],
     [b"COUNT", b"1", b"ANY"], [b"COUNT", b"0"]]), max_size=3).map(
    lambda opts: [arg for o in opts for arg in o])
#: SORT options (no ALPHA with BY: equal weights leave sets in hash order, unspecified)
SORT_OPTIONS = st.lists(st.sampled_from(
    [[b"DESC"], [b"ALPHA"], [b"LIMIT", b"1", b"2"], [b"LIMIT", b"0", b"-1"], [b"GET", b"#"],
     [b"GET", b"k*"], [b"GET", b"k*->f1"], [b"BY", b"k*"], [b"BY", b"{t}*->f2"]]),
    max_size=3).map(lambda opts: [arg for o in opts for arg in o]).filter(
    lambda args: not (b"ALPHA" in args and b"BY" in args))
LIMIT = st.tuples(st.sampled_from([b"0", b"1", b"-1"]), st.sampled_from([b"1", b"2", b"-1"]))
NUMKEYS = st.sampled_from([b"2", b"2", b"1", b"0", b"-1", b"3", b"x"])
WEIGHTS = st.sampled_from([[], [b"WEIGHTS", b"2", b"-1"], [b"WEIGHTS", b"inf", b"0"],
                           [b"WEIGHTS", b"1"], [b"WEIGHTS", b"-inf", b"nan"]])
AGGREGATES = st.sampled_from([[], [b"AGGREGATE", b"MIN"], [b"AGGREGATE", b"max"],
                              [b"AGGREGATE", b"SUM"], [b"AGGREGATE", b"x"]])
POP_COUNTS = st.sampled_from([[], [b"COUNT", b"2"], [b"COUNT", b"0"], [b"COUNT", b"100"]])



def _stream_value() -> Stream:
    stream = Stream()
    stream.add(make_id(1, 1), (b"f1", b"v"))
    return stream


#: DUMP payloads of one small value of each type (byte-identical to redis-server's), and a
#: corrupt one: RESTORE them (DUMP itself is not compared: hash-table orders differ)
PAYLOADS = st.sampled_from([
    seal(dump_value(value)) for value in (
        b"v", b"10", deque([b"a", b"10"]), {b"1", b"2"}, {b"f1": b"v"}, ZSet({b"a": 1.5}),
        _stream_value())] + [seal(b"\x00\x05ab")])
EXAMPLES = 50  # sequences per protocol run (Hypothesis runs all of them: the space is vast)
MIN_COMMANDS = 40  # per sequence, so each run sends at least 50 x 40 = 2,000 commands
#: One sequence takes ~40 ms on an idle machine; the margin absorbs a loaded CI runner, and
#: the deadline still stops a hung reply long before pytest's own timeout.
EXAMPLE_DEADLINE = timedelta(seconds=10)
FUZZ_EXAMPLES = 2000  # `make fuzz`: 40x the default run, several minutes per protocol

UNORDERED = {b"KEYS", b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF", b"HKEYS", b"HVALS",
             b"HGETALL"}


def cmd(name: str, *parts: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    return st.tuples(*parts).map(lambda args: [name.encode(), *args])


def opt(*choices: bytes) -> st.SearchStrategy[list[bytes]]:
    return st.lists(st.sampled_from(choices), max_size=2)


COMMANDS = st.one_of(
    # strings
    cmd("SET", KEYS, VALUES), cmd("GET", KEYS), cmd("APPEND", KEYS, VALUES),
    cmd("INCR", KEYS), cmd("INCRBY", KEYS, INTS), cmd("DECRBY", KEYS, INTS),
    cmd("INCRBYFLOAT", KEYS, VALUES), cmd("STRLEN", KEYS), cmd("GETRANGE", KEYS, INTS, INTS),
    cmd("SETRANGE", KEYS, st.sampled_from([b"0", b"3", b"-1"]), VALUES), cmd("GETDEL", KEYS),
    cmd("SETNX", KEYS, VALUES), cmd("GETSET", KEYS, VALUES), cmd("MGET", KEYS, KEYS),
    cmd("MSET", KEYS, VALUES, KEYS, VALUES),
    st.tuples(KEYS, VALUES, opt(b"NX", b"XX", b"GET", b"KEEPTTL")).map(
        lambda t: [b"SET", t[0], t[1], *t[2]]),
    # keys
    cmd("DEL", KEYS, KEYS), cmd("EXISTS", KEYS, KEYS), cmd("TYPE", KEYS),
    cmd("EXPIRE", KEYS, st.sampled_from([b"100000", b"-1", b"0", b"x"])), cmd("PERSIST", KEYS),
    cmd("RENAME", KEYS, KEYS), cmd("RENAMENX", KEYS, KEYS), cmd("COPY", KEYS, KEYS),
    cmd("TOUCH", KEYS), cmd("UNLINK", KEYS), st.just([b"KEYS", b"*"]), st.just([b"DBSIZE"]),
    st.tuples(KEYS, st.sampled_from([b"0", b"100000", b"-1"]), PAYLOADS,
              opt(b"REPLACE", b"ABSTTL")).map(lambda t: [b"RESTORE", t[0], t[1], t[2], *t[3]]),
    # hashes
    cmd("HSET", KEYS, FIELDS, VALUES), cmd("HGET", KEYS, FIELDS), cmd("HDEL", KEYS, FIELDS),
    cmd("HINCRBY", KEYS, FIELDS, INTS), cmd("HINCRBYFLOAT", KEYS, FIELDS, VALUES),
    cmd("HGETALL", KEYS), cmd("HLEN", KEYS), cmd("HEXISTS", KEYS, FIELDS),
    cmd("HSETNX", KEYS, FIELDS, VALUES), cmd("HMGET", KEYS, FIELDS, FIELDS),
    cmd("HSTRLEN", KEYS, FIELDS), cmd("HKEYS", KEYS), cmd("HVALS", KEYS),
    # lists
    cmd("LPUSH", KEYS, VALUES, VALUES), cmd("RPUSH", KEYS, VALUES), cmd("LPOP", KEYS),
    cmd("RPOP", KEYS, st.sampled_from([b"1", b"3", b"0", b"-1"])), cmd("LLEN", KEYS),
    cmd("LRANGE", KEYS, INTS, INTS), cmd("LINDEX", KEYS, INTS), cmd("LSET", KEYS, INTS, VALUES),
    cmd("LREM", KEYS, INTS, VALUES), cmd("LTRIM", KEYS, INTS, INTS),
    cmd("LINSERT", KEYS, st.sampled_from([b"BEFORE", b"AFTER", b"X"]), VALUES, VALUES),
    cmd("LPOS", KEYS, VALUES), cmd("LMOVE", KEYS, KEYS, st.sampled_from([b"LEFT", b"RIGHT"]),
                                   st.sampled_from([b"LEFT", b"RIGHT"])),
    cmd("LPUSHX", KEYS, VALUES),
    # sets
    cmd("SADD", KEYS, VALUES, VALUES), cmd("SREM", KEYS, VALUES), cmd("SCARD", KEYS),
    cmd("SISMEMBER", KEYS, VALUES), cmd("SMEMBERS", KEYS), cmd("SINTER", KEYS, KEYS),
    cmd("SUNION", KEYS, KEYS), cmd("SDIFF", KEYS, KEYS), cmd("SMOVE", KEYS, KEYS, VALUES),
    cmd("SINTERSTORE", KEYS, KEYS, KEYS), cmd("SMISMEMBER", KEYS, VALUES, VALUES),
    cmd("SINTERCARD", st.just(b"2"), KEYS, KEYS),
    # sorted sets
    cmd("ZADD", KEYS, SCORES, VALUES),
    st.tuples(KEYS, opt(b"NX", b"XX", b"GT", b"LT", b"CH"), SCORES, VALUES).map(
        lambda t: [b"ZADD", t[0], *t[1], t[2], t[3]]),
    cmd("ZINCRBY", KEYS, SCORES, VALUES), cmd("ZSCORE", KEYS, VALUES), cmd("ZCARD", KEYS),
    cmd("ZREM", KEYS, VALUES), cmd("ZRANK", KEYS, VALUES), cmd("ZCOUNT", KEYS, SCORES, SCORES),
    cmd("ZRANGE", KEYS, INTS, INTS), cmd("ZRANGEBYSCORE", KEYS, SCORES, SCORES),
    cmd("ZRANGEBYLEX", KEYS, LEX, LEX), cmd("ZPOPMIN", KEYS), cmd("ZMSCORE", KEYS, VALUES),
    cmd("ZREVRANGEBYLEX", KEYS, LEX, LEX), cmd("ZLEXCOUNT", KEYS, LEX, LEX),
    cmd("ZREMRANGEBYLEX", KEYS, LEX, LEX),
    st.tuples(KEYS, LEX, LEX, st.sampled_from([[], [b"REV"]]), LIMIT).map(
        lambda t: [b"ZRANGE", t[0], t[1], t[2], b"BYLEX", *t[3], b"LIMIT", *t[4]]),
    st.tuples(KEYS, INTS, INTS).map(lambda t: [b"ZRANGE", t[0], t[1], t[2], b"WITHSCORES"]),
    cmd("ZREMRANGEBYSCORE", KEYS, SCORES, SCORES),
    # sorted-set algebra, stored ranges, multi-key pops (blocking ones time out at once), LCS
    st.tuples(st.sampled_from([b"ZUNION", b"ZINTER", b"ZDIFF"]), NUMKEYS, KEYS, KEYS, WEIGHTS,
              AGGREGATES, opt(b"WITHSCORES")).map(
        lambda t: [t[0], t[1], t[2], t[3], *t[4], *t[5], *t[6]]),
    st.tuples(st.sampled_from([b"ZUNIONSTORE", b"ZINTERSTORE", b"ZDIFFSTORE"]), KEYS, NUMKEYS,
              KEYS, KEYS, WEIGHTS, AGGREGATES).map(
        lambda t: [t[0], t[1], t[2], t[3], t[4], *t[5], *t[6]]),
    cmd("ZINTERCARD", NUMKEYS, KEYS, KEYS, st.just(b"LIMIT"), INTS),
    st.tuples(KEYS, KEYS, INTS, INTS).map(lambda t: [b"ZRANGESTORE", *t]),
    st.tuples(KEYS, KEYS, SCORES, SCORES, st.sampled_from([[], [b"REV"]]), LIMIT).map(
        lambda t: [b"ZRANGESTORE", t[0], t[1], t[2], t[3], b"BYSCORE", *t[4], b"LIMIT", *t[5]]),
    st.tuples(NUMKEYS, KEYS, KEYS, st.sampled_from([b"MIN", b"MAX", b"LEFT"]), POP_COUNTS).map(
        lambda t: [b"ZMPOP", t[0], t[1], t[2], t[3], *t[4]]),
    st.tuples(NUMKEYS, KEYS, KEYS, st.sampled_from([b"LEFT", b"RIGHT", b"MIN"]),
              POP_COUNTS).map(lambda t: [b"LMPOP", t[0], t[1], t[2], t[3], *t[4]]),
    st.tuples(st.sampled_from([b"BZMPOP", b"BLMPOP"]), KEYS,
              st.sampled_from([b"MIN", b"MAX", b"LEFT", b"RIGHT"])).map(
        lambda t: [t[0], b"0.01", b"1", t[1], t[2]]),
    st.tuples(KEYS, st.sampled_from([b"0", b"100", b"x"]), opt(b"WITHSCORES")).map(
        lambda t: [b"ZRANDMEMBER", t[0], t[1], *t[2][:1]]),
    st.tuples(KEYS, KEYS, opt(b"LEN", b"IDX", b"WITHMATCHLEN")).map(
        lambda t: [b"LCS", t[0], t[1], *t[2]]),
    # bitmaps
    cmd("SETBIT", KEYS, BIT_OFFSETS, st.sampled_from([b"0", b"1", b"2"])),
    cmd("GETBIT", KEYS, BIT_OFFSETS), cmd("BITCOUNT", KEYS),
    cmd("BITCOUNT", KEYS, INTS, INTS, st.sampled_from([b"BYTE", b"BIT", b"x"])),
    cmd("BITPOS", KEYS, st.sampled_from([b"0", b"1"]), INTS),
    cmd("BITPOS", KEYS, st.sampled_from([b"0", b"1"]), INTS, INTS, st.sampled_from([b"BIT",
                                                                                    b"BYTE"])),
    cmd("BITOP", st.sampled_from([b"AND", b"OR", b"XOR", b"NOT"]), KEYS, KEYS),
    cmd("BITOP", st.sampled_from([b"AND", b"OR", b"XOR"]), KEYS, KEYS, KEYS),
    st.tuples(KEYS, FIELD_OPS).map(lambda t: [b"BITFIELD", t[0], *t[1]]),
    cmd("BITFIELD_RO", KEYS, st.just(b"GET"), FIELD_TYPES, BIT_OFFSETS),
    # hyperloglog
    cmd("PFADD", KEYS, VALUES, VALUES), cmd("PFCOUNT", KEYS), cmd("PFCOUNT", KEYS, KEYS),
    cmd("PFMERGE", KEYS, KEYS, KEYS),
    # streams (ids explicit: `*` reads each server's clock; XPENDING's extended form, XINFO
    # STREAM and CONSUMERS show idle times or radix-tree internals and are left out)
    cmd("XADD", KEYS, XIDS, FIELDS, VALUES),
    st.tuples(KEYS, opt(b"NOMKSTREAM"), TRIMS, XIDS, FIELDS, VALUES).map(
        lambda t: [b"XADD", t[0], *t[1], *t[2], t[3], t[4], t[5]]),
    cmd("XRANGE", KEYS, XIDS, XIDS), cmd("XREVRANGE", KEYS, XIDS, XIDS), cmd("XLEN", KEYS),
    cmd("XDEL", KEYS, XIDS, XIDS), st.tuples(KEYS, TRIMS).map(lambda t: [b"XTRIM", t[0], *t[1]]),
    cmd("XREAD", st.just(b"STREAMS"), KEYS, XIDS),
    cmd("XREAD", st.just(b"COUNT"), INTS, st.just(b"STREAMS"), KEYS, KEYS, XIDS, XIDS),
    cmd("XSETID", KEYS, XIDS),
    st.tuples(KEYS, GROUPS, XIDS, opt(b"MKSTREAM")).map(
        lambda t: [b"XGROUP", b"CREATE", t[0], t[1], t[2], *t[3]]),
    cmd("XGROUP", st.just(b"SETID"), KEYS, GROUPS, XIDS),
    cmd("XGROUP", st.just(b"DESTROY"), KEYS, GROUPS),
    cmd("XGROUP", st.just(b"DELCONSUMER"), KEYS, GROUPS, CONSUMERS),
    cmd("XGROUP", st.just(b"CREATECONSUMER"), KEYS, GROUPS, CONSUMERS),
    st.tuples(GROUPS, CONSUMERS, opt(b"NOACK"), KEYS, XIDS).map(
        lambda t: [b"XREADGROUP", b"GROUP", t[0], t[1], *t[2], b"STREAMS", t[3], t[4]]),
    cmd("XACK", KEYS, GROUPS, XIDS, XIDS), cmd("XPENDING", KEYS, GROUPS),
    cmd("XCLAIM", KEYS, GROUPS, CONSUMERS, st.just(b"0"), XIDS, XIDS),
    cmd("XCLAIM", KEYS, GROUPS, CONSUMERS, st.just(b"0"), XIDS, st.just(b"FORCE"),
        st.just(b"JUSTID")),
    cmd("XAUTOCLAIM", KEYS, GROUPS, CONSUMERS, st.just(b"0"), XIDS, st.just(b"COUNT"), INTS),
    cmd("XINFO", st.just(b"GROUPS"), KEYS),
    # geo
    st.tuples(KEYS, opt(b"NX", b"XX", b"CH"), LONLATS, VALUES).map(
        lambda t: [b"GEOADD", t[0], *t[1], *t[2], t[3]]),
    cmd("GEOPOS", KEYS, VALUES, VALUES), cmd("GEOHASH", KEYS, VALUES),
    cmd("GEODIST", KEYS, VALUES, VALUES, st.sampled_from([b"m", b"km", b"ft", b"x"])),
    st.tuples(KEYS, LONLATS, GEO_AREAS, GEO_OPTIONS).map(
        lambda t: [b"GEOSEARCH", t[0], b"FROMLONLAT", *t[1], *t[2], *t[3]]),
    st.tuples(KEYS, VALUES, GEO_AREAS, GEO_OPTIONS).map(
        lambda t: [b"GEOSEARCH", t[0], b"FROMMEMBER", t[1], *t[2], *t[3]]),
    st.tuples(KEYS, KEYS, VALUES, GEO_AREAS, opt(b"STOREDIST", b"DESC")).map(
        lambda t: [b"GEOSEARCHSTORE", t[0], t[1], b"FROMMEMBER", t[2], *t[3], *t[4]]),
    st.tuples(KEYS, LONLATS, st.sampled_from([b"STORE", b"STOREDIST"]), KEYS).map(
        lambda t: [b"GEORADIUS", t[0], *t[1], b"500", b"km", t[2], t[3]]),
    cmd("GEORADIUSBYMEMBER_RO", KEYS, VALUES, st.just(b"300"), st.just(b"km")),
    # sort
    st.tuples(KEYS, SORT_OPTIONS).map(lambda t: [b"SORT", t[0], *t[1]]),
    st.tuples(KEYS, SORT_OPTIONS).map(lambda t: [b"SORT_RO", t[0], *t[1]]),
    st.tuples(KEYS, SORT_OPTIONS, KEYS).map(lambda t: [b"SORT", t[0], *t[1], b"STORE", t[2]]),
    # databases
    cmd("SELECT", DBS), cmd("MOVE", KEYS, DBS), cmd("SWAPDB", DBS, DBS),
    cmd("COPY", KEYS, KEYS, st.just(b"DB"), DBS), st.just([b"FLUSHDB"]),
)


SEQUENCES = st.lists(COMMANDS, min_size=MIN_COMMANDS, max_size=100)
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def check_sequence(pair: Pair, sequence: list[list[bytes]]) -> None:
    """Run one sequence on a clean pair of servers; every reply must match."""
    pair.flush()
    pair.both("SELECT", "0")  # the connection outlives the sequence that selected another db
    for argv in sequence:
        pair.check(*argv, unordered=argv[0] in UNORDERED)


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=EXAMPLE_DEADLINE,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=_HEALTH)
@given(sequence=SEQUENCES)
def test_random_sequences_match_redis(pair: Pair, sequence: list[list[bytes]]) -> None:
    """EXAMPLES sequences of MIN_COMMANDS to 100 commands each, under RESP2 and under RESP3.

    Guaranteed minimum: 50 x 40 = 2,000 random commands per protocol run, sent to both servers
    (3,000 to 3,600 in measured runs).
    """
    check_sequence(pair, sequence)


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=_HEALTH)
@given(sequence=SEQUENCES)
def test_random_sequences_match_redis_long(pair: Pair, sequence: list[list[bytes]]) -> None:
    """The same property with fresh random sequences, FUZZ_EXAMPLES of them, and shrinking."""
    check_sequence(pair, sequence)


def test_default_run_is_reproducible_and_bounded() -> None:
    """The CI run must not differ between runs or machines, nor spend minutes shrinking."""
    ci = test_random_sequences_match_redis._hypothesis_internal_use_settings  # type: ignore[attr-defined]
    assert ci.derandomize and ci.database is None
    assert ci.deadline is not None and Phase.shrink not in ci.phases
    fuzz = test_random_sequences_match_redis_long
    assert [m.name for m in fuzz.pytestmark] == ["fuzz"]  # type: ignore[attr-defined]
    assert Phase.shrink in fuzz._hypothesis_internal_use_settings.phases  # type: ignore[attr-defined]
