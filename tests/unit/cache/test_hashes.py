"""Hash operations (cache/hashes.py): results, type checks, and memory that always agrees with
a full walk, down to the removal of an emptied hash."""

from __future__ import annotations

import pytest

from jobcached.cache import Keyspace
from jobcached.cache.hashes import delete_fields, set_fields, set_new_field
from jobcached.clock import ManualClock
from jobcached.errors import WrongTypeError
from tests.unit.cache.containers import walked


def keyspace() -> Keyspace:
    return Keyspace(ManualClock(1_000_000), shards=2)


def test_set_fields_counts_new_fields_and_accounts_for_updates() -> None:
    ks = keyspace()
    assert set_fields(ks, b"h", [(b"a", b"1"), (b"b", b"2")]) == 2
    assert set_fields(ks, b"h", [(b"a", b"a much longer value than before"), (b"c", b"3")]) == 1
    assert ks.get_hash(b"h") == {b"a": b"a much longer value than before", b"b": b"2",
                                 b"c": b"3"}
    assert ks.stats.used_memory == walked(ks)


def test_set_new_field_keeps_an_existing_field() -> None:
    ks = keyspace()
    assert set_new_field(ks, b"h", b"f", b"first")
    assert not set_new_field(ks, b"h", b"f", b"second")
    assert ks.get_hash(b"h") == {b"f": b"first"}
    assert ks.stats.used_memory == walked(ks)


def test_delete_fields_reports_what_went_and_drops_an_emptied_hash() -> None:
    ks = keyspace()
    set_fields(ks, b"h", [(b"a", b"1"), (b"b", b"2")])
    assert delete_fields(ks, b"h", [b"a", b"missing"]) == ([b"a"], 1)
    assert ks.stats.used_memory == walked(ks)
    assert delete_fields(ks, b"h", [b"b"]) == ([b"b"], 0)
    assert ks.dbsize() == 0
    assert ks.stats.used_memory == 0
    assert delete_fields(ks, b"h", [b"b"]) == ([], 0)


def test_writes_to_a_key_of_another_type_are_refused_unchanged() -> None:
    ks = keyspace()
    ks.set(b"s", b"string")
    with pytest.raises(WrongTypeError):
        set_fields(ks, b"s", [(b"f", b"v")])
    with pytest.raises(WrongTypeError):
        delete_fields(ks, b"s", [b"f"])
    assert ks.get_string(b"s") == b"string"
