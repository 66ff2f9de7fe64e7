"""The fill-lease table on a fake clock: one lease per key at a time, redeemed once, dropped
by invalidation and by time, and swept so the table stays bounded."""

from __future__ import annotations

from jobcached.cache.leases import SWEEP_MIN, Leases
from jobcached.clock import ManualClock


def test_one_lease_per_key_until_it_runs_out() -> None:
    clock = ManualClock()
    leases = Leases(clock)
    token, ttl = leases.acquire(0, b"k", 1000)
    assert token is not None and ttl == 1000
    clock.advance(400)
    assert leases.acquire(0, b"k", 1000) == (None, 600)
    assert leases.acquire(1, b"k", 1000)[0] is not None  # another database, another key
    clock.advance(600)
    again, _ = leases.acquire(0, b"k", 1000)
    assert again is not None and again != token
    assert not leases.redeem(0, b"k", token)  # the old lease ran out
    assert leases.redeem(0, b"k", again)
    assert not leases.redeem(0, b"k", again)  # a lease fills once


def test_invalidation_drops_the_lease() -> None:
    leases = Leases(ManualClock())
    token, _ = leases.acquire(0, b"k", 1000)
    assert token is not None
    leases.invalidate(0, b"k")
    assert not leases.redeem(0, b"k", token)
    token, _ = leases.acquire(3, b"k", 1000)
    assert token is not None
    leases.invalidate_db(3)
    assert not leases.table and not leases.redeem(3, b"k", token)


def test_expired_leases_are_swept() -> None:
    clock = ManualClock()
    leases = Leases(clock)
    for i in range(SWEEP_MIN):
        leases.acquire(0, b"%d" % i, 10)
    clock.advance(10)
    leases.acquire(0, b"fresh", 10)  # the table reached the sweep size: expired ones go
    assert len(leases.table) == 1
