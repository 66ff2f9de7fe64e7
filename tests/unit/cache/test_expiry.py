"""Active expiry: bounded steps, round robin over shards, nothing live is touched."""

from __future__ import annotations

from random import Random

from jobcached.cache import Keyspace
from jobcached.cache.expiry import ACTIVE_EXPIRE_KEYS_PER_LOOP
from jobcached.clock import ManualClock

MASS_KEYS = 100_000
STEP_SAMPLES = 2_000


class SteppingClock(ManualClock):
    """Each monotonic read costs 1 ms: a stand-in for a slow machine, to test time budgets."""

    def monotonic_ms(self) -> int:
        self.advance(1)
        return super().monotonic_ms()


def test_mass_expiry_proceeds_in_bounded_steps() -> None:
    clock = ManualClock()
    ks = Keyspace(clock, rng=Random(1))
    for i in range(1000):
        ks.set(b"live:%d" % i, b"v")
    live_memory = ks.stats.used_memory
    at = clock.now_ms() + 1000
    for i in range(MASS_KEYS):
        ks.set(b"doomed:%d" % i, b"v", expire_at_ms=at)
    clock.advance(1000)  # a hundred thousand keys expire in the same millisecond
    assert ks.lookup_read(b"doomed:1") is None  # invisible at once, thanks to lazy expiry

    steps = 0
    total = 1  # the lazily expired one
    while ks.info()["expires"]:
        got = ks.active_expire_cycle(max_samples=STEP_SAMPLES)
        assert got <= STEP_SAMPLES + ACTIVE_EXPIRE_KEYS_PER_LOOP  # each step is bounded
        total += got
        steps += 1
        assert steps < 10 * MASS_KEYS // STEP_SAMPLES
    assert total == MASS_KEYS
    assert ks.info()["expired_keys"] == MASS_KEYS
    assert ks.dbsize() == 1000
    assert ks.stats.used_memory == live_memory
    assert steps >= MASS_KEYS // (STEP_SAMPLES + ACTIVE_EXPIRE_KEYS_PER_LOOP)


def test_time_budget_stops_a_cycle() -> None:
    clock = SteppingClock()
    ks = Keyspace(clock, rng=Random(1))
    for i in range(50_000):
        ks.set(b"k%d" % i, b"v", expire_at_ms=clock.now_ms() + 10)
    clock.advance(10)
    got = ks.active_expire_cycle(budget_ms=5, max_samples=10**9)
    assert 0 < got <= 6 * ACTIVE_EXPIRE_KEYS_PER_LOOP


def test_live_volatile_keys_survive_and_dead_ones_mostly_go() -> None:
    clock = ManualClock()
    ks = Keyspace(clock, rng=Random(2))
    for i in range(20_000):
        ttl = 100 if i % 2 else 1_000_000
        ks.set(b"k%d" % i, b"v", expire_at_ms=clock.now_ms() + ttl)
    clock.advance(100)
    for _ in range(200):
        ks.active_expire_cycle(max_samples=1000)
    info = ks.info()
    # Sampling stops on a shard once <= 25% of a sample is dead: a few dead keys may linger.
    assert 10_000 <= info["expires"] <= 10_000 * 1.34
    assert all(ks.lookup_read(b"k%d" % i) == b"v" for i in range(0, 20_000, 2))


def test_small_shards_are_checked_exhaustively() -> None:
    clock = ManualClock()
    ks = Keyspace(clock, rng=Random(3))
    for i in range(5):
        ks.set(b"k%d" % i, b"v", expire_at_ms=clock.now_ms() + 1)
    clock.advance(1)
    assert ks.active_expire_cycle() == 5
    assert ks.dbsize() == 0


def test_cycle_resumes_where_it_stopped() -> None:
    clock = ManualClock()
    ks = Keyspace(clock, rng=Random(4))
    for i in range(10_000):
        ks.set(b"k%d" % i, b"v", expire_at_ms=clock.now_ms() + 1)
    clock.advance(1)
    per_shard_before = ks.info()["keys_per_shard"]
    ks.active_expire_cycle(max_samples=100)
    per_shard_after = ks.info()["keys_per_shard"]
    changed = [
        i for i, (a, b) in enumerate(zip(per_shard_before, per_shard_after, strict=True)) if a != b
    ]
    assert changed == [0]  # the first step stays on shard 0 while it is mostly dead
    while ks.dbsize():
        ks.active_expire_cycle(max_samples=100)
    assert ks.info()["expired_keys"] == 10_000


def test_expired_keys_reported_to_listener() -> None:
    clock = ManualClock()
    seen: list[tuple[bytes, str]] = []
    ks = Keyspace(clock, on_removed=lambda k, why: seen.append((k, why)))
    ks.set(b"a", b"v", expire_at_ms=clock.now_ms() + 1)
    clock.advance(1)
    ks.active_expire_cycle()
    assert seen == [(b"a", "expired")]
