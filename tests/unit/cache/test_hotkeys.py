"""The sampled Space-Saving summary: exact on small streams, >= 9 of the true top 10 of a
Zipf(1.1) workload over 100k keys looked up in a keyspace, bounded memory."""

from __future__ import annotations

import random
from itertools import accumulate

from jobcached.cache.hotkeys import MIN_CAPACITY, HotKeys, SpaceSaving
from jobcached.cache.keyspace import Keyspace
from jobcached.clock import ManualClock


def zipf_keys(n_keys: int, draws: int, seed: int) -> tuple[list[bytes], list[bytes]]:
    """(the keys, hottest first; `draws` accesses drawn with P(rank r) ~ r^-1.1)."""
    keys = [b"key:%d" % i for i in range(n_keys)]
    weights = list(accumulate(1 / (rank ** 1.1) for rank in range(1, n_keys + 1)))
    return keys, random.Random(seed).choices(keys, cum_weights=weights, k=draws)


def test_counts_are_exact_while_there_is_room() -> None:
    summary = SpaceSaving(4)
    for item in [(0, b"a")] * 5 + [(0, b"b")] * 3 + [(1, b"a")]:
        summary.add(item)
    assert summary.top(3) == [((0, b"a"), 5), ((0, b"b"), 3), ((1, b"a"), 1)]


def test_a_newcomer_replaces_the_smallest_count() -> None:
    summary = SpaceSaving(2)
    for key in (b"a", b"a", b"b", b"c"):
        summary.add((0, key))
    assert summary.counts == {(0, b"a"): 2, (0, b"c"): 2}  # c inherited b's 1, plus 1
    summary.add((0, b"a"))
    summary.add((0, b"d"))
    assert summary.counts == {(0, b"a"): 3, (0, b"d"): 3}


def test_zipf_top_10_over_100k_keys() -> None:
    keys, draws = zipf_keys(100_000, 200_000, seed=5)
    clock = ManualClock()
    hot = HotKeys(clock, 10, rng=random.Random(3))
    keyspace = Keyspace(clock)
    keyspace.on_access = hot.recorder(0)
    for key in draws:
        keyspace.lookup_read(key)  # misses are lookups too
    assert 200_000 / 32 < hot.summary.total < 200_000 / 8  # about one lookup in 16 sampled
    clock.advance(2000)
    top = hot.top()
    assert len(top) == 10 and all(db == 0 for _, db, _ in top)
    assert len({key for key, _, _ in top} & set(keys[:10])) >= 9
    assert top[0][0] == keys[0] and 8_000 < top[0][2] < 20_000  # ~13.5k lookups/s
    assert len(hot.summary.counts) <= MIN_CAPACITY
    assert 0.3 < hot.top_share() < 0.45  # the top 10 of Zipf(1.1) over 100k: ~36%
    hot.reset()
    assert hot.top() == [] and hot.top_share() == 0.0
