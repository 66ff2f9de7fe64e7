"""iteration.py: the SCAN guarantee (every key present for the whole scan is returned), bounds."""

from __future__ import annotations

from random import Random

import pytest

from jobcached.cache import Keyspace
from jobcached.clock import ManualClock


def full_scan(ks: Keyspace, count: int = 10, **kw) -> list[bytes]:
    cursor, out = 0, []
    for _ in range(1_000_000):
        cursor, keys = ks.scan(cursor, count, **kw)
        out.extend(keys)
        if cursor == 0:
            return out
    raise AssertionError("scan did not terminate")


def test_static_keyspace_returns_each_key_once() -> None:
    ks = Keyspace(ManualClock())
    keys = {b"k%d" % i for i in range(5000)}
    for k in keys:
        ks.set(k, b"v")
    got = full_scan(ks, count=37)
    assert sorted(got) == sorted(keys)  # no changes: no duplicates either


def test_empty_keyspace() -> None:
    assert Keyspace(ManualClock()).scan(0) == (0, [])


@pytest.mark.parametrize("seed", range(8))
def test_guarantee_under_concurrent_adds_and_deletes(seed: int) -> None:
    rng = Random(seed)
    ks = Keyspace(ManualClock(), shards=rng.choice([1, 3, 16]), rng=Random(seed))
    stable = {b"stable:%d" % i for i in range(2000)}
    churn = [b"churn:%d" % i for i in range(3000)]
    for k in stable:
        ks.set(k, b"v")
    for k in churn[:1500]:
        ks.set(k, b"v")
    seen: set[bytes] = set()
    cursor = 0
    calls = 0
    while True:
        cursor, keys = ks.scan(cursor, rng.randint(1, 50))
        seen.update(keys)
        calls += 1
        for _ in range(rng.randint(0, 40)):  # churn between calls: deletes move keys around
            k = rng.choice(churn)
            if rng.random() < 0.5:
                ks.delete(k)
            else:
                ks.set(k, b"v")
        if cursor == 0:
            break
    assert stable <= seen
    assert calls < 5000


def test_count_bounds_work_per_call() -> None:
    ks = Keyspace(ManualClock())
    for i in range(1000):
        ks.set(b"k%d" % i, b"v")
    cursor, keys = ks.scan(0, count=10)
    assert cursor != 0
    assert len(keys) <= 10


def test_sparse_keyspace_still_terminates_quickly() -> None:
    ks = Keyspace(ManualClock(), shards=64)
    ks.set(b"only", b"v")
    assert full_scan(ks, count=1) == [b"only"]


def test_match_and_type_filters() -> None:
    ks = Keyspace(ManualClock())
    for i in range(100):
        ks.set(b"user:%d" % i, b"v")
        ks.set(b"set:%d" % i, {b"m"})
    assert len(full_scan(ks, match=b"user:*")) == 100
    assert len(full_scan(ks, match=b"user:1?")) == 10
    assert sorted(full_scan(ks, type_name="set")) == sorted(b"set:%d" % i for i in range(100))
    assert full_scan(ks, match=b"user:*", type_name="set") == []
    assert len(full_scan(ks, match=b"*")) == 200


def test_expired_keys_are_skipped_and_reclaimed() -> None:
    clock = ManualClock()
    ks = Keyspace(clock)
    for i in range(100):
        ks.set(b"k%d" % i, b"v", expire_at_ms=clock.now_ms() + 1 if i % 2 else None)
    clock.advance(1)
    got = full_scan(ks)
    assert sorted(got) == sorted(b"k%d" % i for i in range(0, 100, 2))
    assert ks.dbsize() == 50
    assert ks.info()["expired_keys"] == 50


def test_garbage_cursor_is_harmless() -> None:
    ks = Keyspace(ManualClock())
    for i in range(10):
        ks.set(b"k%d" % i, b"v")
    cursor, _ = ks.scan(987654321987, 5)
    assert cursor >= 0
