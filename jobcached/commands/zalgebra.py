"""Sorted-set algebra: ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD.

One generic function serves all seven, as Redis 7.0's zunionInterDiffGenericCommand does, and it
checks things in the same order: numkeys, then every source's type (before the options, so a
wrong type beats a syntax error), then the options. Plain sets are accepted as sources, each
member scoring 1.

Scores follow Redis' arithmetic exactly, because the order of float additions shows in the
result (inf + -inf): a source's score is multiplied by its weight (NaN, from 0 * inf, becomes 0),
and ZUNION / ZINTER visit the sources from the smallest to the largest (a stable sort, as
glibc's qsort is for these), aggregating with SUM (a NaN sum becomes 0), MIN or MAX. ZDIFF keeps
the first source's scores and takes no WEIGHTS or AGGREGATE.

The STORE forms propagate themselves: given the same sources, which a follower holds, they are
deterministic. The reply forms build no sorted set: they sort (member, score) pairs, in the
order a sorted set would hold them.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from jobcached.cache import zsets
from jobcached.cache.zset import ZSet
from jobcached.commands.args import to_count, to_double, to_int
from jobcached.commands.registry import DENYOOM, READONLY, WRITE, command
from jobcached.commands.zsets import pairs
from jobcached.errors import CommandError, SyntaxErr, WrongTypeError
from jobcached.server.notify import GENERIC, ZSET, notify
from jobcached.server.session import Session

UNION, INTER, DIFF = "union", "inter", "diff"
_SUM, _MIN, _MAX = b"SUM", b"MIN", b"MAX"
_STORE_EVENTS = {UNION: b"zunionstore", INTER: b"zinterstore", DIFF: b"zdiffstore"}

Source = dict[bytes, float] | set[bytes] | None


def _scores(source: Source) -> dict[bytes, float]:
    """A source as member -> score: a sorted set's own scores, a set's members scoring 1."""
    if source is None:
        return {}
    if isinstance(source, set):
        return dict.fromkeys(source, 1.0)
    return source


def _lookup(s: Session, key: bytes) -> Source:
    """A source key: a sorted set (its scores), a set, or None; WRONGTYPE for anything else.
    A read lookup even for the STORE forms (a miss counts, and is a `keymiss` event), as in
    Redis 7.0."""
    value = s.keyspace.lookup_read(key)
    if value is None or isinstance(value, set):
        return value
    if isinstance(value, ZSet):
        return value.as_dict()
    raise WrongTypeError()


def _aggregate(target: float, value: float, how: bytes) -> float:
    """Redis' zunionInterAggregate (NaN comparisons keep the target, as in C)."""
    if how == _SUM:
        total = target + value
        return 0.0 if total != total else total
    if how == _MIN:
        return value if value < target else target
    return value if value > target else target


def _weighted(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if value != value else value


def _combine(op: str, sources: list[Source], weights: list[float], how: bytes,
             limit: int | None) -> dict[bytes, float] | int:
    """The result as member -> score; with `limit` (ZINTERCARD) only the count, stopping at a
    non-zero limit."""
    order = list(range(len(sources)))
    if op != DIFF:
        order.sort(key=lambda i: len(sources[i] or ()))  # a missing key counts as empty
    maps = [_scores(sources[i]) for i in order]
    ws = [weights[i] for i in order]
    result: dict[bytes, float] = {}
    if op == INTER:
        first, rest = maps[0], list(zip(maps[1:], ws[1:], strict=True))
        found = 0
        for member, score in first.items():
            total = _weighted(score, ws[0])
            for other, weight in rest:
                value = other.get(member)
                if value is None:
                    break
                total = _aggregate(total, value * weight, how)
            else:
                if limit is not None:
                    found += 1
                    if found == limit:
                        break
                else:
                    result[member] = total
        if limit is not None:
            return found
    elif op == UNION:
        for scores, weight in zip(maps, ws, strict=True):
            for member, score in scores.items():
                value = _weighted(score, weight)
                old = result.get(member)
                result[member] = value if old is None else _aggregate(old, value, how)
    else:
        others = maps[1:]
        result = {m: score for m, score in maps[0].items()
                  if not any(m in other for other in others)}
    return result


class _WeightError(CommandError):
    def __init__(self) -> None:
        super().__init__("weight value is not a float")


@overload
def _algebra(s: Session, argv: list[bytes], op: str, store: Literal[False] = False,
             card: Literal[False] = False) -> list[Any]: ...
@overload
def _algebra(s: Session, argv: list[bytes], op: str, *, store: Literal[True]) -> int: ...
@overload
def _algebra(s: Session, argv: list[bytes], op: str, *, card: Literal[True]) -> int: ...
def _algebra(s: Session, argv: list[bytes], op: str, store: bool = False,
             card: bool = False) -> Any:
    """ZUNION / ZINTER / ZDIFF [STORE] and ZINTERCARD, parsed as zunionInterDiffGenericCommand."""
    numkeys_at = 2 if store else 1
    setnum = to_int(argv[numkeys_at])
    if setnum < 1:
        raise CommandError(f"at least 1 input key is needed for '{argv[0].decode().lower()}' "
                           "command")
    if setnum > len(argv) - numkeys_at - 1:
        raise SyntaxErr()
    first = numkeys_at + 1
    sources = [_lookup(s, key) for key in argv[first : first + setnum]]
    weights = [1.0] * setnum
    how = _SUM
    withscores = False
    limit = 0
    j = first + setnum
    while j < len(argv):
        option = argv[j].upper()
        remaining = len(argv) - j
        if op != DIFF and not card and remaining >= setnum + 1 and option == b"WEIGHTS":
            weights = [to_double(raw, _WeightError) for raw in argv[j + 1 : j + 1 + setnum]]
            j += setnum + 1
        elif op != DIFF and not card and remaining >= 2 and option == b"AGGREGATE":
            how = argv[j + 1].upper()
            if how not in (_SUM, _MIN, _MAX):
                raise SyntaxErr()
            j += 2
        elif not store and not card and option == b"WITHSCORES":
            withscores = True
            j += 1
        elif card and remaining >= 2 and option == b"LIMIT":
            limit = to_count(argv[j + 1], "LIMIT can't be negative")
            j += 2
        else:
            raise SyntaxErr()
    combined = _combine(op, sources, weights, how, limit if card else None)
    if isinstance(combined, int):
        return combined
    items = sorted(combined.items(), key=lambda item: (item[1], item[0]))
    if store:
        return _store(s, argv, argv[1], op, items)
    if withscores:
        return pairs(s, items)
    return [m for m, _ in items]


def _store(s: Session, argv: list[bytes], dst: bytes, op: str,
           items: list[tuple[bytes, float]]) -> int:
    """Write the result over `dst` (any type, TTL cleared), or delete it when empty."""
    if zsets.store(s.keyspace, dst, ZSet({m: score + 0.0 for m, score in items})):
        if items:
            notify(s.server, ZSET, _STORE_EVENTS[op], dst)
        else:
            notify(s.server, GENERIC, b"del", dst)
    return len(items)


@command("ZUNION", arity=-3, flags=READONLY, group="sorted-set")
def zunion(s: Session, argv: list[bytes]) -> list[Any]:
    """ZUNION numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]
    [WITHSCORES]

    The members of any of the sources, each scored by aggregating (SUM by default, MIN or
    MAX) its scores times the source's weight (1 by default). Sources may be sorted sets or
    sets (members scoring 1); a missing key is empty.

    Reply: array of members in score order; with WITHSCORES, RESP3 [member, score] pairs,
    RESP2 member, score, ... flat.
    Errors: `at least 1 input key is needed for 'zunion' command`; `syntax error` (also when
    numkeys exceeds the keys given, or WEIGHTS does not give one weight per key); `weight
    value is not a float`; not an integer; `WRONGTYPE`.
    """
    return _algebra(s, argv, UNION)


@command("ZINTER", arity=-3, flags=READONLY, group="sorted-set")
def zinter(s: Session, argv: list[bytes]) -> list[Any]:
    """ZINTER numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]
    [WITHSCORES]

    The members present in all the sources, scored as ZUNION scores them.

    Reply: as ZUNION.
    Errors: as ZUNION, naming `zinter`.
    """
    return _algebra(s, argv, INTER)


@command("ZDIFF", arity=-3, flags=READONLY, group="sorted-set")
def zdiff(s: Session, argv: list[bytes]) -> list[Any]:
    """ZDIFF numkeys key [key ...] [WITHSCORES]

    The members of the first source that are in none of the others, with their scores in the
    first.

    Reply: as ZUNION.
    Errors: as ZUNION, naming `zdiff` (WEIGHTS and AGGREGATE are syntax errors).
    """
    return _algebra(s, argv, DIFF)


@command("ZUNIONSTORE", arity=-4, flags=WRITE | DENYOOM, group="sorted-set", keys=(1, 1, 1))
def zunionstore(s: Session, argv: list[bytes]) -> int:
    """ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]]
    [AGGREGATE SUM | MIN | MAX]

    ZUNION, stored at destination (overwritten whatever its type; deleted when the result is
    empty).

    Reply: integer: the size of the result.
    Errors: as ZUNION, naming `zunionstore` (WITHSCORES is a syntax error).
    """
    return _algebra(s, argv, UNION, store=True)


@command("ZINTERSTORE", arity=-4, flags=WRITE | DENYOOM, group="sorted-set", keys=(1, 1, 1))
def zinterstore(s: Session, argv: list[bytes]) -> int:
    """ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]]
    [AGGREGATE SUM | MIN | MAX]

    ZINTER, stored at destination (as ZUNIONSTORE).

    Reply: integer: the size of the result.
    Errors: as ZUNIONSTORE, naming `zinterstore`.
    """
    return _algebra(s, argv, INTER, store=True)


@command("ZDIFFSTORE", arity=-4, flags=WRITE | DENYOOM, group="sorted-set", keys=(1, 1, 1))
def zdiffstore(s: Session, argv: list[bytes]) -> int:
    """ZDIFFSTORE destination numkeys key [key ...]

    ZDIFF, stored at destination (as ZUNIONSTORE).

    Reply: integer: the size of the result.
    Errors: as ZDIFF, naming `zdiffstore`.
    """
    return _algebra(s, argv, DIFF, store=True)


@command("ZINTERCARD", arity=-3, flags=READONLY, group="sorted-set")
def zintercard(s: Session, argv: list[bytes]) -> int:
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]

    The size of ZINTER's result; counting stops at LIMIT (0: no limit).

    Reply: integer.
    Errors: `at least 1 input key is needed for 'zintercard' command`; `syntax error`; `LIMIT
    can't be negative`; not an integer; `WRONGTYPE`.
    """
    return _algebra(s, argv, INTER, card=True)
