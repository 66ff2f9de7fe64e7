"""List operations (cache/lists.py): results, type checks before any change, readiness reported
exactly where Redis signals it, and memory that always agrees with a full walk."""

from __future__ import annotations

import pytest

from jobcached.cache.lists import (
    insert,
    move,
    pop,
    push,
    remove,
    set_element,
    trim,
)
from jobcached.cache.zset import rank_span
from jobcached.errors import WrongTypeError
from tests.unit.cache.containers import keyspace_with_readiness, walked


def test_push_creates_orders_and_reports_readiness() -> None:
    ks, ready = keyspace_with_readiness()
    assert push(ks, b"l", [b"a", b"b"], left=True) == 2
    assert push(ks, b"l", [b"c"], left=False) == 3
    assert list(ks.get_list(b"l") or ()) == [b"b", b"a", b"c"]
    assert push(ks, b"missing", [b"x"], left=True, only_existing=True) == 0
    assert ks.get_list(b"missing") is None
    assert ready == [b"l", b"l"]
    assert ks.stats.used_memory == walked(ks)


def test_pop_takes_from_either_end_and_drops_an_emptied_list() -> None:
    ks, ready = keyspace_with_readiness()
    assert pop(ks, b"l", left=True, count=1) is None
    push(ks, b"l", [b"a", b"b", b"c"], left=False)
    assert pop(ks, b"l", left=True, count=0) == ([], 3)
    assert pop(ks, b"l", left=True, count=1) == ([b"a"], 2)
    assert ks.stats.used_memory == walked(ks)
    assert pop(ks, b"l", left=False, count=5) == ([b"c", b"b"], 0)
    assert ks.dbsize() == 0
    assert ks.stats.used_memory == 0
    assert ready == [b"l"]


def test_move_between_lists_and_rotation() -> None:
    ks, ready = keyspace_with_readiness()
    push(ks, b"src", [b"a", b"b"], left=False)
    ready.clear()
    assert move(ks, b"src", b"src", from_left=True, to_left=False) == (b"a", 2)
    assert list(ks.get_list(b"src") or ()) == [b"b", b"a"]
    assert move(ks, b"src", b"dst", from_left=False, to_left=True) == (b"a", 1)
    assert move(ks, b"src", b"dst", from_left=True, to_left=True) == (b"b", 0)
    assert ks.get_list(b"src") is None
    assert list(ks.get_list(b"dst") or ()) == [b"b", b"a"]
    assert move(ks, b"src", b"dst", from_left=True, to_left=True) is None
    assert ready == [b"src", b"dst", b"dst"]
    assert ks.stats.used_memory == walked(ks)


def test_move_checks_the_destination_type_before_popping() -> None:
    ks, _ = keyspace_with_readiness()
    push(ks, b"src", [b"a"], left=False)
    ks.set(b"str", b"x")
    with pytest.raises(WrongTypeError):
        move(ks, b"src", b"str", from_left=True, to_left=True)
    assert list(ks.get_list(b"src") or ()) == [b"a"]


def test_push_and_pop_refuse_a_key_of_another_type() -> None:
    ks, ready = keyspace_with_readiness()
    ks.set(b"str", b"x")
    with pytest.raises(WrongTypeError):
        push(ks, b"str", [b"a"], left=True)
    with pytest.raises(WrongTypeError):
        push(ks, b"str", [b"a"], left=True, only_existing=True)
    with pytest.raises(WrongTypeError):
        pop(ks, b"str", left=True, count=1)
    assert ks.get_string(b"str") == b"x"
    assert ready == []


def test_in_place_edits_do_not_report_readiness() -> None:
    ks, ready = keyspace_with_readiness()
    push(ks, b"l", [b"a", b"b", b"a", b"c", b"a"], left=False)
    ready.clear()
    assert set_element(ks, b"l", -1, b"z") is True
    assert set_element(ks, b"l", 5, b"z") is False
    assert set_element(ks, b"nothing", 0, b"z") is None
    assert insert(ks, b"l", b"b", b"new", before=False) == 6
    assert insert(ks, b"l", b"absent", b"new", before=True) == -1
    assert insert(ks, b"nothing", b"b", b"new", before=True) == 0
    assert remove(ks, b"l", -1, b"a") == (1, 5)
    assert list(ks.get_list(b"l") or ()) == [b"a", b"b", b"new", b"c", b"z"]
    assert ks.stats.used_memory == walked(ks)
    assert remove(ks, b"l", 0, b"a") == (1, 4)
    assert ready == []
    assert ks.stats.used_memory == walked(ks)


def test_trim_keeps_a_range_or_deletes_the_key() -> None:
    ks, _ = keyspace_with_readiness()
    assert trim(ks, b"l", 0, -1) is None
    push(ks, b"l", [b"a", b"b", b"c", b"d"], left=False)
    assert trim(ks, b"l", 0, -1) == (0, 4)
    assert trim(ks, b"l", 1, 2) == (2, 2)
    assert list(ks.get_list(b"l") or ()) == [b"b", b"c"]
    assert ks.stats.used_memory == walked(ks)
    assert trim(ks, b"l", 5, 10) == (2, 0)
    assert ks.dbsize() == 0


def test_list_index_spans_follow_redis_rules() -> None:
    assert rank_span(0, -1, 3) == (0, 2)
    assert rank_span(-100, 100, 3) == (0, 2)
    assert rank_span(2, 1, 3) is None
    assert rank_span(3, 5, 3) is None
