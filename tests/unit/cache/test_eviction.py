"""Eviction: quality of the LRU/LFU approximation, TTL order, bounds, and OOM."""

from __future__ import annotations

from random import Random

import pytest

from jobcached.cache import Keyspace
from jobcached.cache.eviction import LFU_INIT_VAL, lfu_decayed, lfu_touch
from jobcached.cache.memory import entry_size_check
from jobcached.clock import ManualClock
from jobcached.errors import OutOfMemoryError

MAXMEMORY = 4_000_000  # about 10,000 keys of the size below
VALUE = b"v" * 100
HOT_KEYS = 1000
HOT_SURVIVAL_MIN = 0.90  # the brief: >= 90% of the hot set survives 3x maxmemory of cold writes


def write(ks: Keyspace, key: bytes, value: bytes = VALUE, expire_at_ms: int | None = None) -> None:
    """What the command layer does for a DENYOOM write."""
    ks.ensure_memory()
    ks.set(key, value, expire_at_ms=expire_at_ms)


def hot_set_survival(policy: str, seed: int) -> float:
    clock = ManualClock()
    ks = Keyspace(clock, maxmemory=MAXMEMORY, policy=policy, rng=Random(seed))
    hot = [b"hot:%d" % i for i in range(HOT_KEYS)]
    for k in hot:
        write(ks, k)
    written = 0  # the exact size of every cold entry written, as the keyspace accounts it
    i = 0
    while written < 3 * MAXMEMORY:
        key = b"cold:%d" % i
        write(ks, key)
        size = entry_size_check(key, VALUE, volatile=False)
        assert ks.memory_usage(key) == size  # what the keyspace recorded for this entry
        written += size
        i += 1
        ks.lookup_read(hot[i % HOT_KEYS])  # the hot set is read continuously: 1 read per write
        clock.advance(1)
    assert ks.info()["evicted_keys"] > 0
    return sum(ks.exists(k) for k in hot) / HOT_KEYS


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu"])
def test_hot_set_survives(policy: str) -> None:
    survival = hot_set_survival(policy, seed=1)
    print(f"{policy}: {survival:.1%} of the hot set survived")
    assert survival >= HOT_SURVIVAL_MIN


@pytest.mark.parametrize(
    "policy",
    ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-ttl"],
)
def test_memory_never_exceeds_limit_by_more_than_one_write(policy: str) -> None:
    clock = ManualClock()
    ks = Keyspace(clock, maxmemory=200_000, policy=policy, rng=Random(2))
    rng = Random(3)
    for i in range(5000):
        key, value = b"k%d" % i, b"x" * rng.randint(1, 3000)
        ks.ensure_memory()
        assert ks.stats.used_memory <= ks.maxmemory
        ks.set(key, value, expire_at_ms=clock.now_ms() + rng.randint(1000, 10**6))
        assert ks.stats.used_memory <= ks.maxmemory + entry_size_check(key, value, volatile=True)
        clock.advance(1)
    assert ks.info()["evicted_keys"] > 0


def test_volatile_ttl_evicts_shortest_ttl_first() -> None:
    clock = ManualClock()
    ks = Keyspace(clock, maxmemory=400_000, policy="volatile-ttl", rng=Random(4))
    rng = Random(5)
    ttls = {}
    for i in range(3000):
        key = b"k%d" % i
        ttls[key] = rng.randint(1, 1_000_000)
        write(ks, key, expire_at_ms=clock.now_ms() + ttls[key])
    survivors = [k for k in ttls if ks.exists(k)]
    evicted = [k for k in ttls if not ks.exists(k)]
    assert evicted and survivors
    median = sorted(ttls.values())[len(ttls) // 2]
    long_lived = sum(ttls[k] > median for k in survivors) / len(survivors)
    assert long_lived >= 0.85
    mean = sum(ttls[k] for k in survivors) / len(survivors)
    assert mean > 2 * sum(ttls[k] for k in evicted) / len(evicted)


def test_volatile_policies_spare_persistent_keys() -> None:
    clock = ManualClock()
    ks = Keyspace(clock, maxmemory=300_000, policy="volatile-lru", rng=Random(6))
    for i in range(200):
        write(ks, b"keep:%d" % i)
    for i in range(2000):
        write(ks, b"tmp:%d" % i, expire_at_ms=clock.now_ms() + 10**6)
    assert all(ks.exists(b"keep:%d" % i) for i in range(200))


def test_noeviction_raises_oom() -> None:
    ks = Keyspace(ManualClock(), maxmemory=10_000, policy="noeviction")
    with pytest.raises(OutOfMemoryError):
        for i in range(1000):
            write(ks, b"k%d" % i)
    assert ks.stats.used_memory > ks.maxmemory
    assert ks.delete(b"k0")  # non-DENYOOM commands keep working


def test_volatile_without_volatile_keys_raises_oom() -> None:
    ks = Keyspace(ManualClock(), maxmemory=10_000, policy="volatile-lru")
    with pytest.raises(OutOfMemoryError):
        for i in range(1000):
            write(ks, b"k%d" % i)


def test_evictions_are_counted_and_reported() -> None:
    seen: list[str] = []
    ks = Keyspace(
        ManualClock(),
        maxmemory=50_000,
        policy="allkeys-random",
        rng=Random(7),
        on_removed=lambda k, why: seen.append(why),
    )
    for i in range(1000):
        write(ks, b"k%d" % i)
    assert ks.info()["evicted_keys"] == len(seen) > 0
    assert set(seen) == {"evicted"}


def test_lfu_counter_is_logarithmic_and_decays() -> None:
    rng = Random(8)
    access = (0 << 8) | LFU_INIT_VAL
    for _ in range(100):
        access = lfu_touch(access, 0, 10, 1, rng)
    after_100 = access & 0xFF
    for _ in range(10_000):
        access = lfu_touch(access, 0, 10, 1, rng)
    after_10k = access & 0xFF
    assert LFU_INIT_VAL < after_100 < after_10k < 60  # Redis table: ~10k hits -> 18..20
    assert lfu_decayed(access, 5, 1) == after_10k - 5  # one step per idle minute
    assert lfu_decayed(access, 5, 0) == after_10k  # decay time 0: never decays
    assert lfu_decayed(access, 10**6, 1) == 0


def test_memory_that_is_not_the_cache_s_shrinks_what_it_may_use() -> None:
    """Jobs count against maxmemory and are never evicted: the cache makes room for them."""
    jobs = [0]
    ks = Keyspace(ManualClock(), maxmemory=MAXMEMORY, policy="allkeys-lru", rng=Random(1))
    ks.other_memory = lambda: jobs[0]
    for i in range(12_000):  # more than fit: the cache is at maxmemory
        write(ks, b"k:%d" % i)
    cache_before = ks.stats.used_memory
    assert cache_before > MAXMEMORY // 2  # within one write of maxmemory
    jobs[0] = MAXMEMORY // 2
    evicted = ks.ensure_memory()
    assert evicted > 0 and ks.stats.used_memory <= MAXMEMORY - jobs[0]
    jobs[0] = MAXMEMORY + 1  # the jobs alone are over: nothing the cache drops is enough
    with pytest.raises(OutOfMemoryError):
        ks.ensure_memory()
    assert ks.dbsize() == 0


def test_noeviction_refuses_writes_once_jobs_fill_maxmemory() -> None:
    ks = Keyspace(ManualClock(), maxmemory=MAXMEMORY, policy="noeviction")
    ks.other_memory = lambda: MAXMEMORY + 1
    with pytest.raises(OutOfMemoryError):
        write(ks, b"k")
