"""List commands: pushes and pops at both ends, ranges, searches, moves, and the blocking pops.

A list is a `collections.deque` in the keyspace, read through `Keyspace.get_list` and written
through cache/lists.py (type checks, memory accounting, removal of an emptied list, and the
readiness that lets clients blocked on a key be served: see blocking.py). Handlers follow Redis
7.0's t_list.c in the order they check things (argument parsing first, then the key's type), so
the same bad command gets the same error from both servers. Every change propagates one
deterministic record (a blocking pop that is served propagates the LPOP / RPOP / LMOVE it
amounts to).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from jobcached.cache.lists import insert, move, pop, push, remove, set_element, trim
from jobcached.cache.zset import rank_span
from jobcached.commands import blocking
from jobcached.commands.args import INT64_MIN, to_count, to_int, to_timeout_ms
from jobcached.commands.registry import BLOCKING, DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError, NoSuchKeyError, SyntaxErr, WrongTypeError
from jobcached.net.replies import NULL_ARRAY, OK, ErrorReply
from jobcached.server.notify import GENERIC, LIST, notify, notify_if_gone
from jobcached.server.session import Session

LEFT, RIGHT = b"LEFT", b"RIGHT"


def _side(raw: bytes) -> bytes:
    side = raw.upper()
    if side not in (LEFT, RIGHT):
        raise SyntaxErr()
    return side


def notify_popped(s: Session, key: bytes, left: int, side: bytes) -> None:
    """Keyspace events of a pop that left `left` elements: lpop / rpop, and del when the list
    is gone."""
    notify(s.server, LIST, b"lpop" if side == LEFT else b"rpop", key)
    notify_if_gone(s.server, key, left)


# ------------------------------------------------------------------------------- push and pop


def _push_command(s: Session, argv: list[bytes], side: bytes, only_existing: bool) -> int:
    key = argv[1]
    length = push(s.keyspace, key, argv[2:], side == LEFT, only_existing)
    if not length:
        return 0
    notify(s.server, LIST, b"lpush" if side == LEFT else b"rpush", key)
    return length


@command("LPUSH", arity=-3, flags=WRITE | DENYOOM | FAST, group="list", keys=(1, 1, 1))
def lpush(s: Session, argv: list[bytes]) -> int:
    """LPUSH key element [element ...]

    Insert the elements at the head of the list, one after the other (so the last one given
    ends up first), creating the list if needed.

    Reply: integer: the length of the list after the push.
    Errors: `WRONGTYPE`.
    """
    return _push_command(s, argv, LEFT, only_existing=False)


@command("RPUSH", arity=-3, flags=WRITE | DENYOOM | FAST, group="list", keys=(1, 1, 1))
def rpush(s: Session, argv: list[bytes]) -> int:
    """RPUSH key element [element ...]

    Append the elements at the tail of the list, creating the list if needed.

    Reply: integer: the length of the list after the push.
    Errors: `WRONGTYPE`.
    """
    return _push_command(s, argv, RIGHT, only_existing=False)


@command("LPUSHX", arity=-3, flags=WRITE | DENYOOM | FAST, group="list", keys=(1, 1, 1))
def lpushx(s: Session, argv: list[bytes]) -> int:
    """LPUSHX key element [element ...]

    LPUSH, only if the list already exists.

    Reply: integer: the length of the list after the push, 0 when the key does not exist.
    Errors: `WRONGTYPE`.
    """
    return _push_command(s, argv, LEFT, only_existing=True)


@command("RPUSHX", arity=-3, flags=WRITE | DENYOOM | FAST, group="list", keys=(1, 1, 1))
def rpushx(s: Session, argv: list[bytes]) -> int:
    """RPUSHX key element [element ...]

    RPUSH, only if the list already exists.

    Reply: integer: the length of the list after the push, 0 when the key does not exist.
    Errors: `WRONGTYPE`.
    """
    return _push_command(s, argv, RIGHT, only_existing=True)


def _pop_command(s: Session, argv: list[bytes], side: bytes) -> Any:
    if len(argv) > 3:
        lower = "lpop" if side == LEFT else "rpop"
        raise CommandError(f"wrong number of arguments for '{lower}' command")
    count = to_count(argv[2]) if len(argv) == 3 else None
    key = argv[1]
    popped = pop(s.keyspace, key, side == LEFT, 1 if count is None else count)
    if popped is None:
        return None if count is None else NULL_ARRAY
    values, left = popped
    if not values:
        return []
    name = b"LPOP" if side == LEFT else b"RPOP"
    if count is None:
        s.server.effects.cache([name, key], (key,))
        notify_popped(s, key, left, side)
        return values[0]
    s.server.effects.cache([name, key, b"%d" % len(values)], (key,))
    notify_popped(s, key, left, side)
    return values


@command("LPOP", arity=-2, flags=WRITE | FAST, group="list", keys=(1, 1, 1))
def lpop(s: Session, argv: list[bytes]) -> Any:
    """LPOP key [count]

    Remove and return the first element of the list, or its first `count` elements.

    Reply: bulk string, or nil when the key does not exist; with count, an array (empty for a
    count of 0), or a null array when the key does not exist.
    Errors: `value is out of range, must be positive`; `WRONGTYPE`.
    """
    return _pop_command(s, argv, LEFT)


@command("RPOP", arity=-2, flags=WRITE | FAST, group="list", keys=(1, 1, 1))
def rpop(s: Session, argv: list[bytes]) -> Any:
    """RPOP key [count]

    Remove and return the last element of the list, or its last `count` elements.

    Reply: as LPOP.
    Errors: as LPOP.
    """
    return _pop_command(s, argv, RIGHT)


# ------------------------------------------------------------------------------- reading


@command("LLEN", arity=2, flags=READONLY | FAST, group="list", keys=(1, 1, 1))
def llen(s: Session, argv: list[bytes]) -> int:
    """LLEN key

    The length of the list.

    Reply: integer, 0 when the key does not exist.
    Errors: `WRONGTYPE`.
    """
    lst = s.keyspace.get_list(argv[1])
    return 0 if lst is None else len(lst)


@command("LRANGE", arity=4, flags=READONLY, group="list", keys=(1, 1, 1))
def lrange(s: Session, argv: list[bytes]) -> list[bytes]:
    """LRANGE key start stop

    The elements from index start to stop, both included; negative indexes count from the end
    (-1 is the last element). Out-of-range indexes are clamped, so the work is bounded by the
    list's length.

    Reply: array, empty when the key does not exist or the range is empty.
    Errors: `value is not an integer or out of range`; `WRONGTYPE`.
    """
    start, stop = to_int(argv[2]), to_int(argv[3])
    lst = s.keyspace.get_list(argv[1])
    if lst is None:
        return []
    span = rank_span(start, stop, len(lst))
    if span is None:
        return []
    start, stop = span
    n = len(lst)
    if start <= n - 1 - stop:  # closer to the head: walk from there
        return list(islice(lst, start, stop + 1))
    values = list(islice(reversed(lst), n - 1 - stop, n - start))
    values.reverse()
    return values


@command("LINDEX", arity=3, flags=READONLY, group="list", keys=(1, 1, 1))
def lindex(s: Session, argv: list[bytes]) -> bytes | None:
    """LINDEX key index

    The element at the index (negative counts from the end).

    Reply: bulk string, or nil when the index is out of range or the key does not exist.
    Errors: `WRONGTYPE`; `value is not an integer or out of range` (checked after the key, as
    Redis does).
    """
    lst = s.keyspace.get_list(argv[1])
    if lst is None:
        return None
    index = to_int(argv[2])
    if not -len(lst) <= index < len(lst):
        return None
    return lst[index]


@command("LPOS", arity=-3, flags=READONLY, group="list", keys=(1, 1, 1))
def lpos(s: Session, argv: list[bytes]) -> Any:
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]

    The index of a matching element. RANK n returns the n-th match (negative: counting from
    the tail); COUNT returns up to that many matches (0: all); MAXLEN compares at most that many
    elements (0: all).

    Reply: integer, or nil when nothing matches; with COUNT, an array of integers.
    Errors: `RANK can't be zero: ...`; `COUNT can't be negative`; `MAXLEN can't be negative`;
    `syntax error`; `WRONGTYPE`.
    """
    rank, count, maxlen = 1, -1, 0
    i = 3
    while i < len(argv):
        option = argv[i].upper()
        if i + 1 >= len(argv):
            raise SyntaxErr()
        i += 1
        if option == b"RANK":
            rank = to_int(argv[i])
            if rank == 0:
                raise CommandError(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the "
                    "second ... or use negative to start from the end of the list")
        elif option == b"COUNT":
            count = to_count(argv[i], "COUNT can't be negative")
        elif option == b"MAXLEN":
            maxlen = to_count(argv[i], "MAXLEN can't be negative")
        else:
            raise SyntaxErr()
        i += 1
    lst = s.keyspace.get_list(argv[1])
    if lst is None:
        return [] if count != -1 else None
    from_tail = rank < 0
    # Redis negates the rank in a C long: RANK -2**63 stays negative, so every match qualifies
    # and a COUNT never stops the search. Kept, since a client can observe it.
    unbounded = rank == INT64_MIN
    rank = 1 if unbounded else abs(rank)
    n = len(lst)
    walk = reversed(lst) if from_tail else iter(lst)
    if maxlen:
        walk = islice(walk, maxlen)
    element = argv[2]
    matches = 0
    found: list[int] = []
    for index, value in enumerate(walk):
        if value != element:
            continue
        matches += 1
        if matches < rank:
            continue
        found.append(n - 1 - index if from_tail else index)
        if count == -1 or (count and not unbounded and matches - rank + 1 >= count):
            break
    if count == -1:
        return found[0] if found else None
    return found


# ------------------------------------------------------------------------------- in place


@command("LSET", arity=4, flags=WRITE | DENYOOM, group="list", keys=(1, 1, 1))
def lset(s: Session, argv: list[bytes]) -> Any:
    """LSET key index element

    Replace the element at the index.

    Reply: `OK`.
    Errors: `no such key`; `WRONGTYPE`; then `value is not an integer or out of range`;
    `index out of range`.
    """
    key = argv[1]
    ks = s.keyspace
    if ks.get_list(key, write=True) is None:
        raise NoSuchKeyError()
    if not set_element(ks, key, to_int(argv[2]), argv[3]):  # the index is read after the key
        raise CommandError("index out of range")
    notify(s.server, LIST, b"lset", key)
    return OK


@command("LINSERT", arity=5, flags=WRITE | DENYOOM, group="list", keys=(1, 1, 1))
def linsert(s: Session, argv: list[bytes]) -> int:
    """LINSERT key <BEFORE | AFTER> pivot element

    Insert the element before or after the first occurrence of pivot.

    Reply: integer: the length after the insert; -1 when pivot is not found; 0 when the key
    does not exist.
    Errors: `syntax error`; `WRONGTYPE`.
    """
    where = argv[2].upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise SyntaxErr()
    key = argv[1]
    length = insert(s.keyspace, key, argv[3], argv[4], before=where == b"BEFORE")
    if length > 0:
        notify(s.server, LIST, b"linsert", key)
    return length


@command("LREM", arity=4, flags=WRITE, group="list", keys=(1, 1, 1))
def lrem(s: Session, argv: list[bytes]) -> int:
    """LREM key count element

    Remove occurrences of the element: the first `count` from the head (count > 0), the last
    |count| from the tail (count < 0), or all of them (count = 0).

    Reply: integer: how many were removed.
    Errors: `value is not an integer or out of range`; `WRONGTYPE`.
    """
    count = to_int(argv[2])
    key = argv[1]
    removed, left = remove(s.keyspace, key, count, argv[3])
    if not removed:
        return 0
    notify(s.server, LIST, b"lrem", key)
    notify_if_gone(s.server, key, left)
    return removed


@command("LTRIM", arity=4, flags=WRITE, group="list", keys=(1, 1, 1))
def ltrim(s: Session, argv: list[bytes]) -> Any:
    """LTRIM key start stop

    Keep only the elements from start to stop (both included, negative from the end); an
    empty range deletes the key.

    Reply: `OK`.
    Errors: `value is not an integer or out of range`; `WRONGTYPE`.
    """
    start, stop = to_int(argv[2]), to_int(argv[3])
    key = argv[1]
    trimmed = trim(s.keyspace, key, start, stop)
    if trimmed is None:
        return OK
    left = trimmed[1]
    notify(s.server, LIST, b"ltrim", key)  # Redis notifies even when nothing went
    if not left:
        notify(s.server, GENERIC, b"del", key)
    return OK


# ------------------------------------------------------------------------------- moves


def _lmove(s: Session, src: bytes, dst: bytes, wherefrom: bytes, whereto: bytes) -> Any:
    """Move one element, propagate LMOVE, send the keyspace events; nil when src is missing."""
    moved = move(s.keyspace, src, dst, wherefrom == LEFT, whereto == LEFT)
    if moved is None:
        return None
    value, left = moved
    s.server.effects.cache([b"LMOVE", src, dst, wherefrom, whereto], (src, dst))
    notify(s.server, LIST, b"lpush" if whereto == LEFT else b"rpush", dst)
    notify_popped(s, src, left, wherefrom)
    return value


@command("LMOVE", arity=5, flags=WRITE | DENYOOM, group="list", keys=(1, 2, 1))
def lmove(s: Session, argv: list[bytes]) -> Any:
    """LMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT>

    Pop an element from one end of source and push it at one end of destination (which may be
    the same list: a rotation).

    Reply: the element moved, or nil when source does not exist.
    Errors: `syntax error`; `WRONGTYPE` (either key; nothing moves).
    """
    wherefrom, whereto = _side(argv[3]), _side(argv[4])
    return _lmove(s, argv[1], argv[2], wherefrom, whereto)


@command("RPOPLPUSH", arity=3, flags=WRITE | DENYOOM, group="list", keys=(1, 2, 1))
def rpoplpush(s: Session, argv: list[bytes]) -> Any:
    """RPOPLPUSH source destination

    LMOVE source destination RIGHT LEFT (deprecated in Redis 6.2, kept for old clients).

    Reply: the element moved, or nil when source does not exist.
    Errors: `WRONGTYPE`.
    """
    return _lmove(s, argv[1], argv[2], RIGHT, LEFT)


# ------------------------------------------------------------------------------- blocking


def _blocking_pop(s: Session, argv: list[bytes], side: bytes) -> Any:
    timeout = to_timeout_ms(argv[-1])
    keys = argv[1:-1]
    ks = s.keyspace
    name = b"LPOP" if side == LEFT else b"RPOP"

    def take(key: bytes) -> Any:
        popped = pop(ks, key, side == LEFT, 1)
        if not popped or not popped[0]:
            return blocking.EMPTY
        values, left = popped
        s.server.effects.cache([name, key], (key,))
        notify_popped(s, key, left, side)
        return [key, values[0]]

    return blocking.pop_or_block(s, keys, timeout, take, NULL_ARRAY)


@command("BLPOP", arity=-3, flags=WRITE | BLOCKING, group="list", keys=(1, -2, 1))
def blpop(s: Session, argv: list[bytes]) -> Any:
    """BLPOP key [key ...] timeout

    LPOP from the first non-empty list among the keys; if all are empty, wait until one gets
    an element or `timeout` seconds pass (a double; 0 waits forever). Clients waiting on the
    same key are served in the order they blocked. Inside MULTI it does not wait.

    Reply: a two-element array: the key and the element; a null array on timeout.
    Errors: `timeout is not a float or out of range`; `timeout is negative`; `WRONGTYPE`.
    """
    return _blocking_pop(s, argv, LEFT)


@command("BRPOP", arity=-3, flags=WRITE | BLOCKING, group="list", keys=(1, -2, 1))
def brpop(s: Session, argv: list[bytes]) -> Any:
    """BRPOP key [key ...] timeout

    The blocking RPOP: as BLPOP, taking from the tail.

    Reply: a two-element array: the key and the element; a null array on timeout.
    Errors: as BLPOP.
    """
    return _blocking_pop(s, argv, RIGHT)


def _blmove(s: Session, src: bytes, dst: bytes, wherefrom: bytes, whereto: bytes,
            timeout: int) -> Any:
    ks = s.keyspace
    if ks.get_list(src, write=True) is not None:
        return _lmove(s, src, dst, wherefrom, whereto)
    if not blocking.may_block(s):
        return None  # Redis answers a plain nil here, not the null array of a timeout

    def serve(key: bytes) -> Any:
        try:
            src_list = ks.get_list(src, write=True)
        except WrongTypeError:
            return blocking.SKIP
        if not src_list:
            return blocking.EMPTY
        try:
            ks.get_list(dst, write=True)
        except WrongTypeError as exc:
            return ErrorReply(exc.wire)  # unblocked with the error; the element stays
        return _lmove(s, src, dst, wherefrom, whereto)

    return blocking.block(s, [src], timeout, serve, NULL_ARRAY)


@command("BLMOVE", arity=6, flags=WRITE | DENYOOM | BLOCKING, group="list", keys=(1, 2, 1))
def blmove(s: Session, argv: list[bytes]) -> Any:
    """BLMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout

    The blocking LMOVE: when source is empty, wait until it gets an element or `timeout`
    seconds pass (0: forever). Inside MULTI it does not wait.

    Reply: the element moved; a null array on timeout (nil inside MULTI, as Redis).
    Errors: `syntax error`; the timeout errors of BLPOP; `WRONGTYPE` (when served after
    waiting, the client gets it and the element stays in source).
    """
    wherefrom, whereto = _side(argv[3]), _side(argv[4])
    timeout = to_timeout_ms(argv[5])
    return _blmove(s, argv[1], argv[2], wherefrom, whereto, timeout)


@command("BRPOPLPUSH", arity=4, flags=WRITE | DENYOOM | BLOCKING, group="list",
         keys=(1, 2, 1))
def brpoplpush(s: Session, argv: list[bytes]) -> Any:
    """BRPOPLPUSH source destination timeout

    BLMOVE source destination RIGHT LEFT timeout (deprecated in Redis 6.2).

    Reply: as BLMOVE.
    Errors: as BLMOVE.
    """
    timeout = to_timeout_ms(argv[3])
    return _blmove(s, argv[1], argv[2], RIGHT, LEFT, timeout)
