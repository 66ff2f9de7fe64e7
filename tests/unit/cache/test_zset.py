"""ZSet: every operation agrees with a naive sorted-list model; ZADD flag semantics."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.cache.zset import ADDED, NEG_INF, POS_INF, UPDATED, ZSet, lex_bound
from jobcached.errors import CommandError

members = st.sampled_from([b"", b"a", b"b", b"c", b"aa", b"ab", b"ba", b"bb", b"zz"])
scores = st.sampled_from([-math.inf, -2.5, -1.0, 0.0, 1.0, 1.0, 2.5, 3.0, math.inf])
ops = st.lists(st.tuples(st.sampled_from(["add", "rem", "incr"]), members, scores), max_size=40)


def model_of(z: ZSet) -> list[tuple[bytes, float]]:
    return sorted(z.as_dict().items(), key=lambda ms: (ms[1], ms[0]))


def build(operations: list[tuple[str, bytes, float]]) -> ZSet:
    z = ZSet()
    for op, m, s in operations:
        if op == "add":
            z.add(m, s)
        elif op == "rem":
            z.remove(m)
        elif not math.isinf(s):
            z.incr(m, s)
    return z


@settings(max_examples=400, deadline=None)
@given(ops, st.integers(-12, 12), st.integers(-12, 12), st.booleans())
def test_rank_ranges_agree_with_model(operations, start: int, stop: int, rev: bool) -> None:
    z = build(operations)
    model = model_of(z)
    assert list(z.items()) == model
    for i, (m, _) in enumerate(model):
        assert z.rank(m) == i
        assert z.rank(m, reverse=True) == len(model) - 1 - i
    n = len(model)
    a, b = start + n if start < 0 else start, stop + n if stop < 0 else stop
    a = max(a, 0)
    expected = [] if a > b or a >= n else model[a : min(b, n - 1) + 1]
    if rev:
        rmodel = model[::-1]
        expected = [] if a > b or a >= n else rmodel[a : min(b, n - 1) + 1]
    assert z.range_by_rank(start, stop, reverse=rev) == expected


@settings(max_examples=400, deadline=None)
@given(ops, scores, scores, st.booleans(), st.booleans(), st.integers(0, 3), st.integers(-1, 3))
def test_score_ranges_agree_with_model(operations, lo, hi, lo_x, hi_x, offset, count) -> None:
    z = build(operations)

    def inside(s: float) -> bool:
        return (lo < s if lo_x else lo <= s) and (s < hi if hi_x else s <= hi)

    matching = [ms for ms in model_of(z) if inside(ms[1])]
    assert z.count_by_score(lo, hi, lo_x, hi_x) == len(matching)
    end = None if count < 0 else offset + count
    assert z.range_by_score(lo, hi, lo_x, hi_x, False, offset, count) == matching[offset:end]
    rev = matching[::-1]
    assert z.range_by_score(lo, hi, lo_x, hi_x, True, offset, count) == rev[offset:end]
    removed = z.remove_range_by_score(lo, hi, lo_x, hi_x)
    assert removed == matching
    assert all(not inside(s) for _, s in z.items())


@settings(max_examples=300, deadline=None)
@given(
    st.sets(members),
    st.sampled_from([b"-", b"+", b"[a", b"(a", b"[b", b"(ab", b"[", b"(zz"]),
    st.sampled_from([b"-", b"+", b"[a", b"(b", b"[bb", b"(ba", b"[zz"]),
)
def test_lex_ranges_agree_with_model(ms: set[bytes], lo_arg: bytes, hi_arg: bytes) -> None:
    z = ZSet({m: 0.0 for m in ms})
    lo, hi = lex_bound(lo_arg), lex_bound(hi_arg)
    assert lo is not False and hi is not False

    def above(m: bytes) -> bool:
        if lo is NEG_INF:
            return True
        if lo is POS_INF:
            return False
        return m > lo[0] if lo[1] else m >= lo[0]

    def below(m: bytes) -> bool:
        if hi is POS_INF:
            return True
        if hi is NEG_INF:
            return False
        return m < hi[0] if hi[1] else m <= hi[0]

    expected = [(m, 0.0) for m in sorted(ms) if above(m) and below(m)]
    assert z.range_by_lex(lo, hi) == expected
    assert z.count_by_lex(lo, hi) == len(expected)
    assert z.range_by_lex(lo, hi, reverse=True) == expected[::-1]
    assert z.remove_range_by_lex(lo, hi) == expected
    assert len(z) == len(ms) - len(expected)


def test_lex_ranges_over_mixed_scores_walk_as_redis() -> None:
    """Redis walks a small set from the head to the first member >= min, then takes members
    while they are <= max (from the tail when reversed), whatever their scores."""
    z = ZSet({b"": 0.0, b"v": 1.0})
    assert z.range_by_lex(NEG_INF, (b"v", False)) == [(b"", 0.0), (b"v", 1.0)]
    z = ZSet({b"a": 0.0, b"z": 1.0, b"b": 2.0})
    upto_c = (b"c", False)
    assert z.range_by_lex(NEG_INF, upto_c) == [(b"a", 0.0)]
    assert z.count_by_lex(NEG_INF, upto_c) == 1
    assert z.range_by_lex(NEG_INF, upto_c, reverse=True) == [(b"b", 2.0), (b"z", 1.0),
                                                              (b"a", 0.0)]
    # The offset skips members without looking at the bounds, as Redis' LIMIT does.
    assert z.range_by_lex(NEG_INF, upto_c, offset=2) == [(b"b", 2.0)]
    # The last member must be >= min and the first <= max, or nothing is in range.
    assert ZSet({b"c": 0.0, b"z": 1.0, b"a": 2.0}).range_by_lex((b"b", False), (b"d", False)) == []
    assert z.remove_range_by_lex(NEG_INF, upto_c) == [(b"a", 0.0)]


def test_lex_bound_parsing() -> None:
    assert lex_bound(b"-") is NEG_INF
    assert lex_bound(b"+") is POS_INF
    assert lex_bound(b"[x") == (b"x", False)
    assert lex_bound(b"(x") == (b"x", True)
    assert lex_bound(b"x") is False


def test_zadd_flags() -> None:
    z = ZSet()
    assert z.add(b"a", 1.0) == ADDED
    assert z.add(b"a", 1.0) == 0  # same score: nothing changed
    assert z.add(b"a", 2.0, nx=True) == 0
    assert z.add(b"b", 2.0, xx=True) == 0 and b"b" not in z
    assert z.add(b"a", 0.5, gt=True) == 0
    assert z.add(b"a", 3.0, gt=True) == UPDATED
    assert z.add(b"a", 4.0, lt=True) == 0
    assert z.add(b"c", 9.0, gt=True) == ADDED  # GT/LT never prevent adding
    assert z.score(b"a") == 3.0
    assert z.incr(b"a", 1.5) == 4.5
    assert z.incr(b"a", -1.0, gt=True) is None
    assert z.incr(b"new", 1.0, xx=True) is None
    assert z.incr(b"a", 1.0, nx=True) is None
    z.add(b"inf", math.inf)
    with pytest.raises(CommandError):
        z.incr(b"inf", -math.inf)


def test_pops_and_rank_removal() -> None:
    z = ZSet({b"a": 1.0, b"b": 2.0, b"c": 3.0, b"d": 4.0})
    assert z.pop_min() == [(b"a", 1.0)]
    assert z.pop_max(2) == [(b"d", 4.0), (b"c", 3.0)]
    assert z.pop_max(5) == [(b"b", 2.0)]
    assert not z and z.pop_min() == []
    z = ZSet({b"a": 1.0, b"b": 2.0, b"c": 3.0, b"d": 4.0})
    assert z.remove_range_by_rank(1, -2) == [(b"b", 2.0), (b"c", 3.0)]
    assert z.remove_range_by_rank(5, 9) == []
    assert list(z.items(reverse=True)) == [(b"d", 4.0), (b"a", 1.0)]
    assert z.at(0) == (b"a", 1.0)
    assert z.rank(b"zz") is None
    c = z.copy()
    c.remove(b"a")
    assert b"a" in z and b"a" not in c
    assert "ZSet" in repr(z)
