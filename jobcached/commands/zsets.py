"""Sorted-set commands: ZADD and friends, pops (blocking too, ZMPOP too), ZRANDMEMBER and ZSCAN;
the ZRANGE family and removals by range are in zranges.py, ZUNION and friends in zalgebra.py.

The value is a `cache.zset.ZSet`; handlers parse, read it through `Keyspace.get_zset` or write
through cache/zsets.py (type checks, memory accounting, removal of an emptied set, readiness for
blocked clients), and shape replies. They follow Redis 7.0's t_zset.c in the order they check
things. Number parsing is Redis' own: scores go through strtod (`to_double`: hex floats
accepted, overflow refused), range ends through zslParseRange (`to_range_double`: `(` for
exclusive, leading spaces allowed, overflow saturates).

Reply shapes: scores are doubles (RESP2: bulk strings printed with "%.17g"). Where Redis 7.0
pairs a member with its score (ZRANGE ... WITHSCORES, ZPOPMIN with a count), RESP3 gets an array
of [member, score] pairs and RESP2 the same flattened; handlers read `s.resp3` for that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from jobcached.cache import zsets
from jobcached.cache.glob import compile_glob
from jobcached.commands import blocking
from jobcached.commands.args import (
    INT64_MAX,
    check_reply_size,
    mpop_args,
    scan_options,
    to_count,
    to_cursor,
    to_double,
    to_long_in,
    to_timeout_ms,
)
from jobcached.commands.registry import BLOCKING, DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import NULL_ARRAY
from jobcached.net.resp import format_double
from jobcached.server.notify import ZSET, notify, notify_if_gone
from jobcached.server.session import Session

#: ZSCAN returns a sorted set this small whole, with cursor 0 (Redis' zset-max-listpack-entries).
ZSCAN_WHOLE_MAX_MEMBERS = 128

#: Longer members make Redis use a skiplist even for small sets (zset-max-listpack-value).
LISTPACK_MAX_MEMBER_BYTES = 64
#: Redis' d2string prints integral scores within +-LLONG_MAX/2 as integers (double2ll).
_D2STRING_INT_LIMIT = float((2**63 - 1) // 2)

_NX, _XX, _CH, _INCR, _GT, _LT = (1 << i for i in range(6))
#: ZADD's options, as bits (they come before the first score, in any order and repeatable)
_ZADD_OPTIONS = {b"NX": _NX, b"XX": _XX, b"CH": _CH, b"INCR": _INCR, b"GT": _GT, b"LT": _LT}
#: Digit strings up to this long are exact doubles, read by float() as strtod reads them.
_PLAIN_SCORE_MAX_DIGITS = 15


def _score(raw: bytes) -> float:
    """A ZADD score: `to_double`, with a shortcut for plain digit strings (most scores), which
    cannot overflow, underflow or be NaN, so float() reads them exactly as strtod does."""
    if raw.isdigit() and len(raw) <= _PLAIN_SCORE_MAX_DIGITS:
        return float(raw)
    return to_double(raw)


def _listpack_score(score: float) -> bytes:
    """A score as Redis 7.0 stores it in a listpack (d2string), which ZSCAN returns as is."""
    if -_D2STRING_INT_LIMIT <= score <= _D2STRING_INT_LIMIT and score == int(score):
        return b"%d" % int(score)
    return format_double(score)


def pairs(s: Session, items: Iterable[tuple[bytes, float]]) -> list[Any]:
    """Members with scores: RESP3 [member, score] pairs, RESP2 flat."""
    if s.resp3:
        return [[m, score] for m, score in items]
    return [x for m, score in items for x in (m, score)]


# ------------------------------------------------------------------------------- adding


def zadd_generic(s: Session, argv: list[bytes], incr: bool) -> Any:
    """ZADD and ZINCRBY (Redis parses both with the same code, options included)."""
    key = argv[1]
    options = 0
    i = 2
    while i < len(argv) and (bit := _ZADD_OPTIONS.get(argv[i].upper())):
        options |= bit
        i += 1
    rest = len(argv) - i
    if rest % 2 or not rest:
        raise SyntaxErr()
    if options:  # most calls have none: skip the flag checks
        incr = incr or bool(options & _INCR)
        nx, xx = bool(options & _NX), bool(options & _XX)
        gt, lt = bool(options & _GT), bool(options & _LT)
        if nx and xx:
            raise CommandError("XX and NX options at the same time are not compatible")
        if (gt and nx) or (lt and nx) or (gt and lt):
            raise CommandError("GT, LT, and/or NX options at the same time are not compatible")
    else:
        nx = xx = gt = lt = False
    if incr and rest > 2:
        raise CommandError("INCR option supports a single increment-element pair")
    pairs = [(_score(argv[j]), argv[j + 1]) for j in range(i, len(argv), 2)]
    if incr:
        score, member = pairs[0]
        result, changed = zsets.incr(s.keyspace, key, score, member, nx, xx, gt, lt)
        if changed:
            notify(s.server, ZSET, b"zincr", key)
        return result
    added, updated = zsets.add(s.keyspace, key, pairs, nx, xx, gt, lt)
    if added or updated:
        notify(s.server, ZSET, b"zadd", key)
    return added + updated if options & _CH else added


@command("ZADD", arity=-4, flags=WRITE | DENYOOM | FAST, group="sorted-set", keys=(1, 1, 1))
def zadd(s: Session, argv: list[bytes]) -> Any:
    """ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]

    Add members with scores, or update their scores. NX: only add new members; XX: only
    update existing ones; GT / LT: update only when the new score is greater / less (new
    members are still added); CH: count updated members too; INCR: increment one member's
    score (as ZINCRBY). All scores are checked before anything changes.

    Reply: integer: members added (with CH: added or updated); with INCR, the new score as a
    double, or nil when an option prevented the change.
    Errors: `syntax error`; `XX and NX options at the same time are not compatible`; `GT, LT,
    and/or NX options at the same time are not compatible`; `INCR option supports a single
    increment-element pair`; `value is not a valid float`; `resulting score is not a number
    (NaN)`; `WRONGTYPE`.
    """
    return zadd_generic(s, argv, incr=False)


@command("ZINCRBY", arity=4, flags=WRITE | DENYOOM | FAST, group="sorted-set", keys=(1, 1, 1))
def zincrby(s: Session, argv: list[bytes]) -> Any:
    """ZINCRBY key increment member

    Add the increment to the member's score (a new member starts at 0).

    Reply: the new score, as a double.
    Errors: `value is not a valid float`; `resulting score is not a number (NaN)` (inf + -inf);
    `WRONGTYPE`.
    """
    return zadd_generic(s, argv, incr=True)


@command("ZREM", arity=-3, flags=WRITE | FAST, group="sorted-set", keys=(1, 1, 1))
def zrem(s: Session, argv: list[bytes]) -> int:
    """ZREM key member [member ...]

    Remove the members; the key is deleted when the sorted set becomes empty.

    Reply: integer: how many members were removed.
    Errors: `WRONGTYPE`.
    """
    key = argv[1]
    removed, left = zsets.remove(s.keyspace, key, argv[2:])
    if removed:
        notify(s.server, ZSET, b"zrem", key)
        notify_if_gone(s.server, key, left)
    return removed


# ------------------------------------------------------------------------------- reading


@command("ZSCORE", arity=3, flags=READONLY | FAST, group="sorted-set", keys=(1, 1, 1))
def zscore(s: Session, argv: list[bytes]) -> float | None:
    """ZSCORE key member

    The member's score.

    Reply: double (RESP2: bulk string), or nil when the member or key does not exist.
    Errors: `WRONGTYPE`.
    """
    zset = s.keyspace.get_zset(argv[1])
    return None if zset is None else zset.score(argv[2])


@command("ZMSCORE", arity=-3, flags=READONLY | FAST, group="sorted-set", keys=(1, 1, 1))
def zmscore(s: Session, argv: list[bytes]) -> list[float | None]:
    """ZMSCORE key member [member ...]

    The scores of the members.

    Reply: array of doubles, nil for a member (or key) that does not exist.
    Errors: `WRONGTYPE`.
    """
    zset = s.keyspace.get_zset(argv[1])
    if zset is None:
        return [None] * (len(argv) - 2)
    return [zset.score(m) for m in argv[2:]]


@command("ZCARD", arity=2, flags=READONLY | FAST, group="sorted-set", keys=(1, 1, 1))
def zcard(s: Session, argv: list[bytes]) -> int:
    """ZCARD key

    The number of members.

    Reply: integer, 0 when the key does not exist.
    Errors: `WRONGTYPE`.
    """
    zset = s.keyspace.get_zset(argv[1])
    return 0 if zset is None else len(zset)


def _rank(s: Session, argv: list[bytes], reverse: bool) -> int | None:
    zset = s.keyspace.get_zset(argv[1])
    return None if zset is None else zset.rank(argv[2], reverse)


@command("ZRANK", arity=3, flags=READONLY | FAST, group="sorted-set", keys=(1, 1, 1))
def zrank(s: Session, argv: list[bytes]) -> int | None:
    """ZRANK key member

    The member's rank, 0 for the lowest score.

    Reply: integer, or nil when the member or key does not exist.
    Errors: `WRONGTYPE`.
    """
    return _rank(s, argv, reverse=False)


@command("ZREVRANK", arity=3, flags=READONLY | FAST, group="sorted-set", keys=(1, 1, 1))
def zrevrank(s: Session, argv: list[bytes]) -> int | None:
    """ZREVRANK key member

    The member's rank, 0 for the highest score.

    Reply: integer, or nil when the member or key does not exist.
    Errors: `WRONGTYPE`.
    """
    return _rank(s, argv, reverse=True)


# ------------------------------------------------------------------------------- pops


def _pop(s: Session, key: bytes, highest: bool, count: int,
         count_given: bool) -> zsets.Popped | None:
    """Pop and propagate `ZPOPMIN key [n]` (what it did, deterministic); None when the key
    does not exist or nothing was popped (a count of 0)."""
    result = zsets.pop(s.keyspace, key, highest, count)
    if not result or not result[0]:
        return None
    popped, left = result
    effect = [b"ZPOPMAX" if highest else b"ZPOPMIN", key]
    if count_given:
        effect.append(b"%d" % len(popped))
    s.server.effects.cache(effect, (key,))
    notify(s.server, ZSET, b"zpopmax" if highest else b"zpopmin", key)
    notify_if_gone(s.server, key, left)
    return popped


def _pop_command(s: Session, argv: list[bytes], highest: bool) -> list[Any]:
    if len(argv) > 3:
        raise SyntaxErr()
    count = to_count(argv[2]) if len(argv) == 3 else None
    key = argv[1]
    popped = _pop(s, key, highest, 1 if count is None else count, count is not None)
    if popped is None:
        return []
    if count is None:
        member, score = popped[0]
        return [member, score]
    return pairs(s, popped)


@command("ZPOPMIN", arity=-2, flags=WRITE | FAST, group="sorted-set", keys=(1, 1, 1))
def zpopmin(s: Session, argv: list[bytes]) -> list[Any]:
    """ZPOPMIN key [count]

    Remove and return the member with the lowest score, or the `count` lowest.

    Reply: without count, [member, score] (empty when the key does not exist); with count,
    RESP3 [member, score] pairs, RESP2 member, score, ... flat.
    Errors: `value is out of range, must be positive`; `syntax error`; `WRONGTYPE`.
    """
    return _pop_command(s, argv, highest=False)


@command("ZPOPMAX", arity=-2, flags=WRITE | FAST, group="sorted-set", keys=(1, 1, 1))
def zpopmax(s: Session, argv: list[bytes]) -> list[Any]:
    """ZPOPMAX key [count]

    Remove and return the member with the highest score, or the `count` highest.

    Reply: as ZPOPMIN.
    Errors: as ZPOPMIN.
    """
    return _pop_command(s, argv, highest=True)


def _blocking_pop(s: Session, argv: list[bytes], highest: bool) -> Any:
    timeout = to_timeout_ms(argv[-1])
    keys = argv[1:-1]

    def take(key: bytes) -> Any:
        popped = _pop(s, key, highest, 1, False)
        if popped is None:
            return blocking.EMPTY
        member, score = popped[0]
        return [key, member, score]

    return blocking.pop_or_block(s, keys, timeout, take, NULL_ARRAY)


@command("BZPOPMIN", arity=-3, flags=WRITE | FAST | BLOCKING, group="sorted-set",
         keys=(1, -2, 1))
def bzpopmin(s: Session, argv: list[bytes]) -> Any:
    """BZPOPMIN key [key ...] timeout

    ZPOPMIN from the first non-empty sorted set among the keys; if all are empty, wait until
    one gets a member or `timeout` seconds pass (a double; 0 waits forever). Clients waiting
    on the same key are served in the order they blocked. Inside MULTI it does not wait.

    Reply: [key, member, score]; a null array on timeout.
    Errors: `timeout is not a float or out of range`; `timeout is negative`; `WRONGTYPE`.
    """
    return _blocking_pop(s, argv, highest=False)


@command("BZPOPMAX", arity=-3, flags=WRITE | FAST | BLOCKING, group="sorted-set",
         keys=(1, -2, 1))
def bzpopmax(s: Session, argv: list[bytes]) -> Any:
    """BZPOPMAX key [key ...] timeout

    The blocking ZPOPMAX: as BZPOPMIN, taking the highest score.

    Reply: [key, member, score]; a null array on timeout.
    Errors: as BZPOPMIN.
    """
    return _blocking_pop(s, argv, highest=True)


def _mpop(s: Session, keys: list[bytes], highest: bool, count: int) -> Any:
    """ZMPOP's work on the first existing key (a later key's type is not checked): [key,
    [[member, score], ...]], nested in RESP2 too; None when no key exists."""
    for key in keys:
        popped = _pop(s, key, highest, count, True)
        if popped is not None:
            return [key, [[m, score] for m, score in popped]]
    return None


@command("ZMPOP", arity=-4, flags=WRITE, group="sorted-set")
def zmpop(s: Session, argv: list[bytes]) -> Any:
    """ZMPOP numkeys key [key ...] MIN | MAX [COUNT count]

    Pop up to `count` (default 1) members with the lowest (MIN) or highest (MAX) scores from
    the first of the keys that exists. It propagates as ZPOPMIN / ZPOPMAX with a count.

    Reply: [key, [[member, score], ...]] (nested in RESP2 too), or a null array when none of
    the keys exists.
    Errors: `numkeys should be greater than 0`; `count should be greater than 0`; `syntax
    error` (also when numkeys exceeds the keys given); `WRONGTYPE`.
    """
    keys, where, count = mpop_args(argv, 1, (b"MIN", b"MAX"))
    popped = _mpop(s, keys, where == b"MAX", count)
    return NULL_ARRAY if popped is None else popped


@command("BZMPOP", arity=-5, flags=WRITE | BLOCKING, group="sorted-set")
def bzmpop(s: Session, argv: list[bytes]) -> Any:
    """BZMPOP timeout numkeys key [key ...] MIN | MAX [COUNT count]

    ZMPOP; when none of the keys holds a sorted set, wait until one does or `timeout` seconds
    pass (a double; 0 waits forever), as BZPOPMIN waits. Inside MULTI it does not wait.

    Reply: as ZMPOP; a null array on timeout.
    Errors: `timeout is not a float or out of range`; `timeout is negative`; as ZMPOP.
    """
    timeout = to_timeout_ms(argv[1])
    keys, where, count = mpop_args(argv, 2, (b"MIN", b"MAX"))
    highest = where == b"MAX"

    def take(key: bytes) -> Any:
        popped = _mpop(s, [key], highest, count)
        return blocking.EMPTY if popped is None else popped

    return blocking.pop_or_block(s, keys, timeout, take, NULL_ARRAY)


# ------------------------------------------------------------------------------- random


@command("ZRANDMEMBER", arity=-2, flags=READONLY, group="sorted-set", keys=(1, 1, 1))
def zrandmember(s: Session, argv: list[bytes]) -> Any:
    """ZRANDMEMBER key [count [WITHSCORES]]

    Random members. Without count, one member; a positive count gives that many distinct
    members (all of them, highest score first, when the set is not larger), a negative count
    that many picks with repetition, in random order.

    Reply: a bulk string (nil when the key does not exist); with count, an array (empty when
    the key does not exist), with WITHSCORES as ZRANGE ... WITHSCORES.
    Errors: `value is out of range, value must between -9223372036854775807 and
    9223372036854775807`; `value is out of range` (beyond half of that with WITHSCORES);
    `syntax error`; `WRONGTYPE`.
    """
    ks = s.keyspace
    rng = ks.rng
    if len(argv) == 2:
        zset = ks.get_zset(argv[1])
        return None if zset is None else zset.at(rng.randrange(len(zset)))[0]
    count = to_long_in(argv[2], -INT64_MAX, INT64_MAX)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].upper() != b"WITHSCORES"):
        raise SyntaxErr()
    withscores = len(argv) == 4
    if withscores and not -(INT64_MAX // 2) <= count <= INT64_MAX // 2:
        raise CommandError("value is out of range")
    zset = ks.get_zset(argv[1])
    if zset is None or count == 0:
        return []
    n = len(zset)
    if count < 0 or count == 1:
        check_reply_size(-count)
        items = [zset.at(rng.randrange(n)) for _ in range(abs(count))]
    elif count >= n:
        items = list(zset.items(reverse=True))  # the whole set, highest first, as Redis
    else:
        items = [zset.at(i) for i in rng.sample(range(n), count)]
    return pairs(s, items) if withscores else [m for m, _ in items]


# ------------------------------------------------------------------------------- scan


@command("ZSCAN", arity=-3, flags=READONLY, group="sorted-set", keys=(1, 1, 1))
def zscan(s: Session, argv: list[bytes]) -> list[Any]:
    """ZSCAN key cursor [MATCH pattern] [COUNT count]

    Iterate over the members and scores: start with cursor 0, pass back the cursor each reply
    gives, stop when it is 0 again. A sorted set of up to 128 members (or no more than COUNT)
    comes whole in one reply, as Redis returns its small ones. Larger ones are walked from the
    newest member to the oldest, COUNT per call: members present for the whole iteration are
    returned at least once, members added during it may be missed.

    Reply: array of the next cursor (bulk string) and a flat array member, score, ... (scores
    as bulk strings, also in RESP3; a small set comes in rank order, integral scores printed
    as integers, as Redis returns its listpack sets).
    Errors: `invalid cursor`; `syntax error` (also for COUNT < 1); not an integer; `WRONGTYPE`.
    """
    cursor = to_cursor(argv[2])
    zset = s.keyspace.get_zset(argv[1])
    if zset is None:
        return [b"0", []]
    count, pattern, _ = scan_options(argv, 3)
    scores = zset.as_dict()
    n = len(scores)
    fmt: Callable[[float], bytes] = format_double
    if n <= ZSCAN_WHOLE_MAX_MEMBERS and all(len(m) <= LISTPACK_MAX_MEMBER_BYTES for m in scores):
        # What Redis keeps as a listpack: walked in rank order, scores printed as stored.
        items: Iterable[tuple[bytes, float]] = zset.items()
        next_cursor = 0
        fmt = _listpack_score
    elif n <= ZSCAN_WHOLE_MAX_MEMBERS or n <= count:
        items = scores.items()
        next_cursor = 0
    else:
        # Insertion order, walked from the top: cursor r means positions r-1 .. 0 are left. A
        # score update keeps a member's position; a removal moves later members down, towards
        # the unvisited part (returned twice at worst, never skipped), as HSCAN does.
        top = n if cursor == 0 else min(cursor, n)
        bottom = max(top - count, 0)
        items = list(islice(scores.items(), bottom, top))
        next_cursor = bottom
    matcher = None if pattern is None else compile_glob(pattern)
    out: list[bytes] = []
    for member, score in items:
        if matcher is None or matcher.match(member):
            out.append(member)
            out.append(fmt(score))
    return [b"%d" % next_cursor, out]
