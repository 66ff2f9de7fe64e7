"""Memory accounting: incremental figures agree with a full walk, and with tracemalloc."""

from __future__ import annotations

import gc
import tracemalloc
from random import Random

from jobcached.cache import Keyspace, item_size
from jobcached.cache.memory import entry_size_check
from jobcached.clock import ManualClock

TRACEMALLOC_TOLERANCE = 0.25  # the brief: estimate within +-25% of what tracemalloc measures
ENTRIES = 100_000


def full_walk(ks: Keyspace) -> int:
    total = 0
    for shard in ks.shards:
        for key, e in shard.data.items():
            total += entry_size_check(key, e.value, volatile=e.expire_at != 0)
    return total


def populate(
    ks: Keyspace, rng: Random, n: int, clock: ManualClock, only: int | None = None
) -> None:
    """Mixed types, written the way command handlers write them (in place + notify)."""
    for i in range(n):
        kind = i % 5 if only is None else only
        key = b"key:%d:%s" % (i, b"x" * rng.randint(0, 30))
        if kind == 0:
            ks.set(key, bytes(rng.randint(1, 1500)))
        elif kind == 1:
            h = ks.get_hash(key, create=True)
            assert h is not None
            delta = 0
            for f in range(rng.randint(1, 12)):
                field, value = b"field%d" % f, b"v" * rng.randint(1, 80)
                h[field] = value
                delta += item_size(field) + item_size(value)
            ks.notify_modified(key, delta)
        elif kind == 2:
            s = ks.get_set(key, create=True)
            assert s is not None
            delta = 0
            for m in range(rng.randint(1, 20)):
                member = b"member-%d" % m
                s.add(member)
                delta += item_size(member)
            ks.notify_modified(key, delta)
        elif kind == 3:
            lst = ks.get_list(key, create=True)
            assert lst is not None
            delta = 0
            for _ in range(rng.randint(1, 20)):
                item = b"item" * rng.randint(1, 8)
                lst.appendleft(item)
                delta += item_size(item)
            ks.notify_modified(key, delta)
        else:
            z = ks.get_zset(key, create=True)
            assert z is not None
            delta = 0
            for m in range(rng.randint(1, 20)):
                member = b"player:%d" % m
                z.add(member, rng.random() * 1000)
                delta += item_size(member)
            ks.notify_modified(key, delta)
        if i % 3 == 0:
            ks.expire_at(key, clock.now_ms() + 10_000 + i)


def test_incremental_equals_full_walk_after_mixed_writes() -> None:
    clock = ManualClock()
    ks = Keyspace(clock, rng=Random(3))
    rng = Random(5)
    populate(ks, rng, 3000, clock)
    # Shrink and grow some containers, overwrite, rename, persist, delete.
    for i in range(0, 3000, 7):
        key = ks.random_key()
        assert key is not None
        value = ks.lookup_write(key)
        if isinstance(value, dict) and value:
            field = next(iter(value))
            old = value.pop(field)
            ks.notify_modified(key, -(item_size(field) + item_size(old)))
        elif isinstance(value, set):
            member = value.pop()
            ks.notify_modified(key, -item_size(member))
        elif isinstance(value, bytes):
            ks.set(key, value + b"more", keepttl=True)
        if not ks.exists(key):  # a set that lost its only member is gone
            continue
        if i % 2:
            ks.persist(key)
        else:
            ks.rename(key, b"renamed:%d" % i)
    assert ks.stats.used_memory == full_walk(ks)
    for key in ks.keys(b"*"):
        ks.delete(key)
    assert ks.stats.used_memory == 0


def test_estimate_tracks_tracemalloc_within_tolerance() -> None:
    clock = ManualClock()
    ks = Keyspace(clock, rng=Random(3))
    rng = Random(11)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        populate(ks, rng, ENTRIES, clock)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    ratio = ks.stats.used_memory / grown
    print(f"used_memory={ks.stats.used_memory} tracemalloc={grown} ratio={ratio:.3f}")
    assert 1 - TRACEMALLOC_TOLERANCE <= ratio <= 1 + TRACEMALLOC_TOLERANCE
