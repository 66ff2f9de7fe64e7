"""Hot-key detection: a sampled Space-Saving summary of key accesses (HOTKEYS GET / RESET).

Space-Saving (Metwally, Agrawal, El Abbadi 2005) keeps `capacity` counters. A key already
counted gets +1; a new key takes a free counter, or else replaces the key with the smallest
count and inherits that count + 1 (an overestimate bounded by the smallest count). Every key
accessed more than N / capacity times in N samples is guaranteed to hold a counter, and on
skewed (Zipf) traffic the top of the summary is close to exact. The counters live in the
"stream summary" layout: buckets by count, so an increment and a replacement are O(1).

Sampling keeps the cost off the request path: a countdown in the keyspace picks on average
one lookup in `sample_every` (each gap drawn at random, so a periodic access pattern cannot
alias with it); the others cost one decrement and no call. Estimated counts are the sampled
counts times `sample_every`. Accesses are key lookups (a multi-key command counts each key it
looks up), as Valkey does.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random

from jobcached.clock import Clock

#: counters kept per reported key: the summary holds capacity = top_k * this (at least
#: MIN_CAPACITY), so the keys reported sit far above the overestimate bound N / capacity
CAPACITY_FACTOR = 16
MIN_CAPACITY = 256
#: one access in this many is counted, on average
DEFAULT_SAMPLE_EVERY = 16


class SpaceSaving:
    """The Space-Saving summary of (db, key) items, in stream-summary buckets."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.counts: dict[tuple[int, bytes], int] = {}
        self._buckets: dict[int, dict[tuple[int, bytes], None]] = {}  # count -> items
        self._min = 0
        self.total = 0

    def add(self, item: tuple[int, bytes]) -> None:
        self.total += 1
        counts, buckets = self.counts, self._buckets
        count = counts.get(item)
        if count is None:
            if len(counts) < self.capacity:
                count = self._min = 0
            else:  # replace an item with the smallest count; the newcomer inherits it
                count = self._min
                low = buckets[count]
                # any item of the smallest count will do; popitem (the newest) is O(1),
                # where the oldest (next(iter)) walks the slots its deleted fellows left
                victim = low.popitem()[0]
                del counts[victim]
                if not low:
                    del buckets[count]
        else:
            bucket = buckets[count]
            del bucket[item]
            if not bucket:
                del buckets[count]
        counts[item] = up = count + 1
        upper = buckets.get(up)
        if upper is None:
            buckets[up] = {item: None}
        else:
            upper[item] = None
        if self._min == count and count not in buckets:  # the smallest bucket emptied
            self._min = up

    def top(self, n: int) -> list[tuple[tuple[int, bytes], int]]:
        """The n items with the highest counts, highest first."""
        return sorted(self.counts.items(), key=lambda kv: -kv[1])[:n]


class HotKeys:
    """Sampled hot-key tracking for every database; see the module docstring."""

    def __init__(self, clock: Clock, top_k: int, sample_every: int = DEFAULT_SAMPLE_EVERY,
                 rng: Random | None = None) -> None:
        self.clock = clock
        self.top_k = top_k
        self.sample_every = sample_every
        self.rng = rng or Random()
        self.reset()

    def reset(self) -> None:
        self.summary = SpaceSaving(max(MIN_CAPACITY, self.top_k * CAPACITY_FACTOR))
        self.since_ms = self.clock.now_ms()

    def recorder(self, db: int) -> Callable[[bytes], int]:
        """The sampling hook of database `db` (Keyspace.on_access): records the sampled
        lookup of `key` and returns how many lookups to skip before the next sample."""
        span = 2 * self.sample_every - 1
        rand = self.rng.random

        def sampled(key: bytes) -> int:
            self.summary.add((db, key))
            return int(rand() * span) + 1
        return sampled

    def top(self, count: int | None = None) -> list[tuple[bytes, int, float]]:
        """(key, db, estimated accesses per second) of the hottest keys, at most `count`
        (default top_k), hottest first."""
        seconds = max(1, self.clock.now_ms() - self.since_ms) / 1000
        every = self.sample_every
        return [(key, db, n * every / seconds)
                for (db, key), n in self.summary.top(self.top_k if count is None else count)]

    def top_share(self) -> float:
        """The fraction of sampled accesses that went to the top_k keys (0 with none)."""
        total = self.summary.total
        if not total:
            return 0.0
        return sum(n for _, n in self.summary.top(self.top_k)) / total
