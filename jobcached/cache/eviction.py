"""Evicting keys when used memory goes over `maxmemory`, approximated the way Redis does it.

LRU/LFU approximation (after Redis evict.c)
-------------------------------------------
A true LRU needs a linked list touched on every read; a true LFU needs a heap. Both cost memory
and time on the hot path, and a cache does not need the exact victim, only a good one. So, like
Redis, we *sample*: each eviction takes `maxmemory_samples` random keys from one shard (shards in
turn) and offers them to a small *pool* of the best candidates seen so far (EVICTION_POOL_SIZE).
The pool survives between evictions, so over a burst of evictions it accumulates far more than N
samples and the victim is close to the true best. When the best entry is popped we re-read its
score: if the key was deleted or used since it was sampled, it is dropped or re-ranked instead of
evicted (Redis only checks existence). Random sampling is O(1) because each shard keeps its keys
(and its volatile keys) in arrays beside the dict, see shard.py.

Scores (higher = evict first):
  *-lru        idle time: the cached LRU clock minus the key's last access (ms).
  *-lfu        255 - decayed counter. The counter is Redis's 8-bit logarithmic (Morris) counter:
               an access increments it with probability 1 / ((counter - LFU_INIT_VAL) *
               lfu_log_factor + 1), so factor 10 needs about a million hits to reach 255; it
               decays by one every `lfu_decay_time` minutes without access. New keys start at
               LFU_INIT_VAL (5), so a brand new key is not the first victim just for being new.
  volatile-ttl -expire_at: the key closest to expiring goes first.
  *-random     no pool: a random key of the next non-empty shard.

allkeys-* sample every key; volatile-* only keys with a TTL, and fail (OOM) when there are none.

Each call to `free_memory()` evicts until used memory is under the limit, and stops early after
EVICTION_TIME_BUDGET_MS (as Redis's 500 us limit) letting the write proceed; the next write or the
server cron continues. It raises OutOfMemoryError only when nothing at all can be evicted.
"""

from __future__ import annotations

from bisect import insort
from random import Random
from typing import TYPE_CHECKING

from jobcached.errors import OutOfMemoryError

if TYPE_CHECKING:
    from jobcached.cache.keyspace import Keyspace
    from jobcached.cache.shard import Entry

POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-ttl",
    "volatile-random",
)
LFU_POLICIES = frozenset({"allkeys-lfu", "volatile-lfu"})

EVICTION_POOL_SIZE = 16  # candidates kept between evictions (Redis EVPOOL_SIZE)
EVICTION_TIME_BUDGET_MS = 2  # stop one free_memory() call after this; Redis uses 500 us in C
EVICTION_CLOCK_CHECK_EVERY = 16  # evictions between clock reads, so the budget check is cheap
LFU_INIT_VAL = 5  # counter of a new key (Redis LFU_INIT_VAL)
LFU_COUNTER_MAX = 255  # the counter is 8 bits in Redis; we keep the same scale for OBJECT FREQ
MS_PER_MINUTE = 60_000  # LFU decay works in minutes, like Redis's 16-bit minute clock


def policy_is_lfu(policy: str) -> bool:
    """Validate a maxmemory policy name (ValueError if unknown); True for the LFU ones."""
    if policy not in POLICIES:
        raise ValueError(f"unknown maxmemory policy {policy!r}")
    return policy in LFU_POLICIES


def lfu_decayed(access: int, now_minutes: int, decay_time: int) -> int:
    """The counter after decay (Redis LFUDecrAndReturn), without storing it."""
    counter = access & 0xFF
    if decay_time > 0:
        periods = (now_minutes - (access >> 8)) // decay_time
        if periods > 0:
            return counter - periods if periods < counter else 0
    return counter


def lfu_touch(access: int, now_minutes: int, log_factor: int, decay_time: int, rng: Random) -> int:
    """Decay, then maybe increment (Redis updateLFU); returns the new packed access field.

    Runs on every read under an LFU policy, so the same-minute case avoids the decay arithmetic
    and, when the coin says no, returns the very same int (no allocation).
    """
    if access >> 8 == now_minutes:
        counter = access & 0xFF
    else:
        counter = lfu_decayed(access, now_minutes, decay_time)
        access = (now_minutes << 8) | counter
    if counter >= LFU_COUNTER_MAX:
        return access
    base = counter - LFU_INIT_VAL
    if base <= 0 or rng.random() * (base * log_factor + 1) < 1.0:
        return access + 1
    return access


class Evictor:
    """The eviction pool and the round-robin shard cursor of one keyspace."""

    __slots__ = ("_ks", "_next_shard", "_pool", "_pool_keys")

    def __init__(self, keyspace: Keyspace) -> None:
        self._ks = keyspace
        self._pool: list[tuple[int, bytes, int]] = []  # (score, key, shard index), ascending
        self._pool_keys: set[bytes] = set()
        self._next_shard = 0

    def reset(self) -> None:
        """Forget pooled candidates (after FLUSH or a policy change)."""
        self._pool.clear()
        self._pool_keys.clear()

    def _score(self, e: Entry) -> int:
        ks = self._ks
        policy = ks.policy
        if policy == "volatile-ttl":
            return -e.expire_at
        if policy in LFU_POLICIES:
            return LFU_COUNTER_MAX - lfu_decayed(e.access, ks.lfu_minutes, ks.lfu_decay_time)
        return ks.lru_clock - e.access

    def _populate(self, index: int, volatile: bool) -> bool:
        """Offer `maxmemory_samples` random keys of one shard to the pool; False if it is empty."""
        ks = self._ks
        shard = ks.shards[index]
        source = shard.volatile if volatile else shard.keys
        n = len(source)
        if n == 0:
            return False
        pool, pool_keys, data, rand = self._pool, self._pool_keys, shard.data, ks.rng.random
        for _ in range(min(ks.maxmemory_samples, n)):
            key = source[int(rand() * n)]
            if key in pool_keys:
                continue
            score = self._score(data[key])
            if len(pool) >= EVICTION_POOL_SIZE and score <= pool[0][0]:
                continue
            insort(pool, (score, key, index))
            pool_keys.add(key)
            if len(pool) > EVICTION_POOL_SIZE:
                pool_keys.discard(pool.pop(0)[1])
        return True

    def _next_source(self, volatile: bool) -> int:
        """Index of the next shard with candidates, round robin; -1 when all are empty."""
        shards = self._ks.shards
        n = len(shards)
        for _ in range(n):
            i = self._next_shard
            self._next_shard = (i + 1) % n
            if shards[i].volatile if volatile else shards[i].keys:
                return i
        return -1

    def evict_one(self) -> bool:
        """Evict the best candidate under the current policy; False when nothing is evictable."""
        ks = self._ks
        policy = ks.policy
        volatile = policy.startswith("volatile-")
        i = self._next_source(volatile)
        if i < 0:
            return False
        if policy.endswith("-random"):
            shard = ks.shards[i]
            source = shard.volatile if volatile else shard.keys
            key = source[int(ks.rng.random() * len(source))]
            ks.reap(shard, key, shard.data[key], evicted=True)
            return True
        self._populate(i, volatile)
        pool, pool_keys = self._pool, self._pool_keys
        while pool:
            score, key, index = pool.pop()
            pool_keys.discard(key)
            shard = ks.shards[index]
            e = shard.data.get(key)
            if e is None or (volatile and e.vpos < 0):
                continue  # deleted, or lost its TTL, since it was sampled
            current = self._score(e)
            if current < score:  # used since it was sampled: re-rank, do not evict blindly
                insort(pool, (current, key, index))
                pool_keys.add(key)
                continue
            ks.reap(shard, key, e, evicted=True)
            return True
        return False

    def free_memory(self, limit: int) -> int:
        """Evict until the cache uses at most `limit` bytes (maxmemory less what the jobs
        use), or the time budget is spent; returns keys evicted.

        Raises OutOfMemoryError under `noeviction`, or when nothing can be evicted.
        """
        ks = self._ks
        stats = ks.stats
        if ks.policy == "noeviction":
            raise OutOfMemoryError()
        clock = ks.clock
        started = clock.monotonic_ms()
        freed = 0
        while stats.used_memory > limit:
            if not self.evict_one():
                raise OutOfMemoryError()
            freed += 1
            if (
                freed % EVICTION_CLOCK_CHECK_EVERY == 0
                and clock.monotonic_ms() - started >= EVICTION_TIME_BUDGET_MS
            ):
                break
        return freed
