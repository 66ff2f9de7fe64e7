"""Keyspace: routing, lookups, TTL semantics, whole-key operations, typed access."""

from __future__ import annotations

from collections import deque
from random import Random

import pytest

from jobcached.cache import Keyspace, ZSet, item_size
from jobcached.cache.memory import entry_size_check
from jobcached.clock import ManualClock
from jobcached.errors import CommandError, NoSuchKeyError, WrongTypeError


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ks(clock: ManualClock) -> Keyspace:
    return Keyspace(clock, rng=Random(7))


def test_same_tag_same_shard(ks: Keyspace) -> None:
    assert ks.shard_of(b"{t}a") is ks.shard_of(b"{t}b")


def test_get_set_and_stats(ks: Keyspace) -> None:
    assert ks.lookup_read(b"k") is None
    ks.set(b"k", b"v")
    assert ks.lookup_read(b"k") == b"v"
    assert ks.get_string(b"k") == b"v"
    info = ks.info()
    assert info["keyspace_hits"] == 2
    assert info["keyspace_misses"] == 1
    assert info["keys"] == 1
    assert ks.dbsize() == 1


def test_lazy_expiry_on_every_read(ks: Keyspace, clock: ManualClock) -> None:
    ks.set(b"k", b"v", expire_at_ms=clock.now_ms() + 100)
    assert ks.ttl_ms(b"k") == 100
    clock.advance(99)
    assert ks.lookup_read(b"k") == b"v"
    clock.advance(1)  # a TTL equal to now has passed
    assert ks.exists(b"k") is False
    assert ks.lookup_read(b"k") is None
    assert ks.ttl_ms(b"k") == -2
    assert ks.info()["expired_keys"] == 1
    assert ks.stats.used_memory == 0


@pytest.mark.parametrize(
    "read",
    [
        lambda ks: ks.lookup_write(b"k"),
        lambda ks: ks.get_string(b"k"),
        lambda ks: ks.type_name(b"k") != "none" or None,
        lambda ks: ks.keys() or None,
        lambda ks: ks.scan(0, 100)[1] or None,
        lambda ks: ks.random_key(),
        lambda ks: ks.object_encoding(b"k"),
        lambda ks: ks.expire_time_ms(b"k") != -2 or None,
    ],
)
def test_expired_key_is_gone_for_every_reader(ks: Keyspace, clock: ManualClock, read) -> None:
    ks.set(b"k", b"v", expire_at_ms=clock.now_ms() + 10)
    clock.advance(10)
    assert read(ks) is None


def test_overwrite_clears_ttl_unless_keepttl(ks: Keyspace, clock: ManualClock) -> None:
    at = clock.now_ms() + 1000
    ks.set(b"k", b"v", expire_at_ms=at)
    ks.set(b"k", b"v2", keepttl=True)
    assert ks.expire_time_ms(b"k") == at
    ks.set(b"k", b"v3")
    assert ks.ttl_ms(b"k") == -1
    assert ks.info()["expires"] == 0


def test_set_with_past_expiry_deletes(ks: Keyspace, clock: ManualClock) -> None:
    ks.set(b"k", b"v")
    ks.set(b"k", b"v2", expire_at_ms=clock.now_ms())
    assert ks.lookup_read(b"k") is None
    assert ks.dbsize() == 0
    assert ks.stats.used_memory == 0


def test_keepttl_on_expired_key_starts_fresh(ks: Keyspace, clock: ManualClock) -> None:
    ks.set(b"k", b"v", expire_at_ms=clock.now_ms() + 5)
    clock.advance(5)
    ks.set(b"k", b"new", keepttl=True)
    assert ks.ttl_ms(b"k") == -1
    assert ks.lookup_read(b"k") == b"new"


def test_keepttl_same_length_counter_keeps_ttl_and_size(ks: Keyspace, clock: ManualClock
                                                         ) -> None:
    """INCR of a counter with a TTL (the short path: same length, TTL kept) changes only the
    value; once the TTL has passed, the same write starts a key without one."""
    at = clock.now_ms() + 100
    ks.set(b"n", b"10", expire_at_ms=at)
    used = ks.stats.used_memory
    ks.set(b"n", b"11", keepttl=True)
    assert ks.lookup_read(b"n") == b"11"
    assert ks.expire_time_ms(b"n") == at
    assert ks.stats.used_memory == used
    clock.advance(100)
    ks.set(b"n", b"12", keepttl=True)
    assert ks.lookup_read(b"n") == b"12"
    assert ks.ttl_ms(b"n") == -1
    assert ks.info()["expires"] == 0
    assert ks.stats.used_memory < used  # no volatile overhead any more


def test_expire_persist_ttl(ks: Keyspace, clock: ManualClock) -> None:
    assert ks.expire_at(b"nope", clock.now_ms() + 10) is False
    ks.set(b"k", b"v")
    assert ks.ttl_ms(b"k") == -1
    assert ks.expire_time_ms(b"k") == -1
    assert ks.persist(b"k") is False
    assert ks.expire_at(b"k", clock.now_ms() + 5000) is True
    assert ks.ttl_ms(b"k") == 5000
    assert ks.persist(b"k") is True
    assert ks.ttl_ms(b"k") == -1
    assert ks.expire_at(b"k", clock.now_ms()) is True  # not in the future: deleted
    assert ks.exists(b"k") is False


def test_delete(ks: Keyspace, clock: ManualClock) -> None:
    ks.set(b"a", b"1")
    ks.set(b"b", b"2", expire_at_ms=clock.now_ms() + 1)
    assert ks.delete(b"a") is True
    assert ks.delete(b"a") is False
    clock.advance(1)
    assert ks.delete(b"b") is False  # already expired: DEL returns 0, as in Redis
    assert ks.stats.used_memory == 0


def test_rename_keeps_ttl_and_value(ks: Keyspace, clock: ManualClock) -> None:
    at = clock.now_ms() + 777
    ks.set(b"src", b"v", expire_at_ms=at)
    ks.set(b"{x}dst", b"old")
    ks.rename(b"src", b"{x}dst")
    assert ks.lookup_read(b"src") is None
    assert ks.lookup_read(b"{x}dst") == b"v"
    assert ks.expire_time_ms(b"{x}dst") == at
    assert ks.dbsize() == 1
    assert ks.stats.used_memory == entry_size_check(b"{x}dst", b"v", volatile=True)
    with pytest.raises(NoSuchKeyError):
        ks.rename(b"missing", b"x")
    ks.rename(b"{x}dst", b"{x}dst")  # same name: no-op
    assert ks.lookup_read(b"{x}dst") == b"v"


def test_rename_onto_volatile_drops_its_ttl(ks: Keyspace, clock: ManualClock) -> None:
    ks.set(b"a", b"1")
    ks.set(b"b", b"2", expire_at_ms=clock.now_ms() + 50)
    ks.rename(b"a", b"b")
    assert ks.ttl_ms(b"b") == -1
    assert ks.info()["expires"] == 0


def test_copy_duplicates_containers_and_ttl(ks: Keyspace, clock: ManualClock) -> None:
    h = ks.get_hash(b"h", create=True)
    assert h is not None
    h[b"f"] = b"v"
    ks.notify_modified(b"h", item_size(b"f") + item_size(b"v"))
    ks.expire_at(b"h", clock.now_ms() + 100)
    assert ks.copy(b"h", b"h2") is True
    assert ks.copy(b"h", b"h2") is False
    assert ks.copy(b"missing", b"h3") is False
    h2 = ks.get_hash(b"h2")
    assert h2 == {b"f": b"v"} and h2 is not h
    assert ks.expire_time_ms(b"h2") == clock.now_ms() + 100
    assert ks.copy(b"h", b"h2", replace=True) is True
    with pytest.raises(CommandError):
        ks.copy(b"h", b"h")


def test_typed_access_and_wrongtype(ks: Keyspace) -> None:
    ks.set(b"s", b"v")
    for getter in (ks.get_hash, ks.get_list, ks.get_set, ks.get_zset):
        with pytest.raises(WrongTypeError):
            getter(b"s")
    assert ks.get_hash(b"none") is None
    assert isinstance(ks.get_list(b"l", create=True), deque)
    assert isinstance(ks.get_set(b"st", create=True), set)
    assert isinstance(ks.get_zset(b"z", create=True), ZSet)
    with pytest.raises(WrongTypeError):
        ks.get_string(b"l")
    assert [ks.type_name(k) for k in (b"s", b"l", b"st", b"z", b"x")] == [
        "string",
        "list",
        "set",
        "zset",
        "none",
    ]


def test_empty_container_disappears(ks: Keyspace) -> None:
    h = ks.get_hash(b"h", create=True)
    assert h is not None
    h[b"f"] = b"v"
    ks.notify_modified(b"h", item_size(b"f") + item_size(b"v"))
    assert ks.exists(b"h")
    del h[b"f"]
    ks.notify_modified(b"h", -(item_size(b"f") + item_size(b"v")))
    assert not ks.exists(b"h")
    assert ks.stats.used_memory == 0


def test_empty_string_is_a_value(ks: Keyspace) -> None:
    ks.set(b"k", b"")
    ks.notify_modified(b"k")
    assert ks.lookup_read(b"k") == b""


def test_random_key_skips_and_reaps_expired(ks: Keyspace, clock: ManualClock) -> None:
    assert ks.random_key() is None
    for i in range(50):
        ks.set(b"dead%d" % i, b"v", expire_at_ms=clock.now_ms() + 1)
    ks.set(b"live", b"v")
    clock.advance(1)
    assert ks.random_key() == b"live"
    seen = {ks.random_key() for _ in range(20)}
    assert seen == {b"live"}


def test_flush(ks: Keyspace) -> None:
    for i in range(100):
        ks.set(b"k%d" % i, b"v")
    ks.flush()
    assert ks.dbsize() == 0
    assert ks.stats.used_memory == 0
    assert ks.keys() == []


def test_object_encoding(ks: Keyspace) -> None:
    ks.set(b"i", b"12345")
    ks.set(b"e", b"x" * 44)
    ks.set(b"r", b"x" * 45)
    ks.set(b"lead0", b"012")
    assert ks.object_encoding(b"i") == "int"
    assert ks.object_encoding(b"e") == "embstr"
    assert ks.object_encoding(b"r") == "raw"
    assert ks.object_encoding(b"lead0") == "embstr"
    ks.set(b"h", {b"f": b"v"})
    ks.set(b"H", {b"f": b"v" * 65})
    ks.set(b"is", {b"1", b"2"})
    ks.set(b"hs", {b"a"})
    ks.set(b"l", deque([b"a"]))
    ks.set(b"z", ZSet({b"a": 1.0}))
    got = [ks.object_encoding(k) for k in (b"h", b"H", b"is", b"hs", b"l", b"z", b"none")]
    assert got == ["listpack", "hashtable", "intset", "hashtable", "quicklist", "listpack", None]


def test_object_idletime_and_freq(clock: ManualClock) -> None:
    ks = Keyspace(clock, rng=Random(1))
    ks.set(b"k", b"v")
    clock.advance(5000)
    assert ks.object_idletime(b"k") == 5
    with pytest.raises(CommandError):
        ks.object_freq(b"k")
    ks.set_policy("allkeys-lfu")
    with pytest.raises(CommandError):
        ks.object_idletime(b"k")
    ks.set(b"f", b"v")
    assert ks.object_freq(b"f") == 5  # LFU_INIT_VAL
    for _ in range(100):
        ks.lookup_read(b"f")
    assert ks.object_freq(b"f") > 5
    clock.advance(60_000 * 3)  # three minutes idle with decay time 1: three periods
    before = ks.object_freq(b"f")
    assert before is not None and before >= 0
    assert ks.object_freq(b"missing") is None


def test_on_removed_reports_expiry(clock: ManualClock) -> None:
    seen: list[tuple[bytes, str]] = []
    ks = Keyspace(clock, on_removed=lambda k, why: seen.append((k, why)))
    ks.set(b"k", b"v", expire_at_ms=clock.now_ms() + 1)
    clock.advance(1)
    assert ks.lookup_read(b"k") is None
    assert seen == [(b"k", "expired")]


def test_keys_pattern_and_expired(ks: Keyspace, clock: ManualClock) -> None:
    ks.set(b"user:1", b"a")
    ks.set(b"user:2", b"b")
    ks.set(b"job:1", b"c")
    ks.set(b"user:3", b"d", expire_at_ms=clock.now_ms() + 1)
    clock.advance(1)
    assert sorted(ks.keys(b"user:*")) == [b"user:1", b"user:2"]
    assert sorted(ks.keys()) == [b"job:1", b"user:1", b"user:2"]


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        Keyspace(ManualClock(), shards=0)
    with pytest.raises(ValueError):
        Keyspace(ManualClock(), policy="allkeys-lru-ish")


def test_memory_usage_and_avg_ttl(ks: Keyspace, clock: ManualClock) -> None:
    assert ks.memory_usage(b"k") is None
    ks.set(b"k", b"v" * 100, expire_at_ms=clock.now_ms() + 10_000)
    assert ks.memory_usage(b"k") == ks.stats.used_memory > 100
    info = ks.info()
    assert (info["expires"], info["avg_ttl"]) == (1, 10_000)
