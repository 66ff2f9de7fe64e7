"""The sorted-set value: a member->score dict plus a SortedList of (score, member).

Why two structures: Redis pairs a dict (ZSCORE in O(1)) with a skiplist (rank and range in
O(log n)). sortedcontainers' SortedList is the Python skiplist: a list of sorted sublists with a
positional index, O(log n) insert/remove/bisect and cheap slicing. Tuples sort by score and then by
member bytes, which is exactly Redis's order, so ZRANGE needs no custom key function. The member
and score objects are shared by both structures, so a member costs its bytes once.

Bounds in the score space use tuples too: `(score,)` sorts before every `(score, member)` and
`(score, _TOP)` after every one, so inclusive and exclusive bounds are plain bisects and +-inf needs
no special case. Every method here takes already-parsed arguments; parsing `(1.5` or `[abc` and
Redis's LIMIT rules belong to the command layer (`lex_bound()` is offered as a helper).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from typing import Any

from sortedcontainers import SortedList

from jobcached.cache.memory import zset_struct_size
from jobcached.errors import CommandError

ADDED = 1  # add(): the member was new
UPDATED = 2  # add(): an existing member's score changed


class _Top:
    """Sorts after every bytes member: `(score, TOP)` is the upper edge of a score."""

    __slots__ = ()

    def __gt__(self, other: Any) -> bool:
        return True

    def __lt__(self, other: Any) -> bool:
        return False


TOP = _Top()

LexBound = tuple[bytes, bool] | None
"""A parsed lex bound: (value, exclusive); `NEG_INF`/`POS_INF` for `-`/`+`."""
NEG_INF: LexBound = (b"", False)
POS_INF: LexBound = None


def lex_bound(arg: bytes) -> LexBound | bool:
    """Parse `-`, `+`, `[x`, `(x`; False when the argument is not a valid lex range item."""
    if arg == b"-":
        return NEG_INF
    if arg == b"+":
        return POS_INF
    if arg[:1] == b"[":
        return (arg[1:], False)
    if arg[:1] == b"(":
        return (arg[1:], True)
    return False


class ZSet:
    """A Redis sorted set. Mutations keep both structures in step; nothing else touches them."""

    __slots__ = ("_scores", "_sl")

    def __init__(self, items: dict[bytes, float] | None = None) -> None:
        self._scores: dict[bytes, float] = dict(items) if items else {}
        self._sl = SortedList((s, m) for m, s in self._scores.items())

    # ---- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._scores)

    def __bool__(self) -> bool:
        return bool(self._scores)

    def __contains__(self, member: bytes) -> bool:
        return member in self._scores

    def __repr__(self) -> str:
        return f"ZSet({list(self.items())[:8]!r}{'...' if len(self) > 8 else ''})"

    def score(self, member: bytes) -> float | None:
        return self._scores.get(member)

    def members(self) -> Iterator[bytes]:
        """Members in no particular order (for ZSCAN, SUNION-style walks, memory)."""
        return iter(self._scores)

    def as_dict(self) -> dict[bytes, float]:
        """The member->score mapping itself; read-only by contract."""
        return self._scores

    def items(self, reverse: bool = False) -> Iterator[tuple[bytes, float]]:
        """(member, score) in rank order."""
        it = reversed(self._sl) if reverse else iter(self._sl)
        return ((m, s) for s, m in it)

    def at(self, index: int) -> tuple[bytes, float]:
        """The (member, score) at rank `index` (ZRANDMEMBER)."""
        s, m = self._sl[index]
        return m, s

    def rank(self, member: bytes, reverse: bool = False) -> int | None:
        score = self._scores.get(member)
        if score is None:
            return None
        idx: int = self._sl.bisect_left((score, member))
        return len(self._scores) - 1 - idx if reverse else idx

    def range_by_rank(
        self, start: int, stop: int, reverse: bool = False
    ) -> list[tuple[bytes, float]]:
        """ZRANGE start stop: inclusive, negative indexes count from the end."""
        n = len(self._scores)
        span = rank_span(start, stop, n)
        if span is None:
            return []
        start, stop = span
        if reverse:
            chunk = self._sl[n - 1 - stop : n - start]
            chunk.reverse()
        else:
            chunk = self._sl[start : stop + 1]
        return [(m, s) for s, m in chunk]

    def _score_span(self, lo: float, hi: float, lo_excl: bool, hi_excl: bool) -> tuple[int, int]:
        sl = self._sl
        i = sl.bisect_right((lo, TOP)) if lo_excl else sl.bisect_left((lo,))
        j = sl.bisect_left((hi,)) if hi_excl else sl.bisect_right((hi, TOP))
        return i, max(i, j)

    def _lex_span(self, lo: LexBound, hi: LexBound) -> tuple[int, int]:
        """The ranks [i, j) in a lex range, forward, as Redis finds them.

        When every score is equal (the only case Redis defines), members are in lex order and
        two bisects find the span. Otherwise Redis' answer for a small set (listpack) is a
        walk: from the head to the first member >= lo, then on while members are <= hi; that
        walk is what `_lex_walk` does, in O(n)."""
        sl = self._sl
        if not sl:
            return 0, 0
        s0 = sl[0][0]
        if s0 != sl[-1][0]:
            start = self._lex_walk(lo, hi, False)
            if start is None:
                return 0, 0
            end = start
            while end < len(sl) and _lte_max(sl[end][1], hi):
                end += 1
            return start, end
        if lo is None:
            return 0, 0
        if lo is NEG_INF:
            i = 0
        else:
            i = sl.bisect_right((s0, lo[0])) if lo[1] else sl.bisect_left((s0, lo[0]))
        if hi is None:
            j = len(sl)
        elif hi is NEG_INF:
            j = 0
        else:
            j = sl.bisect_left((s0, hi[0])) if hi[1] else sl.bisect_right((s0, hi[0]))
        return i, max(i, j)

    def _lex_walk(self, lo: LexBound, hi: LexBound, reverse: bool) -> int | None:
        """The rank where Redis starts a lex range over mixed scores, or None when empty.

        Redis' zzlFirstInLexRange / zzlLastInLexRange: the range must be non-empty, the last
        member >= lo and the first <= hi; then walk from the head to the first member >= lo
        (from the tail to the first <= hi when reversed) and check the other bound there."""
        sl = self._sl
        if _lex_range_empty(lo, hi) or not _gte_min(sl[-1][1], lo) or not _lte_max(
                sl[0][1], hi):
            return None
        if reverse:
            for rank in range(len(sl) - 1, -1, -1):
                if _lte_max(sl[rank][1], hi):
                    return rank if _gte_min(sl[rank][1], lo) else None
        else:
            for rank in range(len(sl)):
                if _gte_min(sl[rank][1], lo):
                    return rank if _lte_max(sl[rank][1], hi) else None
        return None

    def _lex_walk_slice(self, lo: LexBound, hi: LexBound, reverse: bool, offset: int,
                        count: int) -> list[tuple[bytes, float]]:
        """ZRANGE BYLEX [REV] LIMIT over mixed scores, step for step as Redis' listpack code:
        the offset is skipped without looking at the bounds, then members are taken while the
        far bound holds."""
        rank = self._lex_walk(lo, hi, reverse)
        if rank is None or offset < 0:
            return []
        sl = self._sl
        step = -1 if reverse else 1
        rank += step * offset
        out: list[tuple[bytes, float]] = []
        while 0 <= rank < len(sl) and count != 0:
            score, member = sl[rank]
            if not (_gte_min(member, lo) if reverse else _lte_max(member, hi)):
                break
            out.append((member, score))
            rank += step
            count -= 1
        return out

    def _slice(
        self, i: int, j: int, reverse: bool, offset: int, count: int
    ) -> list[tuple[bytes, float]]:
        if offset < 0:
            return []
        if reverse:
            end = j - offset
            start = i if count < 0 else max(i, end - count)
            if start >= end:
                return []
            chunk = self._sl[start:end]
            chunk.reverse()
        else:
            start = i + offset
            end = j if count < 0 else min(j, start + count)
            if start >= end:
                return []
            chunk = self._sl[start:end]
        return [(m, s) for s, m in chunk]

    def range_by_score(
        self,
        lo: float,
        hi: float,
        lo_excl: bool = False,
        hi_excl: bool = False,
        reverse: bool = False,
        offset: int = 0,
        count: int = -1,
    ) -> list[tuple[bytes, float]]:
        """ZRANGEBYSCORE lo hi [LIMIT offset count]; with reverse, walk from hi down to lo."""
        i, j = self._score_span(lo, hi, lo_excl, hi_excl)
        return self._slice(i, j, reverse, offset, count)

    def scan_score_range(self, lo: float, hi: float) -> Iterator[tuple[float, bytes]]:
        """(score, member) for lo <= score < hi in rank order, lazily: GEO searches walk a
        geohash cell's score range and may stop early (COUNT ... ANY)."""
        sl = self._sl
        return sl.islice(sl.bisect_left((lo,)), sl.bisect_left((hi,)))  # type: ignore[no-any-return]

    def count_by_score(
        self, lo: float, hi: float, lo_excl: bool = False, hi_excl: bool = False
    ) -> int:
        i, j = self._score_span(lo, hi, lo_excl, hi_excl)
        return j - i

    def range_by_lex(
        self, lo: LexBound, hi: LexBound, reverse: bool = False, offset: int = 0, count: int = -1
    ) -> list[tuple[bytes, float]]:
        sl = self._sl
        if sl and sl[0][0] != sl[-1][0]:
            return self._lex_walk_slice(lo, hi, reverse, offset, count)
        i, j = self._lex_span(lo, hi)
        return self._slice(i, j, reverse, offset, count)

    def count_by_lex(self, lo: LexBound, hi: LexBound) -> int:
        i, j = self._lex_span(lo, hi)
        return j - i

    # ---- writing ------------------------------------------------------------------------------
    def add(
        self,
        member: bytes,
        score: float,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> int:
        """ZADD one member; returns ADDED, UPDATED or 0 (nothing changed).

        NX: never update; XX: never add; GT/LT: update only upwards/downwards (new members are
        still added, as in Redis).
        """
        old = self._scores.get(member)
        if old is None:
            if xx:
                return 0
            self._scores[member] = score
            self._sl.add((score, member))
            return ADDED
        if nx or score == old or (gt and score <= old) or (lt and score >= old):
            return 0
        self._sl.remove((old, member))
        self._sl.add((score, member))
        self._scores[member] = score
        return UPDATED

    def incr(
        self,
        member: bytes,
        delta: float,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> float | None:
        """ZINCRBY / ZADD INCR: the new score, or None when a flag vetoed the change."""
        old = self._scores.get(member)
        if (old is None and xx) or (old is not None and nx):
            return None
        new = delta if old is None else old + delta
        if math.isnan(new):
            raise CommandError("resulting score is not a number (NaN)")
        if old is not None and ((gt and new <= old) or (lt and new >= old)):
            return None
        self.add(member, new)
        return new

    def remove(self, member: bytes) -> bool:
        score = self._scores.pop(member, None)
        if score is None:
            return False
        self._sl.remove((score, member))
        return True

    def _delete_span(self, i: int, j: int) -> list[tuple[bytes, float]]:
        if i >= j:
            return []
        chunk = self._sl[i:j]
        del self._sl[i:j]
        scores = self._scores
        for _, m in chunk:
            del scores[m]
        return [(m, s) for s, m in chunk]

    def pop_min(self, count: int = 1) -> list[tuple[bytes, float]]:
        return self._delete_span(0, min(count, len(self._sl)))

    def pop_max(self, count: int = 1) -> list[tuple[bytes, float]]:
        n = len(self._sl)
        popped = self._delete_span(max(0, n - count), n)
        popped.reverse()
        return popped

    def remove_range_by_rank(self, start: int, stop: int) -> list[tuple[bytes, float]]:
        span = rank_span(start, stop, len(self._sl))
        if span is None:
            return []
        return self._delete_span(span[0], span[1] + 1)

    def remove_range_by_score(
        self, lo: float, hi: float, lo_excl: bool = False, hi_excl: bool = False
    ) -> list[tuple[bytes, float]]:
        return self._delete_span(*self._score_span(lo, hi, lo_excl, hi_excl))

    def remove_range_by_lex(self, lo: LexBound, hi: LexBound) -> list[tuple[bytes, float]]:
        return self._delete_span(*self._lex_span(lo, hi))

    def copy(self) -> ZSet:
        return ZSet(self._scores)

    def struct_size(self) -> int:
        """Bytes of the tables (dict, sorted sublists, tuples, floats) in O(1), without members."""
        return zset_struct_size(len(self._scores), sys.getsizeof(self._scores))


def _gte_min(member: bytes, lo: LexBound) -> bool:
    """Redis' zslLexValueGteMin: `member` is not below the range's start."""
    if lo is None:
        return False
    if lo is NEG_INF:
        return True
    return member > lo[0] if lo[1] else member >= lo[0]


def _lte_max(member: bytes, hi: LexBound) -> bool:
    """Redis' zslLexValueLteMax: `member` is not past the range's end."""
    if hi is None:
        return True
    if hi is NEG_INF:
        return False
    return member < hi[0] if hi[1] else member <= hi[0]


def _lex_range_empty(lo: LexBound, hi: LexBound) -> bool:
    """Redis' check before any lex walk: min above max, or equal with an exclusive end."""
    if lo is None or hi is NEG_INF:
        return True
    if lo is NEG_INF or hi is None:
        return False
    return lo[0] > hi[0] or (lo[0] == hi[0] and (lo[1] or hi[1]))


def rank_span(start: int, stop: int, n: int) -> tuple[int, int] | None:
    """Redis' rank range rules (ZRANGE, ZREMRANGEBYRANK, and LRANGE / LTRIM on a list of `n`):
    negative ranks count from the end, both ends inclusive, clamped to the set; None when the
    range holds nothing."""
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    start = max(start, 0)
    if start > stop or start >= n:
        return None
    return start, min(stop, n - 1)
