"""Removing keys whose TTL has passed: lazily on access, and actively in bounded steps.

Incremental collection of expired keys (after Redis expire.c)
-------------------------------------------------------------
Lazy expiry alone is correct for readers (a key past its `expire_at` is gone for every lookup:
the check is inlined in Keyspace's lookups, the hot path, and calls `Keyspace.reap`), but a key
nobody reads again would hold its memory forever. So the server loop also calls
`active_expire_cycle()` periodically.

Each cycle visits shards round robin (the cursor survives between calls). In a shard it samples
ACTIVE_EXPIRE_KEYS_PER_LOOP random keys *with a TTL* (every one of them if the shard has fewer),
deletes those that are due, and repeats on the same shard while more than
ACTIVE_EXPIRE_REPEAT_PERCENT of the sample was expired: a shard full of dead keys gets more work, a
healthy one costs one small sample. The cycle stops when it has sampled `max_samples` keys or
spent `budget_ms`, whichever comes first, and the next call resumes on the same shard. So a million
keys expiring in the same millisecond are reclaimed over many short steps instead of one stall;
between steps they are already invisible to readers thanks to lazy expiry.

Sampling is random rather than ordered by deadline on purpose: a heap or sorted index would cost
O(log n) on every `SET ... EX`, and TTL refreshes (sessions) would leave stale heap entries. The
cost of sampling is that up to ~25% of a shard's volatile keys may be dead but not yet reclaimed,
the same trade Redis makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobcached.cache.keyspace import Keyspace
    from jobcached.cache.shard import Entry

ACTIVE_EXPIRE_KEYS_PER_LOOP = 20  # keys sampled per shard per loop (Redis, same name)
ACTIVE_EXPIRE_REPEAT_PERCENT = 25  # repeat a shard while more than this % of a sample expired
DEFAULT_EXPIRE_BUDGET_MS = 25  # Redis's slow cycle: 25% of a 100 ms cron period
DEFAULT_EXPIRE_MAX_SAMPLES = 10_000  # ~5 ms of Python work; bounds a cycle when time stands still


def is_expired(entry: Entry, now_ms: int) -> bool:
    """True when the entry has a TTL and it has passed (a TTL equal to now counts as passed)."""
    at = entry.expire_at
    return bool(at) and at <= now_ms


class ExpiryCursor:
    """Where the next active cycle starts, plus figures for INFO."""

    __slots__ = ("last_expired", "last_sampled", "next_shard")

    def __init__(self) -> None:
        self.next_shard = 0
        self.last_sampled = 0
        self.last_expired = 0


def active_expire_cycle(
    ks: Keyspace,
    cursor: ExpiryCursor,
    budget_ms: int = DEFAULT_EXPIRE_BUDGET_MS,
    max_samples: int = DEFAULT_EXPIRE_MAX_SAMPLES,
) -> int:
    """One bounded step of active expiry over `ks`; returns how many keys it expired."""
    clock = ks.clock
    started = clock.monotonic_ms()
    now = clock.now_ms()
    shards = ks.shards
    n = len(shards)
    rand = ks.rng.random
    sampled = expired = 0
    for _ in range(n):
        index = cursor.next_shard
        shard = shards[index]
        data, volatile = shard.data, shard.volatile
        while volatile:
            if len(volatile) <= ACTIVE_EXPIRE_KEYS_PER_LOOP:
                batch = list(volatile)
            else:
                size = len(volatile)
                batch = [volatile[int(rand() * size)] for _ in range(ACTIVE_EXPIRE_KEYS_PER_LOOP)]
            hits = 0
            for key in batch:
                e = data.get(key)
                if e is not None and e.expire_at and e.expire_at <= now:
                    ks.reap(shard, key, e, evicted=False)
                    hits += 1
            sampled += len(batch)
            expired += hits
            out_of_budget = sampled >= max_samples or clock.monotonic_ms() - started >= budget_ms
            if out_of_budget:
                cursor.last_sampled, cursor.last_expired = sampled, expired
                return expired  # resume on this same shard next time
            if hits * 100 <= len(batch) * ACTIVE_EXPIRE_REPEAT_PERCENT:
                break
        cursor.next_shard = (index + 1) % n
    cursor.last_sampled, cursor.last_expired = sampled, expired
    return expired
