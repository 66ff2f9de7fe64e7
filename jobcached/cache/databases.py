"""The numbered databases (SELECT 0..N-1): one Keyspace each, one memory budget for all.

Why one Keyspace per database rather than a db prefix in every key: SCAN, KEYS, DBSIZE,
RANDOMKEY, FLUSHDB and SWAPDB are then the existing per-keyspace operations, and the hot path
(GET/SET) pays nothing for databases: a session holds the Keyspace object of its database.

What is server-wide, as in Redis: the counters and `used_memory` (all keyspaces share one
`CacheStats`), `maxmemory` and its policy, eviction and active expiry. Both of those last two
walk the databases here, so a big database 1 is evicted and expired even while every client
sits in database 0.

Eviction across databases (after Redis' evictionPoolPopulate, which samples every db): each
eviction picks a database at random, weighted by how many candidate keys it holds (all keys, or
only those with a TTL under a volatile-* policy), and lets that keyspace's own pool choose the
victim. With a single non-empty database (the common case) that is exactly the one-keyspace
algorithm of eviction.py.

SWAPDB swaps the *contents* of two Keyspace objects, not the objects: sessions keep a reference
to their database's Keyspace and must see the other data after the swap, as Redis' clients do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from random import Random
from typing import Any

from jobcached.cache import expiry
from jobcached.cache.eviction import EVICTION_CLOCK_CHECK_EVERY, EVICTION_TIME_BUDGET_MS
from jobcached.cache.hotkeys import HotKeys
from jobcached.cache.keyspace import Keyspace
from jobcached.cache.setscan import SetSnapshots
from jobcached.cache.shard import CacheStats
from jobcached.clock import Clock
from jobcached.errors import OutOfMemoryError

DEFAULT_DATABASES = 16  # Redis' `databases` default

#: Called as (db index, key, "expired" | "evicted") when the engine itself drops a key.
DbRemovalListener = Callable[[int, bytes, str], None]


def _nothing() -> int:
    return 0


class Databases:
    """The server's keyspaces, indexed by database number; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        count: int = DEFAULT_DATABASES,
        shards: int = 16,
        rng: Random | None = None,
        on_removed: DbRemovalListener | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("databases must be at least 1")
        self.clock = clock
        self.rng = rng or Random()
        self.stats = CacheStats()
        self.on_removed = on_removed
        self.dbs: tuple[Keyspace, ...] = tuple(
            Keyspace(clock, shards=shards, rng=self.rng, stats=self.stats,
                     on_removed=self._removal_listener(i))
            for i in range(count))
        #: the memory limit (0: none), as every database has it: a plain attribute because the
        #: dispatcher reads it before each command that may grow memory
        self.maxmemory = 0
        #: bytes maxmemory must also hold besides the cache (the job engine's; never evicted)
        self.other_memory: Callable[[], int] = _nothing
        self._expire_next = 0  # database the next active expiry cycle starts with
        #: SSCAN's snapshots of large sets (one store for all databases: cursors name none)
        self.set_snapshots = SetSnapshots()

    def _removal_listener(self, index: int) -> Callable[[bytes, str], None]:
        def removed(key: bytes, why: str) -> None:
            if self.on_removed is not None:
                self.on_removed(index, key, why)
        return removed

    def set_hot_keys(self, hot: HotKeys | None) -> None:
        """Sample every database's key lookups into `hot` (None: stop sampling)."""
        for index, keyspace in enumerate(self.dbs):
            keyspace.on_access = None if hot is None else hot.recorder(index)

    def set_hooks(self, on_new: Callable[[int, bytes], None] | None,
                  on_miss: Callable[[int, bytes], None] | None) -> None:
        """Install (or remove, with None) the `new` and `keymiss` notification hooks of every
        database; they are called as (db index, key)."""
        for i, ks in enumerate(self.dbs):
            ks.on_new = None if on_new is None else partial(on_new, i)
            ks.on_miss = None if on_miss is None else partial(on_miss, i)

    def set_ready_hook(self, on_ready: Callable[[int, bytes], None] | None) -> None:
        """Install (or remove, with None) every database's readiness hook (Keyspace.on_ready);
        it is called as (db index, key)."""
        for i, ks in enumerate(self.dbs):
            ks.on_ready = None if on_ready is None else partial(on_ready, i)

    def __len__(self) -> int:
        return len(self.dbs)

    def __getitem__(self, index: int) -> Keyspace:
        return self.dbs[index]

    def __iter__(self) -> Iterator[Keyspace]:
        return iter(self.dbs)

    # ---- configuration ------------------------------------------------------------------------
    @property
    def policy(self) -> str:
        return self.dbs[0].policy

    def configure(self, maxmemory: int, policy: str, samples: int, lfu_log_factor: int,
                  lfu_decay_time: int) -> None:
        """Apply the memory settings (start or CONFIG SET) to every database alike."""
        self.maxmemory = maxmemory
        for ks in self.dbs:
            ks.maxmemory = maxmemory
            ks.maxmemory_samples = samples
            ks.lfu_log_factor = lfu_log_factor
            ks.lfu_decay_time = lfu_decay_time
            ks.set_policy(policy)

    def keep_expired(self, keep: bool) -> None:
        """CLIENT PAUSE: stop (or resume) deleting keys found past their TTL by reads."""
        for ks in self.dbs:
            ks.keep_expired = keep

    def update_clock(self) -> None:
        for ks in self.dbs:
            ks.update_clock()

    # ---- whole-database operations ------------------------------------------------------------
    def flushall(self) -> None:
        for ks in self.dbs:
            ks.flush()

    def swap(self, a: int, b: int) -> None:
        """SWAPDB a b: the data changes place; Keyspace objects (held by sessions) do not."""
        if a != b:
            self.dbs[a].swap_contents(self.dbs[b])

    def dbsize(self) -> int:
        return sum(ks.dbsize() for ks in self.dbs)

    # ---- memory and expiry work ---------------------------------------------------------------
    def ensure_memory(self) -> int:
        """Keyspace.ensure_memory over every database: evict until the cache fits in maxmemory
        less the jobs' memory; OutOfMemoryError if nothing can be evicted."""
        self.update_clock()
        first = self.dbs[0]
        if not first.maxmemory:
            return 0
        limit = first.maxmemory - self.other_memory()
        stats = self.stats
        if stats.used_memory <= limit:
            return 0
        if first.policy == "noeviction":
            raise OutOfMemoryError()
        started = self.clock.monotonic_ms()
        freed = 0
        weights = self._candidate_counts()  # once per call: counting costs O(databases)
        while stats.used_memory > limit:
            ks = self._eviction_source(weights)
            if ks is None:
                raise OutOfMemoryError()
            if not ks.evict_one():  # that database ran out of candidates: count again
                weights = self._candidate_counts()
                if not any(weights):
                    raise OutOfMemoryError()
                continue
            freed += 1
            if (freed % EVICTION_CLOCK_CHECK_EVERY == 0
                    and self.clock.monotonic_ms() - started >= EVICTION_TIME_BUDGET_MS):
                break
        return freed

    def _candidate_counts(self) -> list[int]:
        """Per database, the keys the policy may evict (all, or those with a TTL)."""
        if self.policy.startswith("volatile-"):
            return [ks.expires_count() for ks in self.dbs]
        return [ks.dbsize() for ks in self.dbs]

    def _eviction_source(self, weights: list[int]) -> Keyspace | None:
        """A database to evict from, weighted by its candidate keys (module docstring)."""
        total = sum(weights)
        if not total:
            return None
        if total == max(weights):  # one database holds every candidate: the common case
            return self.dbs[weights.index(total)]
        pick = self.rng.random() * total
        for ks, weight in zip(self.dbs, weights, strict=True):
            if pick < weight:
                return ks
            pick -= weight
        return next(ks for ks, weight in zip(self.dbs, weights, strict=True) if weight)

    def active_expire_cycle(self, budget_ms: int = expiry.DEFAULT_EXPIRE_BUDGET_MS) -> int:
        """One bounded step of active expiry over the databases with TTLs, round robin: each
        gets what is left of the time budget, and the next cycle starts after the last one
        visited, so a busy database 0 cannot starve the others."""
        started = self.clock.monotonic_ms()
        self.update_clock()  # also the cron's refresh of every db's cached LRU clock
        expired = 0
        n = len(self.dbs)
        for _ in range(n):
            index = self._expire_next
            self._expire_next = (index + 1) % n
            ks = self.dbs[index]
            if not ks.expires_count():
                continue
            left = budget_ms - (self.clock.monotonic_ms() - started)
            if left <= 0:
                break
            expired += ks.active_expire_cycle(budget_ms=left)
        return expired

    # ---- introspection ------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Server-wide figures for INFO memory/stats and metrics: the shared counters and
        settings, key counts summed over the databases (per-database figures such as avg_ttl
        are in `keyspace_lines`)."""
        figures = self.dbs[0].info()
        for per_db in ("avg_ttl", "expire_cycle_last_sampled", "expire_cycle_last_expired"):
            del figures[per_db]
        figures["keys"] = self.dbsize()
        figures["expires"] = sum(ks.expires_count() for ks in self.dbs)
        figures["keys_per_shard"] = [sum(len(ks.shards[i].data) for ks in self.dbs)
                                     for i in range(len(self.dbs[0].shards))]
        return figures

    def keyspace_lines(self) -> list[tuple[str, str]]:
        """INFO keyspace: `dbN` -> `keys=..,expires=..,avg_ttl=..` for each non-empty db."""
        lines = []
        for i, ks in enumerate(self.dbs):
            if ks.dbsize():
                figures = ks.info()
                lines.append((f"db{i}", f"keys={figures['keys']},expires={figures['expires']},"
                                        f"avg_ttl={figures['avg_ttl']}"))
        return lines
