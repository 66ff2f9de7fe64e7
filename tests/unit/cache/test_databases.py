"""Databases: one memory budget across keyspaces (MOVE, COPY ... DB, SWAPDB, FLUSHALL keep
used_memory exact), eviction and active expiry that reach every database, and the SELECT
records the replication stream gets."""

from __future__ import annotations

from random import Random

import pytest

from jobcached.cache.databases import Databases
from jobcached.clock import ManualClock
from jobcached.config import Config
from jobcached.errors import OutOfMemoryError
from jobcached.server.state import ServerState

VALUE = b"v" * 100


def fresh(count: int = 4, seed: int = 1) -> tuple[ManualClock, Databases]:
    clock = ManualClock()
    return clock, Databases(clock, count=count, shards=4, rng=Random(seed))


def test_memory_is_one_counter_and_stays_exact_through_moves_copies_and_swaps() -> None:
    _, dbs = fresh()
    dbs[0].set(b"a", VALUE)
    dbs[1].set(b"b", {b"f": b"v"})
    one_each = dbs.stats.used_memory
    assert one_each == dbs[0].memory_usage(b"a") + dbs[1].memory_usage(b"b")  # type: ignore[operator]
    assert dbs[0].move_to(b"a", dbs[2])
    assert dbs.stats.used_memory == one_each
    assert dbs[1].copy(b"b", b"b", target=dbs[3])
    assert dbs.stats.used_memory == one_each + dbs[3].memory_usage(b"b")  # type: ignore[operator]
    dbs.swap(1, 3)
    dbs.swap(0, 2)
    assert dbs[0].lookup_read(b"a") == VALUE and dbs[2].dbsize() == 0
    dbs[3].flush()
    assert dbs.stats.used_memory == dbs[0].memory_usage(b"a") + dbs[1].memory_usage(b"b")  # type: ignore[operator]
    dbs.flushall()
    assert dbs.stats.used_memory == 0 and dbs.dbsize() == 0


def test_move_keeps_the_ttl_and_refuses_an_existing_target() -> None:
    clock, dbs = fresh()
    at = clock.now_ms() + 10_000
    dbs[0].set(b"k", VALUE, expire_at_ms=at)
    dbs[1].set(b"k", b"there")
    assert not dbs[0].move_to(b"k", dbs[1])
    dbs[1].delete(b"k")
    assert dbs[0].move_to(b"k", dbs[1])
    assert dbs[1].expire_time_ms(b"k") == at and dbs[1].expires_count() == 1
    assert not dbs[0].move_to(b"k", dbs[1])  # gone from the source


def test_eviction_takes_keys_from_the_database_that_holds_them() -> None:
    _, dbs = fresh()
    for i in range(200):
        dbs[3].set(b"k%d" % i, VALUE)
    dbs.configure(dbs.stats.used_memory // 2, "allkeys-lru", 5, 10, 1)
    dbs[0].set(b"new", VALUE)
    assert dbs.ensure_memory() > 0
    assert dbs.stats.used_memory <= dbs.maxmemory
    assert dbs[3].dbsize() < 200  # the victims came from database 3, where the keys are


def test_noeviction_and_nothing_volatile_are_out_of_memory() -> None:
    _, dbs = fresh()
    dbs[2].set(b"k", VALUE)
    dbs.configure(1, "noeviction", 5, 10, 1)
    with pytest.raises(OutOfMemoryError):
        dbs.ensure_memory()
    dbs.configure(1, "volatile-lru", 5, 10, 1)
    with pytest.raises(OutOfMemoryError):
        dbs.ensure_memory()


def test_active_expiry_visits_every_database() -> None:
    clock, dbs = fresh()
    for db in (1, 3):
        for i in range(10):
            dbs[db].set(b"k%d" % i, VALUE, expire_at_ms=clock.now_ms() + 10)
    clock.advance(20)
    assert dbs.active_expire_cycle() == 20
    assert dbs.dbsize() == 0 and dbs.stats.expired_keys == 20


def test_keyspace_lines_name_each_non_empty_database() -> None:
    _, dbs = fresh()
    dbs[0].set(b"a", VALUE)
    dbs[2].set(b"b", VALUE)
    dbs[2].set(b"c", VALUE)
    assert dbs.keyspace_lines() == [("db0", "keys=1,expires=0,avg_ttl=0"),
                                    ("db2", "keys=2,expires=0,avg_ttl=0")]
    assert dbs.info()["keys"] == 3


def test_the_replication_stream_selects_the_database_of_each_write() -> None:
    state = ServerState(Config(), clock=ManualClock())
    state.backlog.activate()
    state.effects.cache([b"SET", b"a", b"1"])
    state.db = 2
    state.effects.cache([b"SET", b"b", b"1"])
    state.effects.cache([b"SET", b"c", b"1"])
    state.effects.key_removed(0, b"x", "expired")  # the engine removed a key of db 0
    assert state.backlog.last(6) == [
        [b"SET", b"a", b"1"], [b"SELECT", b"2"], [b"SET", b"b", b"1"], [b"SET", b"c", b"1"],
        [b"SELECT", b"0"], [b"DEL", b"x"]]
