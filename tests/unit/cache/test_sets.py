"""Set operations (cache/sets.py): results, type checks, SPOP's draws from the injected rng, and
memory that always agrees with a full walk."""

from __future__ import annotations

from random import Random

import pytest

from jobcached.cache import Keyspace
from jobcached.cache.sets import (
    SAMPLE_MAX_MEMBERS,
    add_members,
    pop_members,
    remove_members,
)
from jobcached.clock import ManualClock
from jobcached.errors import WrongTypeError
from tests.unit.cache.containers import walked


def keyspace(seed: int = 7) -> Keyspace:
    return Keyspace(ManualClock(1_000_000), shards=2, rng=Random(seed))


def test_add_and_remove_count_what_changed_and_drop_an_emptied_set() -> None:
    ks = keyspace()
    assert add_members(ks, b"s", [b"a", b"b", b"a"]) == 2
    assert add_members(ks, b"s", [b"b", b"c"]) == 1
    assert ks.stats.used_memory == walked(ks)
    assert remove_members(ks, b"s", [b"a", b"zz"]) == (1, 2)
    assert ks.stats.used_memory == walked(ks)
    assert remove_members(ks, b"s", [b"b", b"c"]) == (2, 0)
    assert ks.dbsize() == 0
    assert ks.stats.used_memory == 0
    assert remove_members(ks, b"s", [b"b"]) == (0, 0)


def test_writes_to_a_key_of_another_type_are_refused_unchanged() -> None:
    ks = keyspace()
    ks.set(b"str", b"x")
    for write in (lambda: add_members(ks, b"str", [b"m"]),
                  lambda: remove_members(ks, b"str", [b"m"]),
                  lambda: pop_members(ks, b"str", 1)):
        with pytest.raises(WrongTypeError):
            write()
    assert ks.get_string(b"str") == b"x"


def test_pop_members_draws_from_the_keyspace_rng() -> None:
    first, second = keyspace(seed=3), keyspace(seed=3)
    members = [b"m%d" % i for i in range(50)]
    for ks in (first, second):
        add_members(ks, b"s", members)
    popped = pop_members(first, b"s", 5)
    assert popped is not None
    assert popped == pop_members(second, b"s", 5)
    assert popped[1] == 45
    assert not set(popped[0]) & (first.get_set(b"s") or set())
    assert first.stats.used_memory == walked(first)


def test_pop_members_edge_cases() -> None:
    ks = keyspace()
    assert pop_members(ks, b"s", 1) is None
    add_members(ks, b"s", [b"a", b"b"])
    assert pop_members(ks, b"s", 0) == ([], 2)
    popped = pop_members(ks, b"s", 10)
    assert popped is not None
    assert sorted(popped[0]) == [b"a", b"b"]
    assert popped[1] == 0
    assert ks.dbsize() == 0


def test_pop_members_from_a_large_set_takes_hash_order() -> None:
    ks = keyspace()
    add_members(ks, b"s", [b"m%d" % i for i in range(SAMPLE_MAX_MEMBERS + 10)])
    popped = pop_members(ks, b"s", 3)
    assert popped is not None
    assert len(popped[0]) == 3
    assert popped[1] == SAMPLE_MAX_MEMBERS + 7
    assert ks.stats.used_memory == walked(ks)
