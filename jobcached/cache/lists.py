"""List operations: the writes of the push, pop, move and in-place list commands, on the keyspace.

As cache/hashes.py (which says why these are functions over the Keyspace): each operation finds
the key with the right type (`WrongTypeError` otherwise), creates the list on first push, keeps
`used_memory` right through `Keyspace.notify_modified`, and drops a list left empty. Handlers
read lists through `Keyspace.get_list` and never change them.

Readiness: a push and the destination of a move report the key to `Keyspace.on_ready`, so
clients blocked on the key (BLPOP ...) are served after the command (commands/blocking.py says
when). A list they create is reported by `Keyspace.set`, where Redis' dbAdd signals; one that
existed is reported here. LINSERT and LSET do not report: they need an existing, non-empty
list, which no list waiter can still be waiting on.

LPUSH / RPUSH and the pops take the value with `Keyspace.lookup_write` and check its type
inline (`get_list`, one call fewer: hot paths).

Ends are `left: bool` (the head is the left end, as in LPUSH / RPOP).
A list is a `collections.deque`: O(1) at both ends, O(n) in the middle, as a Redis quicklist is
in practice.
"""

from __future__ import annotations

from collections import deque

from jobcached.cache.keyspace import Keyspace
from jobcached.cache.memory import item_size
from jobcached.cache.zset import rank_span
from jobcached.errors import WrongTypeError


def _ready(ks: Keyspace, key: bytes) -> None:
    on_ready = ks.on_ready
    if on_ready is not None:
        on_ready(key)


def _append(ks: Keyspace, key: bytes, lst: deque[bytes] | None, values: list[bytes],
            left: bool) -> int:
    """Push values at one end of `lst` (creating the list when None); the new length."""
    if lst is None:
        lst = deque()
        ks.set(key, lst)  # a new key: the keyspace reports it ready
    else:
        _ready(ks, key)
    if left:
        lst.extendleft(values)
    else:
        lst.extend(values)
    ks.notify_modified(key, sum(map(item_size, values)))
    return len(lst)


def push(ks: Keyspace, key: bytes, values: list[bytes], left: bool,
         only_existing: bool = False) -> int:
    """LPUSH / RPUSH (one after the other, so LPUSH's last value ends up first), creating the
    list unless `only_existing` (LPUSHX / RPUSHX); the new length, 0 when nothing was pushed."""
    lst = ks.lookup_write(key)
    if lst is None:
        if only_existing:
            return 0
    elif type(lst) is not deque:
        raise WrongTypeError()
    return _append(ks, key, lst, values, left)


def pop(ks: Keyspace, key: bytes, left: bool, count: int) -> tuple[list[bytes], int] | None:
    """Pop up to `count` elements from one end; the key goes with its last element. Returns
    them and how many are left, or None when the key does not exist. A count of 0 only
    checks the key's type."""
    lst = ks.lookup_write(key)
    if lst is None:
        return None
    if type(lst) is not deque:
        raise WrongTypeError()
    take = lst.popleft if left else lst.pop
    values = [take() for _ in range(min(count, len(lst)))]
    if values:
        ks.notify_modified(key, -sum(map(item_size, values)))
    return values, len(lst)


def move(ks: Keyspace, src: bytes, dst: bytes, from_left: bool, to_left: bool
         ) -> tuple[bytes, int] | None:
    """LMOVE: pop an element from one end of `src` and push it at one end of `dst` (created if
    needed; `src` itself is a rotation). Both keys are type-checked before anything moves.
    Returns the element and how many elements `src` has left, or None when `src` does not
    exist."""
    src_list = ks.get_list(src, write=True)
    if src_list is None:
        return None
    dst_list = ks.get_list(dst, write=True)  # WRONGTYPE before anything moves
    value = src_list.popleft() if from_left else src_list.pop()
    if src == dst:
        if to_left:
            src_list.appendleft(value)
        else:
            src_list.append(value)
        ks.notify_modified(src)  # the deque may have gained or freed a block
        _ready(ks, dst)
    else:
        ks.notify_modified(src, -item_size(value))
        _append(ks, dst, dst_list, [value], to_left)
    return value, len(src_list)


def set_element(ks: Keyspace, key: bytes, index: int, value: bytes) -> bool | None:
    """LSET: replace the element at `index` (negative counts from the end). None when the key
    does not exist, False when the index is out of range."""
    lst = ks.get_list(key, write=True)
    if lst is None:
        return None
    if not -len(lst) <= index < len(lst):
        return False
    old = lst[index]
    lst[index] = value
    ks.notify_modified(key, item_size(value) - item_size(old))
    return True


def insert(ks: Keyspace, key: bytes, pivot: bytes, value: bytes, before: bool) -> int:
    """LINSERT: insert `value` before (or after) the first `pivot`. The new length; -1 when
    pivot is not found, 0 when the key does not exist."""
    lst = ks.get_list(key, write=True)
    if lst is None:
        return 0
    try:
        index = lst.index(pivot)
    except ValueError:
        return -1
    lst.insert(index if before else index + 1, value)
    ks.notify_modified(key, item_size(value))
    return len(lst)


def remove(ks: Keyspace, key: bytes, count: int, element: bytes) -> tuple[int, int]:
    """LREM: remove the first `count` occurrences of `element` from the head (count > 0), the
    last |count| from the tail (count < 0), or all (0). Returns how many were removed and how
    many elements are left (0: the key is gone, or never was)."""
    lst = ks.get_list(key, write=True)
    if lst is None:
        return 0, 0
    limit = abs(count) or len(lst)
    kept: list[bytes] = []
    removed = 0
    for value in (reversed(lst) if count < 0 else lst):
        if removed < limit and value == element:
            removed += 1
        else:
            kept.append(value)
    if not removed:
        return 0, len(lst)
    if count < 0:
        kept.reverse()
    lst.clear()
    lst.extend(kept)
    ks.notify_modified(key, -removed * item_size(element))
    return removed, len(lst)


def trim(ks: Keyspace, key: bytes, start: int, stop: int) -> tuple[int, int] | None:
    """LTRIM: keep the elements from `start` to `stop` (see `zset.rank_span`); an empty range
    deletes the key. Returns how many elements went and how many are left, or None when the
    key does not exist."""
    lst = ks.get_list(key, write=True)
    if lst is None:
        return None
    n = len(lst)
    span = rank_span(start, stop, n)
    if span is None:
        ks.delete(key)
        return n, 0
    left, right = span[0], n - 1 - span[1]
    if left or right:
        freed = 0
        for _ in range(left):
            freed += item_size(lst.popleft())
        for _ in range(right):
            freed += item_size(lst.pop())
        ks.notify_modified(key, -freed)
    return left + right, len(lst)
