"""Readiness from the keyspace, as Redis' dbAdd signals it: a key added with a list, a sorted set
or a stream (set of a new key, rename, move, copy, restore) is reported to the readiness hook
whatever the command, a string or a hash is not, nor is a value replacing an existing key's;
and the stream operations of cache/streams.py report what wakes stream readers."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from random import Random
from typing import Any

import pytest

from jobcached.cache import ZSet
from jobcached.cache.databases import Databases
from jobcached.cache.rdbvalue import dump_value, load_value
from jobcached.cache.stream import Group, Stream
from jobcached.cache.streams import appended, destroy_group, watch_dropped
from jobcached.clock import ManualClock
from tests.unit.cache.containers import keyspace_with_readiness, walked


def a_stream() -> Stream:
    stream = Stream()
    stream.add(1 << 64, (b"f", b"v"))
    return stream


#: name -> a fresh value of that type, and whether clients block on it
VALUES: dict[str, tuple[Callable[[], Any], bool]] = {
    "list": (lambda: deque([b"a", b"b"]), True),
    "zset": (lambda: ZSet({b"m": 1.0}), True),
    "stream": (a_stream, True),
    "string": (lambda: b"text", False),
    "hash": (lambda: {b"f": b"v"}, False),
}


def databases_with_readiness() -> tuple[Databases, list[tuple[int, bytes]]]:
    """Two databases whose readiness hook records (db, key)."""
    dbs = Databases(ManualClock(1_000_000), count=2, shards=2, rng=Random(1))
    ready: list[tuple[int, bytes]] = []
    dbs.set_ready_hook(lambda db, key: ready.append((db, key)))
    return dbs, ready


@pytest.mark.parametrize("kind", VALUES)
def test_a_key_added_by_set_is_ready_and_an_overwrite_is_not(kind: str) -> None:
    make, blockable = VALUES[kind]
    ks, ready = keyspace_with_readiness()
    ks.set(b"k", make())
    assert ready == ([b"k"] if blockable else [])
    ready.clear()
    ks.set(b"k", make())  # the key exists: Redis' dbOverwrite signals nothing
    ks.set(b"gone", make(), expire_at_ms=1)  # past: nothing is added
    assert ready == []
    assert ks.stats.used_memory == walked(ks)


@pytest.mark.parametrize("kind", VALUES)
def test_rename_reports_the_new_name_then_the_old_one(kind: str) -> None:
    make, blockable = VALUES[kind]
    ks, ready = keyspace_with_readiness()
    ks.set(b"src", make())
    ks.set(b"dst", b"replaced")
    ready.clear()
    ks.rename(b"src", b"dst")
    ks.rename(b"dst", b"dst")  # to itself: nothing moves
    assert ready == ([b"dst", b"src"] if blockable else [])


@pytest.mark.parametrize("kind", VALUES)
def test_move_reports_the_key_in_the_target_then_in_the_source(kind: str) -> None:
    make, blockable = VALUES[kind]
    dbs, ready = databases_with_readiness()
    dbs[0].set(b"k", make())
    ready.clear()
    assert dbs[0].move_to(b"k", dbs[1])
    assert not dbs[1].move_to(b"missing", dbs[0])
    assert ready == ([(1, b"k"), (0, b"k")] if blockable else [])


@pytest.mark.parametrize("kind", VALUES)
def test_copy_reports_the_destination_in_its_database(kind: str) -> None:
    make, blockable = VALUES[kind]
    dbs, ready = databases_with_readiness()
    dbs[0].set(b"src", make())
    dbs[0].set(b"dst", b"replaced")
    ready.clear()
    assert dbs[0].copy(b"src", b"dst", replace=True)  # the old key goes, a new one is added
    assert dbs[0].copy(b"src", b"src", target=dbs[1])
    assert not dbs[0].copy(b"src", b"dst")  # exists, no REPLACE: nothing added
    assert ready == ([(0, b"dst"), (1, b"src")] if blockable else [])


@pytest.mark.parametrize("kind", VALUES)
def test_restore_reports_the_restored_key(kind: str) -> None:
    make, blockable = VALUES[kind]
    ks, ready = keyspace_with_readiness()
    ks.set(b"k", b"old")
    ks.delete(b"k")  # RESTORE ... REPLACE: the old key goes, then the restored one is added
    ks.set(b"k", load_value(dump_value(make())))
    assert ready == ([b"k"] if blockable else [])


def test_xadd_reports_a_new_stream_once_and_every_append() -> None:
    ks, ready = keyspace_with_readiness()
    stream = a_stream()
    appended(ks, b"s", stream, created=True)
    assert ready == [b"s"]
    stream.add(2 << 64, (b"f", b"w"))
    appended(ks, b"s", stream, created=False)
    assert ready == [b"s", b"s"]
    assert ks.stats.used_memory == walked(ks)


def test_destroying_a_group_reports_the_key() -> None:
    ks, ready = keyspace_with_readiness()
    stream = a_stream()
    stream.groups[b"g"] = Group(0, 0)
    ks.set(b"s", stream)
    ready.clear()
    destroy_group(ks, b"s", stream, b"g")
    assert stream.groups == {}
    assert ready == [b"s"]
    assert ks.stats.used_memory == walked(ks)


def test_a_watched_stream_is_reported_when_the_keyspace_drops_it() -> None:
    ks, ready = keyspace_with_readiness()
    ks.set(b"deleted", a_stream())
    ks.set(b"overwritten", a_stream())
    ks.set(b"kept", a_stream())
    ready.clear()
    watches = [watch_dropped(ks, key, ks.get_stream(key))  # type: ignore[arg-type]
               for key in (b"deleted", b"overwritten", b"kept")]
    ks.delete(b"deleted")
    ks.set(b"overwritten", b"a string")
    assert ready == [b"deleted", b"overwritten"]
    assert watches[2]() is ks.get_stream(b"kept")
