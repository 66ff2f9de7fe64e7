"""SORT and SORT_RO: sort a list, set or sorted set, optionally by other keys' values.

After Redis 7.0's sort.c, step for step, because most of SORT's behaviour is in its details:

- Elements sort as numbers (strtod over the whole string; the empty string is 0) with ties
  broken by their bytes, or with ALPHA as strings. `BY pattern` sorts by the value of the key
  named by replacing the first `*` with the element (`key*->field` reads a hash field); a
  missing weight counts as 0 (or sorts first with ALPHA). A BY pattern without `*` (`nosort`)
  skips sorting: lists and sorted sets keep their order (DESC reverses it), sets come in their
  own order, except when the result is stored or the command runs in a script: then a set is
  sorted as by ALPHA, so the stored list (or the script's effects) are the same everywhere.
- `GET pattern` (repeatable) returns the named keys' values instead of the elements; `#` is the
  element itself; a missing value is nil (an empty string when stored).
- LIMIT offset count applies after sorting; a negative count means "all the rest".
- STORE writes a list over the destination whatever its type (deleting it when the result is
  empty) and replies with its length. SORT_RO is SORT without STORE.

Without STORE, ALPHA compares as Redis' strcoll in the C / C.UTF-8 locale: bytes up to the first
NUL byte. With STORE it compares all the bytes (Redis uses memcmp there). The sort is stable,
as glibc's qsort (a merge sort) is, so equal weights keep the elements' load order.

Effects: SORT ... STORE propagates itself unchanged (its result is deterministic given the
same data, which is why sets are sorted when stored); its event is `sortstore`.
"""

from __future__ import annotations

import heapq
from collections import deque
from operator import itemgetter
from typing import Any

from jobcached.cache.keyspace import Keyspace
from jobcached.cache.zset import ZSet
from jobcached.commands.args import EXACT_DIGITS, to_int, to_weight
from jobcached.commands.registry import DENYOOM, READONLY, WRITE, command
from jobcached.errors import CommandError, SyntaxErr, WrongTypeError
from jobcached.server.notify import GENERIC, LIST, notify
from jobcached.server.session import Session


def lookup_by_pattern(ks: Keyspace, pattern: bytes, element: bytes) -> bytes | None:
    """The value a BY / GET pattern names for `element` (lookupKeyByPattern): `#` is the element;
    the first `*` is replaced by it; `->field` after the `*` reads a hash field; a key of the
    wrong type, or a pattern without `*`, gives None."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2 :]
        name = pattern[:star] + element + pattern[star + 1 : arrow]
    else:
        name = pattern[:star] + element + pattern[star + 1 :]
    value = ks.lookup_read(name)
    if value is None:
        return None
    if field is not None:
        return value.get(field) if type(value) is dict else None
    return value if type(value) is bytes else None


def _cstring(value: bytes) -> bytes:
    """What strcoll sees of a value: the bytes before the first NUL."""
    return value.split(b"\0", 1)[0]


def _in_script(s: Session) -> bool:
    """The command runs inside a Lua script (whose effects must not depend on set order)."""
    scripts = s.server.scripts
    return scripts is not None and s is scripts.session


def _sort(s: Session, argv: list[bytes], readonly: bool) -> Any:
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby: bytes | None = None
    store: bytes | None = None
    gets: list[bytes] = []
    j, argc = 2, len(argv)
    while j < argc:
        left = argc - j - 1
        opt = argv[j].upper()
        if opt == b"ASC":
            desc = False
        elif opt == b"DESC":
            desc = True
        elif opt == b"ALPHA":
            alpha = True
        elif opt == b"LIMIT" and left >= 2:
            limit_start, limit_count = to_int(argv[j + 1]), to_int(argv[j + 2])
            j += 2
        elif opt == b"STORE" and left >= 1 and not readonly:
            store = argv[j + 1]
            j += 1
        elif opt == b"BY" and left >= 1:
            sortby = argv[j + 1]
            dontsort = b"*" not in sortby
            j += 1
        elif opt == b"GET" and left >= 1:
            gets.append(argv[j + 1])
            j += 1
        else:
            raise SyntaxErr()
        j += 1
    ks = s.keyspace
    value = ks.lookup_read(argv[1])
    if value is not None and type(value) not in (deque, set, ZSet):
        raise WrongTypeError()
    if value is None:
        value = deque()
    if dontsort and type(value) is set and (store is not None or _in_script(s)):
        dontsort, alpha, sortby = False, True, None  # the result must be deterministic
    n = len(value)
    start = max(limit_start, 0)
    end = n - 1 if limit_count < 0 else start + limit_count - 1
    if start >= n:
        start, end = n - 1, n - 2
    end = min(end, n - 1)
    vector = _load(value, dontsort, desc, start, end)
    if dontsort and type(value) is not set:
        end -= start
        start = 0
    elif not dontsort:
        vector = _sorted(ks, vector, sortby, alpha, desc, store is not None, end + 1)
    picked = vector[start : end + 1] if end >= start else []
    if store is None:
        if not gets:
            return picked
        return [lookup_by_pattern(ks, g, e) for e in picked for g in gets]
    if gets:
        items = deque(lookup_by_pattern(ks, g, e) or b"" for e in picked for g in gets)
    else:
        items = deque(picked)
    if items:
        ks.set(store, items)
        notify(s.server, LIST, b"sortstore", store)
    elif ks.delete(store):
        notify(s.server, GENERIC, b"del", store)
    return len(items)


def _load(value: Any, dontsort: bool, desc: bool, start: int, end: int) -> list[bytes]:
    """The elements to sort (or, when not sorting a list or sorted set, already the range
    start..end in their order, reversed by DESC, as Redis loads them)."""
    if type(value) is set:
        return list(value)
    if type(value) is ZSet:
        members = [m for m, _ in value.items(reverse=desc)] if dontsort else list(
            value.members())
    else:
        members = list(reversed(value)) if dontsort and desc else list(value)
    if dontsort:
        return members[start : end + 1] if end >= start else []
    return members


def _sorted(ks: Keyspace, vector: list[bytes], sortby: bytes | None, alpha: bool, desc: bool,
            storing: bool, upto: int) -> list[bytes]:
    """sortCompare's order: numbers (ties by bytes), or strings with ALPHA; stable. At least
    the first `upto` elements are in place (LIMIT needs no more)."""
    if alpha:
        if sortby is None:
            key = (lambda e: e) if storing else _cstring
            return sorted(vector, key=key, reverse=desc)
        weights: list[Any] = []
        for e in vector:
            w = lookup_by_pattern(ks, sortby, e)
            weights.append((0, b"") if w is None else (1, w if storing else _cstring(w)))
        order = sorted(range(len(vector)), key=weights.__getitem__, reverse=desc)
        return [vector[i] for i in order]
    raws = vector if sortby is None else [lookup_by_pattern(ks, sortby, e) for e in vector]
    scores = _weights(raws)
    if scores is None:
        raise CommandError("One or more scores can't be converted into double")
    return _by_score_then_bytes(scores, vector, desc, upto)


def _weights(raws: list[bytes] | list[bytes | None]) -> list[float] | None:
    """The weights (a missing one is 0), or None when one is not a number. A list of plain
    digit strings short enough to be exact doubles, the usual case, is checked and read by
    float() (which then reads them as strtod does) in C-level passes."""
    if (raws and None not in raws and all(map(bytes.isdigit, raws))  # type: ignore[arg-type]
            and max(map(len, raws)) <= EXACT_DIGITS):  # type: ignore[arg-type]
        return list(map(float, raws))  # type: ignore[arg-type]
    scores = []
    for raw in raws:
        score = 0.0 if raw is None else to_weight(raw)
        if score is None:
            return None
        scores.append(score)
    return scores


def _by_score_then_bytes(scores: list[float], elements: list[bytes], desc: bool,
                         upto: int) -> list[bytes]:
    """The elements in (score, bytes) order, reversed by DESC; only the first `upto` are
    needed. Sorting on the float alone is several times faster than comparing tuples (CPython
    compares floats natively); when no two scores are equal (checked at C speed with a set)
    that is the whole order, and a short prefix is taken with a heap instead of a full sort.
    Otherwise equal scores are put in byte order afterwards, run by run."""
    scored = list(zip(scores, elements, strict=True))
    n = len(scored)
    key = itemgetter(0)
    if len(set(scores)) == n:
        if upto * 8 < n:
            pick = heapq.nlargest if desc else heapq.nsmallest
            return [e for _, e in pick(upto, scored, key=key)]
        scored.sort(key=key, reverse=desc)
        return [e for _, e in scored]
    scored.sort(key=key, reverse=desc)
    out = [e for _, e in scored]
    i = 0
    while i < n:
        j = i + 1
        score = scored[i][0]
        while j < n and scored[j][0] == score:
            j += 1
        if j - i > 1:
            out[i:j] = sorted(out[i:j], reverse=desc)
        i = j
    return out


@command("SORT", arity=-2, flags=WRITE | DENYOOM, group="generic", keys=(1, 1, 1))
def sort(s: Session, argv: list[bytes]) -> Any:
    """SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]]
    [ASC | DESC] [ALPHA] [STORE destination]

    Sort the elements of a list, set or sorted set: as numbers, or as strings with ALPHA; BY
    sorts by the values of other keys (`weight_*`, or `hash_*->field`), BY with a pattern
    without `*` does not sort; GET returns other keys' values instead (`#`: the element);
    STORE saves the result as a list at destination.

    Reply: array of elements (or GET values, nil when missing); with STORE, the integer length
    of the stored list.
    Errors: `syntax error`; `value is not an integer or out of range` (LIMIT); `One or more
    scores can't be converted into double`; `WRONGTYPE`.
    """
    return _sort(s, argv, readonly=False)


@command("SORT_RO", arity=-2, flags=READONLY, group="generic", keys=(1, 1, 1))
def sort_ro(s: Session, argv: list[bytes]) -> Any:
    """SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]]
    [ASC | DESC] [ALPHA]

    SORT without STORE (allowed on read-only replicas and in read-only scripts).

    Reply: array of elements (or GET values).
    Errors: as SORT (STORE is a `syntax error`).
    """
    return _sort(s, argv, readonly=True)
