"""Sorted-set operations (cache/zsets.py): results, options, readiness reported only where
members are added, and memory that always agrees with a full walk."""

from __future__ import annotations

import math

import pytest

from jobcached.cache import lex_bound, zsets
from jobcached.cache.zset import ZSet
from jobcached.errors import WrongTypeError
from tests.unit.cache.containers import keyspace_with_readiness, walked


def test_add_counts_added_and_updated_and_reports_only_additions() -> None:
    ks, ready = keyspace_with_readiness()
    assert zsets.add(ks, b"z", [(1.0, b"a"), (2.0, b"b")]) == (2, 0)
    assert zsets.add(ks, b"z", [(5.0, b"a"), (2.0, b"b")]) == (0, 1)
    assert zsets.add(ks, b"z", [(9.0, b"a"), (1.0, b"c")], nx=True) == (1, 0)
    assert zsets.add(ks, b"none", [(1.0, b"a")], xx=True) == (0, 0)
    assert ks.get_zset(b"none") is None
    assert ready == [b"z", b"z"]
    zset = ks.get_zset(b"z")
    assert zset is not None
    assert zset.as_dict() == {b"a": 5.0, b"b": 2.0, b"c": 1.0}
    assert ks.stats.used_memory == walked(ks)


def test_a_negative_zero_is_stored_as_zero() -> None:
    ks, _ = keyspace_with_readiness()
    zsets.add(ks, b"z", [(-0.0, b"a")])
    zset = ks.get_zset(b"z")
    assert zset is not None
    score = zset.score(b"a")
    assert score == 0.0
    assert score is not None and math.copysign(1.0, score) == 1.0


def test_incr_replies_and_reports_changes() -> None:
    ks, ready = keyspace_with_readiness()
    reply, changed = zsets.incr(ks, b"z", -0.0, b"a")
    assert changed
    assert reply is not None and math.copysign(1.0, reply) == -1.0  # the reply keeps the sign
    assert zsets.incr(ks, b"z", 2.5, b"a") == (2.5, True)
    assert zsets.incr(ks, b"z", 0.0, b"a") == (2.5, False)
    assert zsets.incr(ks, b"z", 1.0, b"a", nx=True) == (None, False)
    assert zsets.incr(ks, b"z", -1.0, b"a", gt=True) == (None, False)
    assert zsets.incr(ks, b"missing", 1.0, b"a", xx=True) == (None, False)
    assert ready == [b"z"]
    assert ks.stats.used_memory == walked(ks)


def test_remove_and_pop_drop_an_emptied_set() -> None:
    ks, _ = keyspace_with_readiness()
    zsets.add(ks, b"z", [(1.0, b"a"), (2.0, b"b"), (3.0, b"c"), (4.0, b"d")])
    assert zsets.remove(ks, b"z", [b"a", b"x"]) == (1, 3)
    assert zsets.pop(ks, b"z", highest=True, count=0) == ([], 3)
    assert zsets.pop(ks, b"z", highest=True, count=1) == ([(b"d", 4.0)], 2)
    assert ks.stats.used_memory == walked(ks)
    assert zsets.pop(ks, b"z", highest=False, count=5) == ([(b"b", 2.0), (b"c", 3.0)], 0)
    assert ks.dbsize() == 0
    assert ks.stats.used_memory == 0
    assert zsets.pop(ks, b"z", highest=False, count=1) is None
    assert zsets.remove(ks, b"z", [b"a"]) == (0, 0)


def test_removals_by_range() -> None:
    ks, _ = keyspace_with_readiness()
    zsets.add(ks, b"z", [(float(i), b"m%d" % i) for i in range(10)])
    assert zsets.remove_range_by_rank(ks, b"z", 0, 1) == (2, 8)
    assert zsets.remove_range_by_score(ks, b"z", 2.0, 4.0, True, False) == (2, 6)
    lo, hi = lex_bound(b"[m5"), lex_bound(b"(m7")
    assert lo is not False and hi is not False
    assert zsets.remove_range_by_lex(ks, b"z", lo, hi) == (2, 4)
    assert ks.stats.used_memory == walked(ks)
    assert zsets.remove_range_by_rank(ks, b"z", 0, -1) == (4, 0)
    assert ks.dbsize() == 0
    assert zsets.remove_range_by_rank(ks, b"z", 0, -1) == (0, 0)


def test_store_replaces_any_value_or_deletes() -> None:
    ks, ready = keyspace_with_readiness()
    ks.set(b"dst", b"a string", expire_at_ms=2_000_000)
    assert zsets.store(ks, b"dst", ZSet({b"m": 1.0}))
    assert ks.ttl_ms(b"dst") == -1
    assert ready == []  # a value replaced, not a key added: Redis' dbOverwrite wakes nobody
    assert ks.stats.used_memory == walked(ks)
    assert zsets.store(ks, b"dst", ZSet())
    assert not zsets.store(ks, b"dst", ZSet())
    assert ks.dbsize() == 0
    assert zsets.store(ks, b"dst", ZSet({b"m": 1.0}))
    assert ready == [b"dst"]


def test_writes_to_a_key_of_another_type_are_refused_unchanged() -> None:
    ks, ready = keyspace_with_readiness()
    ks.set(b"str", b"x")
    for write in (lambda: zsets.add(ks, b"str", [(1.0, b"m")]),
                  lambda: zsets.incr(ks, b"str", 1.0, b"m"),
                  lambda: zsets.remove(ks, b"str", [b"m"]),
                  lambda: zsets.pop(ks, b"str", highest=False, count=1)):
        with pytest.raises(WrongTypeError):
            write()
    assert ks.get_string(b"str") == b"x"
    assert ready == []
