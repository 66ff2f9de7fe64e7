"""The RDB encodings without a server: listpack / intset / ziplist vectors from Redis' C
layouts, string encodings, round trips of random values, malformed input refused.

The integration tests (test_dump_restore.py) compare whole payloads with redis-server's.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.cache import Keyspace
from jobcached.cache.listpack import (
    as_int,
    intset_decode,
    intset_encode,
    lp_decode,
    lp_encode,
    ziplist_decode,
)
from jobcached.cache.rdbformat import RdbError, Reader, d2string, open_payload, save_string, seal
from jobcached.cache.rdbvalue import dump_value, load_value
from jobcached.cache.stream import Group, Nack, Stream, make_id
from jobcached.cache.zset import ZSet
from jobcached.clock import ManualClock


def test_listpack_entries_use_redis_encodings() -> None:
    lp = lp_encode([b"a", b"127", b"-1", b"4095", b"-32768", b"8388607", b"2147483647",
                    b"9223372036854775807", b"007"])
    assert lp[6:] == (b"\x81a\x02" b"\x7f\x01" b"\xdf\xff\x02" b"\xcf\xff\x02"
                      b"\xf1\x00\x80\x03" b"\xf2\xff\xff\x7f\x04" b"\xf3\xff\xff\xff\x7f\x05"
                      b"\xf4\xff\xff\xff\xff\xff\xff\xff\x7f\x09" b"\x83007\x04" b"\xff")
    assert int.from_bytes(lp[:4], "little") == len(lp) and lp[4:6] == b"\x09\x00"
    big = b"x" * 5000
    assert lp_decode(lp_encode([big, b"y" * 100])) == [big, b"y" * 100]


@pytest.mark.parametrize("blob", [b"", b"\x08\x00\x00\x00\x00\x00\xff",
                                  lp_encode([b"a"])[:-1] + b"\x00",
                                  b"\x0a\x00\x00\x00\x01\x00\x81a\x03\xff",  # bad back-length
                                  b"\x0a\x00\x00\x00\x02\x00\x81a\x02\xff"])  # wrong count
def test_malformed_listpacks_are_refused(blob: bytes) -> None:
    with pytest.raises(RdbError):
        lp_decode(blob)


def test_intset_width_follows_the_widest_member() -> None:
    assert intset_encode([3, 1])[:4] == b"\x02\x00\x00\x00"
    assert intset_encode([1, 70000])[:4] == b"\x04\x00\x00\x00"
    assert intset_encode([1, -(1 << 40)])[:4] == b"\x08\x00\x00\x00"
    assert intset_decode(intset_encode([5, -5, 0])) == [b"-5", b"0", b"5"]
    with pytest.raises(RdbError):
        intset_decode(b"\x02\x00\x00\x00\x02\x00\x00\x00\x05\x00\x01\x00")  # unsorted


def test_ziplist_integer_encodings() -> None:
    entries = b"\x00\xc0\x39\x30" b"\x04\xd0\x00\x00\x01\x00" b"\x06\xf0\x01\x00\x80" b"\x05\xfd"
    blob = (len(entries) + 11).to_bytes(4, "little") + b"\x00" * 4 + b"\x04\x00" + entries + b"\xff"
    assert ziplist_decode(blob) == [b"12345", b"65536", b"-8388607", b"12"]


def test_strings_and_doubles() -> None:
    assert save_string(b"-128") == b"\xc0\x80"
    assert save_string(b"32767") == b"\xc1\xff\x7f"
    assert save_string(b"2147483648") == b"\x0a2147483648"  # past 32 bits: text
    assert save_string(b"+1") == b"\x02+1"
    assert Reader(save_string(b"ab" * 50)).string() == b"ab" * 50  # LZF
    assert [d2string(x) for x in (1.0, -0.0, 0.5, float("inf"), 1e20)] == [
        b"1", b"-0", b"0.5", b"inf", b"1e+20"]
    assert as_int(b"-0") is None and as_int(b"18446744073709551616") is None


def test_payload_footer() -> None:
    payload = seal(b"\x00\x01a")
    assert open_payload(payload) == b"\x00\x01a"
    assert open_payload(payload[:-1] + b"\x00") is None
    assert open_payload(b"short") is None


MEMBERS = st.one_of(st.binary(max_size=80), st.integers(-(1 << 63), (1 << 63) - 1).map(
    lambda n: b"%d" % n))
VALUES = st.one_of(
    st.binary(max_size=300),
    st.lists(MEMBERS, min_size=1, max_size=40).map(deque),
    st.sets(MEMBERS, min_size=1, max_size=40),
    st.dictionaries(MEMBERS, MEMBERS, min_size=1, max_size=40),
    st.dictionaries(MEMBERS, st.floats(allow_nan=False), min_size=1, max_size=40).map(ZSet),
)


@settings(max_examples=150, deadline=None)
@given(value=VALUES)
def test_every_value_round_trips(value: Any) -> None:
    back = load_value(dump_value(value))
    if isinstance(value, ZSet):
        assert list(back.items()) == list(value.items())
    else:
        assert back == value


def test_stream_with_groups_round_trips() -> None:
    s = Stream()
    for i in range(1, 260):
        s.add(make_id(i, 0), (b"a", b"%d" % i) if i % 3 else (b"b", b"x", b"c", b"y"))
    s.delete(make_id(5, 0))
    g = s.groups[b"g"] = Group(make_id(10, 0), 10)
    alice = g.consumer(b"alice", 1234)
    assert alice is not None
    g.consumer(b"idle", 99)
    for i in (2, 3):
        g.pel[make_id(i, 0)] = alice.pel[make_id(i, 0)] = Nack(alice, 500 + i, i)
    back = load_value(dump_value(s))
    assert back.range(0, make_id(1000, 0)) == s.range(0, make_id(1000, 0))
    assert (back.last_id, back.max_deleted_id, back.entries_added) == (
        s.last_id, s.max_deleted_id, s.entries_added)
    h = back.groups[b"g"]
    assert (h.last_id, h.entries_read, sorted(h.consumers)) == (g.last_id, 10, [b"alice", b"idle"])
    assert [(sid, n.consumer.name, n.delivery_ms, n.count) for sid, n in h.pel.items()] == [
        (make_id(2, 0), b"alice", 502, 2), (make_id(3, 0), b"alice", 503, 3)]
    assert h.consumers[b"idle"].seen_ms == 99


@pytest.mark.parametrize("fragment", [b"", b"\x06\x00", b"\x02\x00", b"\x04\x01\x01a",
                                      b"\x04\x02\x01a\x01b\x01a\x01c",  # duplicate field
                                      b"\x0b\x00", b"\x00\xc3\x01\x05\x00a"])
def test_bad_fragments_are_refused(fragment: bytes) -> None:
    with pytest.raises(RdbError):
        load_value(fragment)


def test_restore_access_figures() -> None:
    clock = ManualClock()
    ks = Keyspace(clock)
    ks.set(b"k", b"v")
    ks.set_access(b"k", 100, None)
    assert ks.object_idletime(b"k") == 100
    ks.set_policy("allkeys-lfu")
    ks.set_access(b"k", None, 42)
    assert ks.object_freq(b"k") == 42
