"""Sorted-set operations: the writes of ZADD, ZINCRBY, ZREM, the pops, the removals by range and
the STORE commands, on the keyspace. (zset.py is the value itself; this module puts it in keys.)

As cache/hashes.py (which says why these are functions over the Keyspace): each operation finds
the key with the right type (`WrongTypeError` otherwise), creates the sorted set when a member
is added, keeps `used_memory` right through `Keyspace.notify_modified`, and drops a sorted set
left empty. Handlers read sorted sets through `Keyspace.get_zset` and never change them.

Readiness: a sorted set created by adding a member (ZADD, ZINCRBY) or by storing a non-empty
result (ZRANGESTORE, ZUNIONSTORE ...) is reported to `Keyspace.on_ready` by `Keyspace.set`,
where Redis' dbAdd signals, so clients blocked on it (BZPOPMIN ...) are served after the
command (commands/blocking.py); a member added to an existing one is reported here. A result
stored over an existing key is not (Redis' dbOverwrite), nor is a score update: no sorted-set
waiter can be waiting on a set that has members.

ZADD and ZREM take the value with `Keyspace.lookup_write` and check its type inline
(`get_zset`, one call fewer: hot paths).

A score of -0 is stored as 0, as Redis stores it in its small (listpack) sorted sets.
"""

from __future__ import annotations

from jobcached.cache.keyspace import Keyspace
from jobcached.cache.memory import item_size
from jobcached.cache.zset import ADDED, UPDATED, LexBound, ZSet
from jobcached.errors import WrongTypeError

Popped = list[tuple[bytes, float]]  # (member, score) in the order they were taken


def _ready(ks: Keyspace, key: bytes) -> None:
    on_ready = ks.on_ready
    if on_ready is not None:
        on_ready(key)


def _freed(items: Popped) -> int:
    return -sum(item_size(m) for m, _ in items)


def add(ks: Keyspace, key: bytes, items: list[tuple[float, bytes]], nx: bool = False,
        xx: bool = False, gt: bool = False, lt: bool = False) -> tuple[int, int]:
    """ZADD: add (score, member) pairs or update their scores, under the options of
    `ZSet.add`; the sorted set is created only if a member is added. Returns how many members
    were added and how many had their score changed."""
    zset = ks.lookup_write(key)
    created = zset is None
    if zset is None:
        if xx:
            return 0, 0
        zset = ZSet()  # stored below, only once something was added
    elif type(zset) is not ZSet:
        raise WrongTypeError()
    added = updated = 0
    grown = 0
    for score, member in items:
        outcome = zset.add(member, score + 0.0, nx, xx, gt, lt)  # -0 is stored as 0
        if outcome == ADDED:
            added += 1
            grown += item_size(member)
        elif outcome == UPDATED:
            updated += 1
    if created:
        if added:
            ks.set(key, zset)  # a new key: the keyspace reports it ready
    elif added or updated:
        ks.notify_modified(key, grown)
        if added:
            _ready(ks, key)
    return added, updated


def incr(ks: Keyspace, key: bytes, increment: float, member: bytes, nx: bool = False,
         xx: bool = False, gt: bool = False, lt: bool = False) -> tuple[float | None, bool]:
    """ZINCRBY / ZADD INCR: add `increment` to the member's score (a new member starts at 0),
    under the options of `ZSet.incr`. Returns the score to reply with (None when an option
    vetoed the change; for a new member the increment itself, so a -0 keeps its sign in the
    reply, as in Redis) and whether the sorted set changed."""
    zset = ks.get_zset(key, write=True)
    created = zset is None
    if zset is None:
        if xx:
            return None, False
        zset = ZSet()  # stored below, only once something was added
    old = zset.score(member)
    result = zset.incr(member, increment + 0.0, nx=nx, xx=xx, gt=gt, lt=lt)  # -0 is stored as 0
    if result is None:
        return None, False
    if old is None:
        if created:
            ks.set(key, zset)  # a new key: the keyspace reports it ready
        else:
            ks.notify_modified(key, item_size(member))
            _ready(ks, key)
        return increment, True
    if result == old:
        return result, False
    ks.notify_modified(key, 0)
    return result, True


def remove(ks: Keyspace, key: bytes, members: list[bytes]) -> tuple[int, int]:
    """ZREM: remove members; the key goes with its last one. Returns how many were removed and
    how many are left (0: the key is gone, or never was)."""
    zset = ks.lookup_write(key)
    if zset is None:
        return 0, 0
    if type(zset) is not ZSet:
        raise WrongTypeError()
    freed = 0
    removed = 0
    for member in members:
        if zset.remove(member):
            removed += 1
            freed += item_size(member)
    if removed:
        ks.notify_modified(key, -freed)
    return removed, len(zset)


def pop(ks: Keyspace, key: bytes, highest: bool, count: int) -> tuple[Popped, int] | None:
    """ZPOPMIN / ZPOPMAX: take up to `count` members with the lowest (highest) scores, in that
    order; the key goes with its last member. Returns them and how many are left, or None when
    the key does not exist. A count of 0 only checks the key's type."""
    zset = ks.get_zset(key, write=True)
    if zset is None:
        return None
    if not count:
        return [], len(zset)
    popped = zset.pop_max(count) if highest else zset.pop_min(count)
    ks.notify_modified(key, _freed(popped))
    return popped, len(zset)


def _remove_span(ks: Keyspace, key: bytes, zset: ZSet, removed: Popped) -> tuple[int, int]:
    if removed:
        ks.notify_modified(key, _freed(removed))
    return len(removed), len(zset)


def remove_range_by_rank(ks: Keyspace, key: bytes, start: int, stop: int) -> tuple[int, int]:
    """ZREMRANGEBYRANK: how many members went and how many are left (0 also for no key)."""
    zset = ks.get_zset(key, write=True)
    if zset is None:
        return 0, 0
    return _remove_span(ks, key, zset, zset.remove_range_by_rank(start, stop))


def remove_range_by_score(ks: Keyspace, key: bytes, lo: float, hi: float, lo_excl: bool,
                          hi_excl: bool) -> tuple[int, int]:
    """ZREMRANGEBYSCORE: as `remove_range_by_rank`, for a score range."""
    zset = ks.get_zset(key, write=True)
    if zset is None:
        return 0, 0
    return _remove_span(ks, key, zset, zset.remove_range_by_score(lo, hi, lo_excl, hi_excl))


def remove_range_by_lex(ks: Keyspace, key: bytes, lo: LexBound, hi: LexBound
                        ) -> tuple[int, int]:
    """ZREMRANGEBYLEX: as `remove_range_by_rank`, for a range of members."""
    zset = ks.get_zset(key, write=True)
    if zset is None:
        return 0, 0
    return _remove_span(ks, key, zset, zset.remove_range_by_lex(lo, hi))


def store(ks: Keyspace, key: bytes, zset: ZSet) -> bool:
    """The STORE commands' write: `zset` (a new value, not another key's) replaces `key`
    whatever it held (TTL cleared); an empty one deletes it instead. Whether the key changed.
    Readiness: `Keyspace.set` reports the key when it is new (module docstring)."""
    if not zset:
        return ks.delete(key)
    ks.set(key, zset)
    return True
