"""Sorted-set range commands: the ZRANGE family, ZRANGESTORE, ZCOUNT, ZLEXCOUNT and
ZREMRANGEBY*.

Split from zsets.py (which holds the shared conventions: score parsing, reply shapes) because
ranges are a family of their own: one generic `_zrange` serves all six range readers, as
Redis' zrangeGenericCommand does.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from jobcached.cache import zsets
from jobcached.cache.zset import LexBound, ZSet, lex_bound
from jobcached.commands.args import to_int, to_range_double
from jobcached.commands.registry import DENYOOM, FAST, READONLY, WRITE, command
from jobcached.commands.zsets import pairs
from jobcached.errors import CommandError, SyntaxErr
from jobcached.server.notify import GENERIC, ZSET, notify, notify_if_gone
from jobcached.server.session import Session

# ------------------------------------------------------------------------------- ranges

RANK, SCORE, LEX = "rank", "score", "lex"


def _score_range(lo: bytes, hi: bytes) -> tuple[float, float, bool, bool]:
    """Both ends of a score range (`(` makes an end exclusive), as zslParseRange."""
    ends = []
    for raw in (lo, hi):
        exclusive = raw[:1] == b"("
        value = to_range_double(raw[1:] if exclusive else raw)
        if value is None:
            raise CommandError("min or max is not a float")
        ends.append((value, exclusive))
    (lo_v, lo_x), (hi_v, hi_x) = ends
    return lo_v, hi_v, lo_x, hi_x


def _lex_range(lo: bytes, hi: bytes) -> tuple[LexBound, LexBound]:
    lo_b, hi_b = lex_bound(lo), lex_bound(hi)
    if lo_b is False or hi_b is False:
        raise CommandError("min or max not valid string range item")
    return lo_b, hi_b  # type: ignore[return-value]


@overload
def _zrange(s: Session, argv: list[bytes], rangetype: str | None = None,
            reverse: bool | None = None, store: Literal[False] = False) -> list[Any]: ...
@overload
def _zrange(s: Session, argv: list[bytes], rangetype: str | None = None,
            reverse: bool | None = None, *, store: Literal[True]) -> int: ...
def _zrange(s: Session, argv: list[bytes], rangetype: str | None = None,
            reverse: bool | None = None, store: bool = False) -> Any:
    """The ZRANGE family and ZRANGESTORE, parsed as Redis' zrangeGenericCommand: the old
    commands preset the range type and direction, and then REV / BYSCORE / BYLEX are syntax
    errors; ZRANGESTORE's arguments start one later and take no WITHSCORES."""
    first = 2 if store else 1
    key, lo, hi = argv[first], argv[first + 1], argv[first + 2]
    withscores = False
    offset, limit = 0, -1
    i = first + 3
    while i < len(argv):
        option = argv[i].upper()
        left = len(argv) - i - 1
        if option == b"WITHSCORES" and not store:
            withscores = True
        elif option == b"LIMIT" and left >= 2:
            offset, limit = to_int(argv[i + 1]), to_int(argv[i + 2])
            i += 2
        elif option == b"REV" and reverse is None:
            reverse = True
        elif option == b"BYSCORE" and rangetype is None:
            rangetype = SCORE
        elif option == b"BYLEX" and rangetype is None:
            rangetype = LEX
        else:
            raise SyntaxErr()
        i += 1
    reverse = bool(reverse)
    rangetype = rangetype or RANK
    if limit != -1 and rangetype == RANK:
        raise CommandError("syntax error, LIMIT is only supported in combination with either "
                           "BYSCORE or BYLEX")
    if withscores and rangetype == LEX:
        raise CommandError("syntax error, WITHSCORES not supported in combination with BYLEX")
    if reverse and rangetype != RANK:
        lo, hi = hi, lo  # the range is given as max, min
    if rangetype == RANK:
        start, stop = to_int(lo), to_int(hi)
    elif rangetype == SCORE:
        score_range = _score_range(lo, hi)
    else:
        lex_range = _lex_range(lo, hi)
    zset = s.keyspace.get_zset(key)
    if zset is None:
        items = []
    elif rangetype == RANK:
        items = zset.range_by_rank(start, stop, reverse)
    elif rangetype == SCORE:
        items = zset.range_by_score(*score_range, reverse=reverse, offset=offset, count=limit)
    else:
        items = zset.range_by_lex(*lex_range, reverse=reverse, offset=offset, count=limit)
    if store:
        return _store_range(s, argv, items)
    if withscores:
        return pairs(s, items)
    return [m for m, _ in items]


@command("ZRANGE", arity=-4, flags=READONLY, group="sorted-set", keys=(1, 1, 1))
def zrange(s: Session, argv: list[bytes]) -> list[Any]:
    """ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]

    Members in a range: by rank (default; negative ranks count from the end), by score
    (`(` before a bound makes it exclusive, `-inf` / `+inf` are the ends) or by lex order
    (`[a`, `(a`, `-`, `+`; meaningful when all scores are equal). REV walks from the highest
    (the range is then given as max, min for BYSCORE / BYLEX). LIMIT (BYSCORE / BYLEX only)
    skips `offset` members and returns up to `count` (negative: all).

    Reply: array of members; with WITHSCORES, RESP3 [member, score] pairs, RESP2 member,
    score, ... flat.
    Errors: `syntax error`; `syntax error, LIMIT is only supported in combination with either
    BYSCORE or BYLEX`; `syntax error, WITHSCORES not supported in combination with BYLEX`;
    `min or max is not a float`; `min or max not valid string range item`; not an integer;
    `WRONGTYPE`.
    """
    return _zrange(s, argv)


def _store_range(s: Session, argv: list[bytes], items: list[tuple[bytes, float]]) -> int:
    """ZRANGESTORE's write: the range replaces destination (whatever its type, TTL cleared), an
    empty range deletes it; the command propagates itself (deterministic given the source)."""
    dst = argv[1]
    if zsets.store(s.keyspace, dst, ZSet(dict(items))):
        if items:
            notify(s.server, ZSET, b"zrangestore", dst)
        else:
            notify(s.server, GENERIC, b"del", dst)
    return len(items)


@command("ZRANGESTORE", arity=-5, flags=WRITE | DENYOOM, group="sorted-set", keys=(1, 2, 1))
def zrangestore(s: Session, argv: list[bytes]) -> int:
    """ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]

    Store a range of src (chosen as ZRANGE chooses it) at dst, overwriting it whatever its
    type; an empty range (or a missing src) deletes dst.

    Reply: integer: how many members were stored.
    Errors: as ZRANGE (WITHSCORES is a syntax error); `WRONGTYPE` (src).
    """
    return _zrange(s, argv, store=True)


@command("ZREVRANGE", arity=-4, flags=READONLY, group="sorted-set", keys=(1, 1, 1))
def zrevrange(s: Session, argv: list[bytes]) -> list[Any]:
    """ZREVRANGE key start stop [WITHSCORES]

    ZRANGE key start stop REV: members by rank, highest score first.

    Reply: as ZRANGE.
    Errors: as ZRANGE.
    """
    return _zrange(s, argv, RANK, reverse=True)


@command("ZRANGEBYSCORE", arity=-4, flags=READONLY, group="sorted-set", keys=(1, 1, 1))
def zrangebyscore(s: Session, argv: list[bytes]) -> list[Any]:
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]

    ZRANGE key min max BYSCORE.

    Reply: as ZRANGE.
    Errors: as ZRANGE.
    """
    return _zrange(s, argv, SCORE, reverse=False)


@command("ZREVRANGEBYSCORE", arity=-4, flags=READONLY, group="sorted-set", keys=(1, 1, 1))
def zrevrangebyscore(s: Session, argv: list[bytes]) -> list[Any]:
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]

    ZRANGE key max min BYSCORE REV.

    Reply: as ZRANGE.
    Errors: as ZRANGE.
    """
    return _zrange(s, argv, SCORE, reverse=True)


@command("ZRANGEBYLEX", arity=-4, flags=READONLY, group="sorted-set", keys=(1, 1, 1))
def zrangebylex(s: Session, argv: list[bytes]) -> list[Any]:
    """ZRANGEBYLEX key min max [LIMIT offset count]

    ZRANGE key min max BYLEX.

    Reply: as ZRANGE.
    Errors: as ZRANGE.
    """
    return _zrange(s, argv, LEX, reverse=False)


@command("ZREVRANGEBYLEX", arity=-4, flags=READONLY, group="sorted-set", keys=(1, 1, 1))
def zrevrangebylex(s: Session, argv: list[bytes]) -> list[Any]:
    """ZREVRANGEBYLEX key max min [LIMIT offset count]

    ZRANGE key max min BYLEX REV.

    Reply: as ZRANGE.
    Errors: as ZRANGE.
    """
    return _zrange(s, argv, LEX, reverse=True)


@command("ZCOUNT", arity=4, flags=READONLY | FAST, group="sorted-set", keys=(1, 1, 1))
def zcount(s: Session, argv: list[bytes]) -> int:
    """ZCOUNT key min max

    How many members have a score within the range (bounds as ZRANGE BYSCORE).

    Reply: integer.
    Errors: `min or max is not a float`; `WRONGTYPE`.
    """
    score_range = _score_range(argv[2], argv[3])
    zset = s.keyspace.get_zset(argv[1])
    return 0 if zset is None else zset.count_by_score(*score_range)


@command("ZLEXCOUNT", arity=4, flags=READONLY | FAST, group="sorted-set", keys=(1, 1, 1))
def zlexcount(s: Session, argv: list[bytes]) -> int:
    """ZLEXCOUNT key min max

    How many members are within the lex range (bounds as ZRANGE BYLEX).

    Reply: integer.
    Errors: `min or max not valid string range item`; `WRONGTYPE`.
    """
    lex_range = _lex_range(argv[2], argv[3])
    zset = s.keyspace.get_zset(argv[1])
    return 0 if zset is None else zset.count_by_lex(*lex_range)


# ------------------------------------------------------------------------------- removing


_REMOVE_EVENTS = {RANK: b"zremrangebyrank", SCORE: b"zremrangebyscore",
                  LEX: b"zremrangebylex"}


def _remove_range(s: Session, argv: list[bytes], rangetype: str) -> int:
    if rangetype == RANK:
        start, stop = to_int(argv[2]), to_int(argv[3])
    elif rangetype == SCORE:
        score_range = _score_range(argv[2], argv[3])
    else:
        lex_range = _lex_range(argv[2], argv[3])
    key = argv[1]
    ks = s.keyspace
    if rangetype == RANK:
        removed, left = zsets.remove_range_by_rank(ks, key, start, stop)
    elif rangetype == SCORE:
        removed, left = zsets.remove_range_by_score(ks, key, *score_range)
    else:
        removed, left = zsets.remove_range_by_lex(ks, key, *lex_range)
    if removed:
        notify(s.server, ZSET, _REMOVE_EVENTS[rangetype], key)
        notify_if_gone(s.server, key, left)
    return removed


@command("ZREMRANGEBYRANK", arity=4, flags=WRITE, group="sorted-set", keys=(1, 1, 1))
def zremrangebyrank(s: Session, argv: list[bytes]) -> int:
    """ZREMRANGEBYRANK key start stop

    Remove the members with rank from start to stop (both included, negative from the end).

    Reply: integer: how many were removed.
    Errors: `value is not an integer or out of range`; `WRONGTYPE`.
    """
    return _remove_range(s, argv, RANK)


@command("ZREMRANGEBYSCORE", arity=4, flags=WRITE, group="sorted-set", keys=(1, 1, 1))
def zremrangebyscore(s: Session, argv: list[bytes]) -> int:
    """ZREMRANGEBYSCORE key min max

    Remove the members with a score within the range (bounds as ZRANGE BYSCORE).

    Reply: integer: how many were removed.
    Errors: `min or max is not a float`; `WRONGTYPE`.
    """
    return _remove_range(s, argv, SCORE)


@command("ZREMRANGEBYLEX", arity=4, flags=WRITE, group="sorted-set", keys=(1, 1, 1))
def zremrangebylex(s: Session, argv: list[bytes]) -> int:
    """ZREMRANGEBYLEX key min max

    Remove the members within the lex range (bounds as ZRANGE BYLEX).

    Reply: integer: how many were removed.
    Errors: `min or max not valid string range item`; `WRONGTYPE`.
    """
    return _remove_range(s, argv, LEX)
