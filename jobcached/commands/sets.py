"""Set commands: membership, random picks, algebra (SINTER / SUNION / SDIFF and their STORE
forms), and SSCAN.

A set is a Python `set` of bytes in the keyspace. Handlers read it through `Keyspace.get_set` and
write through cache/sets.py (type check, memory accounting, removal of an emptied set). They
follow Redis 7.0's t_set.c in the order they check things, so a bad command gets the same error
from both servers.

Effects. SPOP is random, so it propagates what it did: `SREM key <members popped>` (`DEL key`
when it took the whole set). The STORE forms propagate themselves unchanged: given the same
sources, which a follower has, they are deterministic, and one record is smaller than the
result they write.

Randomness comes from the keyspace's injected `rng`. SRANDMEMBER picks uniformly; Python sets
cannot be indexed, so on a large set that costs a walk (O(n) at C speed). SPOP picks uniformly
up to `cache.sets.SAMPLE_MAX_MEMBERS` members and in hash-table order beyond (cache/sets.py).

SSCAN (theory of operation). A set of up to SSCAN_WHOLE_MAX_MEMBERS members (or no more than
COUNT) comes whole, with cursor 0, as Redis returns its small intset sets (in numeric order when
the members are all integers, as an intset is). Larger sets have no positions to put in a
cursor, so cursor 0 takes a snapshot: the list of members at that moment (8 bytes per member),
kept under an id. The cursor is `id << 32 | r`: positions r-1 .. 0 of the snapshot are still to
visit. Each call returns the members of the next COUNT positions that are still in the set.
Members present for the whole iteration are in the snapshot, so they are returned exactly once;
members added meanwhile may be missed, as Redis allows. At most SSCAN_MAX_SNAPSHOTS snapshots
(SSCAN_MAX_SNAPSHOT_MEMBERS members in all) are kept, least recently used dropped first (in
cache/setscan.py, one store per server: `Databases.set_snapshots`, as cursors name no database); a
cursor whose snapshot is gone re-snapshots the set, which continues correctly as long as the
set did not change (Python iterates an unchanged set in the same order).
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

from jobcached.cache.glob import compile_glob
from jobcached.cache.sets import add_members, pop_members, remove_members
from jobcached.commands.args import (
    INT64_MAX,
    INT64_MIN,
    check_reply_size,
    scan_options,
    to_count,
    to_cursor,
    to_long_in,
)
from jobcached.commands.registry import DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.server.notify import GENERIC, SET, notify, notify_if_gone
from jobcached.server.session import Session

#: SSCAN returns a set this small whole, with cursor 0 (Redis' set-max-intset-entries).
SSCAN_WHOLE_MAX_MEMBERS = 512
_POSITION_BITS = 32  # the low bits of an SSCAN cursor: positions left in the snapshot
_CANONICAL_INT = re.compile(rb"0|-?[1-9][0-9]{0,18}")


# ------------------------------------------------------------------------------- membership


@command("SADD", arity=-3, flags=WRITE | DENYOOM | FAST, group="set", keys=(1, 1, 1))
def sadd(s: Session, argv: list[bytes]) -> int:
    """SADD key member [member ...]

    Add the members to the set, creating it if needed.

    Reply: integer: how many members were not already there.
    Errors: `WRONGTYPE`.
    """
    key = argv[1]
    added = add_members(s.keyspace, key, argv[2:])
    if added:
        notify(s.server, SET, b"sadd", key)
    return added


@command("SREM", arity=-3, flags=WRITE | FAST, group="set", keys=(1, 1, 1))
def srem(s: Session, argv: list[bytes]) -> int:
    """SREM key member [member ...]

    Remove the members from the set; the key is deleted when the set becomes empty.

    Reply: integer: how many members were removed.
    Errors: `WRONGTYPE`.
    """
    key = argv[1]
    removed, left = remove_members(s.keyspace, key, argv[2:])
    if removed:
        notify(s.server, SET, b"srem", key)
        notify_if_gone(s.server, key, left)
    return removed


@command("SMEMBERS", arity=2, flags=READONLY, group="set", keys=(1, 1, 1))
def smembers(s: Session, argv: list[bytes]) -> set[bytes]:
    """SMEMBERS key

    All the members of the set.

    Reply: set (RESP2: array), empty when the key does not exist.
    Errors: `WRONGTYPE`.
    """
    members = s.keyspace.get_set(argv[1])
    return set() if members is None else set(members)


@command("SISMEMBER", arity=3, flags=READONLY | FAST, group="set", keys=(1, 1, 1))
def sismember(s: Session, argv: list[bytes]) -> int:
    """SISMEMBER key member

    Whether the member is in the set.

    Reply: integer 1 or 0.
    Errors: `WRONGTYPE`.
    """
    members = s.keyspace.get_set(argv[1])
    return int(members is not None and argv[2] in members)


@command("SMISMEMBER", arity=-3, flags=READONLY | FAST, group="set", keys=(1, 1, 1))
def smismember(s: Session, argv: list[bytes]) -> list[int]:
    """SMISMEMBER key member [member ...]

    For each member, whether it is in the set.

    Reply: array of integers 1 or 0.
    Errors: `WRONGTYPE`.
    """
    members = s.keyspace.get_set(argv[1]) or set()
    return [int(m in members) for m in argv[2:]]


@command("SCARD", arity=2, flags=READONLY | FAST, group="set", keys=(1, 1, 1))
def scard(s: Session, argv: list[bytes]) -> int:
    """SCARD key

    The number of members.

    Reply: integer, 0 when the key does not exist.
    Errors: `WRONGTYPE`.
    """
    members = s.keyspace.get_set(argv[1])
    return 0 if members is None else len(members)


@command("SMOVE", arity=4, flags=WRITE | FAST, group="set", keys=(1, 2, 1))
def smove(s: Session, argv: list[bytes]) -> int:
    """SMOVE source destination member

    Move the member from one set to another (creating destination if needed).

    Reply: integer 1 if the member was moved (or, with source = destination, is there); 0 if it
    is not in source or source does not exist.
    Errors: `WRONGTYPE` (either key).
    """
    src, dst, member = argv[1], argv[2], argv[3]
    ks = s.keyspace
    src_set = ks.get_set(src, write=True)
    if src_set is None:
        return 0
    ks.get_set(dst, write=True)  # WRONGTYPE before anything moves
    if src == dst or member not in src_set:
        return int(member in src_set)
    # Two operations, not one: Redis sends `srem` (and `del`) for the source before a new
    # destination's `new` event, which the keyspace sends when it creates the key.
    server = s.server
    left = remove_members(ks, src, (member,))[1]
    notify(server, SET, b"srem", src)
    notify_if_gone(server, src, left)
    if add_members(ks, dst, (member,)):
        notify(server, SET, b"sadd", dst)
    return 1


# ------------------------------------------------------------------------------- random


def _sample(s: Session, members: set[bytes], count: int) -> list[bytes]:
    """`count` distinct members chosen uniformly (count < len(members))."""
    return s.keyspace.rng.sample(list(members), count)


@command("SPOP", arity=-2, flags=WRITE | FAST, group="set", keys=(1, 1, 1))
def spop(s: Session, argv: list[bytes]) -> Any:
    """SPOP key [count]

    Remove and return random members. Sets of up to 1024 members are sampled uniformly;
    larger ones give members in an arbitrary (hash) order, in O(1) per member.

    Reply: bulk string, or nil when the key does not exist; with count, a set (RESP2: array) of
    up to count members, empty when the key does not exist.
    Errors: `value is out of range, must be positive`; `syntax error` (more arguments);
    `WRONGTYPE`.
    """
    if len(argv) > 3:
        raise SyntaxErr()
    count = to_count(argv[2]) if len(argv) == 3 else None
    key = argv[1]
    result = pop_members(s.keyspace, key, 1 if count is None else count)
    if result is None:
        return None if count is None else set()
    popped, left = result
    if not popped:
        return set()
    notify(s.server, SET, b"spop", key)
    if left:
        s.server.effects.cache([b"SREM", key, *popped], (key,))
    else:
        s.server.effects.cache([b"DEL", key], (key,))
        notify(s.server, GENERIC, b"del", key)
    return popped[0] if count is None else set(popped)


@command("SRANDMEMBER", arity=-2, flags=READONLY, group="set", keys=(1, 1, 1))
def srandmember(s: Session, argv: list[bytes]) -> Any:
    """SRANDMEMBER key [count]

    Random members, uniformly, without removing them. A positive count returns that many
    distinct members (the whole set when count >= its size); a negative count returns |count|
    members that may repeat. Unlike Redis, which builds any reply asked for, a reply of more
    than 10,000,000 elements is refused. Costs O(n) for sets larger than 1024 members (Redis:
    O(1) per member).

    Reply: bulk string, or nil when the key does not exist; with count, an array (empty when
    the key does not exist).
    Errors: `value is out of range, value must between -9223372036854775807 and
    9223372036854775807`; `count is too large: ...`; `syntax error`; `WRONGTYPE`.
    """
    if len(argv) > 3:
        raise SyntaxErr()
    ks = s.keyspace
    if len(argv) == 2:
        members = ks.get_set(argv[1])
        if not members:
            return None
        return next(islice(members, int(ks.rng.random() * len(members)), None))
    count = to_long_in(argv[2], -INT64_MAX, INT64_MAX)
    members = ks.get_set(argv[1])
    if not members or count == 0:
        return []
    if count < 0:
        check_reply_size(-count)
        return ks.rng.choices(list(members), k=-count)
    if count >= len(members):
        return list(members)
    return _sample(s, members, count)


# ------------------------------------------------------------------------------- algebra


def _sets_of(s: Session, keys: list[bytes]) -> list[set[bytes] | None]:
    """The sets at the keys (None when missing); WRONGTYPE for any other type, all checked
    before anything is computed (as Redis 7.0)."""
    ks = s.keyspace
    return [ks.get_set(key) for key in keys]


def _inter(sets: list[set[bytes] | None]) -> set[bytes]:
    if not sets or any(not x for x in sets):
        return set()
    present = sorted((x for x in sets if x is not None), key=len)
    return present[0].intersection(*present[1:])


def _union(sets: list[set[bytes] | None]) -> set[bytes]:
    return set().union(*(x for x in sets if x))


def _diff(sets: list[set[bytes] | None]) -> set[bytes]:
    first = sets[0]
    if not first:
        return set()
    return first.difference(*(x for x in sets[1:] if x))


@command("SINTER", arity=-2, flags=READONLY, group="set", keys=(1, -1, 1))
def sinter(s: Session, argv: list[bytes]) -> set[bytes]:
    """SINTER key [key ...]

    The members present in all the sets (a missing key is an empty set).

    Reply: set (RESP2: array).
    Errors: `WRONGTYPE`.
    """
    return _inter(_sets_of(s, argv[1:]))


@command("SUNION", arity=-2, flags=READONLY, group="set", keys=(1, -1, 1))
def sunion(s: Session, argv: list[bytes]) -> set[bytes]:
    """SUNION key [key ...]

    The members present in any of the sets.

    Reply: set (RESP2: array).
    Errors: `WRONGTYPE`.
    """
    return _union(_sets_of(s, argv[1:]))


@command("SDIFF", arity=-2, flags=READONLY, group="set", keys=(1, -1, 1))
def sdiff(s: Session, argv: list[bytes]) -> set[bytes]:
    """SDIFF key [key ...]

    The members of the first set that are in none of the others.

    Reply: set (RESP2: array).
    Errors: `WRONGTYPE`.
    """
    return _diff(_sets_of(s, argv[1:]))


def _store(s: Session, argv: list[bytes], result: set[bytes]) -> int:
    """Write a STORE command's result over destination (any type, TTL cleared)."""
    dst = argv[1]
    ks = s.keyspace
    if result:
        ks.set(dst, result)
        notify(s.server, SET, argv[0].lower(), dst)  # sinterstore, sunionstore, sdiffstore
    elif not ks.delete(dst):
        return 0  # nothing there, nothing written: no effect to propagate
    else:
        notify(s.server, GENERIC, b"del", dst)
    return len(result)


@command("SINTERSTORE", arity=-3, flags=WRITE | DENYOOM, group="set", keys=(1, -1, 1))
def sinterstore(s: Session, argv: list[bytes]) -> int:
    """SINTERSTORE destination key [key ...]

    SINTER, stored at destination (overwritten whatever its type; deleted if the result is
    empty).

    Reply: integer: the size of the result.
    Errors: `WRONGTYPE` (a source key).
    """
    return _store(s, argv, _inter(_sets_of(s, argv[2:])))


@command("SUNIONSTORE", arity=-3, flags=WRITE | DENYOOM, group="set", keys=(1, -1, 1))
def sunionstore(s: Session, argv: list[bytes]) -> int:
    """SUNIONSTORE destination key [key ...]

    SUNION, stored at destination (as SINTERSTORE).

    Reply: integer: the size of the result.
    Errors: `WRONGTYPE` (a source key).
    """
    return _store(s, argv, _union(_sets_of(s, argv[2:])))


@command("SDIFFSTORE", arity=-3, flags=WRITE | DENYOOM, group="set", keys=(1, -1, 1))
def sdiffstore(s: Session, argv: list[bytes]) -> int:
    """SDIFFSTORE destination key [key ...]

    SDIFF, stored at destination (as SINTERSTORE).

    Reply: integer: the size of the result.
    Errors: `WRONGTYPE` (a source key).
    """
    return _store(s, argv, _diff(_sets_of(s, argv[2:])))


@command("SINTERCARD", arity=-3, flags=READONLY, group="set")
def sintercard(s: Session, argv: list[bytes]) -> int:
    """SINTERCARD numkeys key [key ...] [LIMIT limit]

    The size of the intersection of the sets, counting stops at LIMIT (0: no limit).

    Reply: integer.
    Errors: `numkeys should be greater than 0`; `Number of keys can't be greater than number of
    args`; `LIMIT can't be negative`; `syntax error`; `WRONGTYPE`.
    """
    numkeys = to_long_in(argv[1], 1, INT64_MAX, "numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise CommandError("Number of keys can't be greater than number of args")
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].upper() == b"LIMIT" and i + 1 < len(argv):
            limit = to_count(argv[i + 1], "LIMIT can't be negative")
            i += 2
        else:
            raise SyntaxErr()
    sets = _sets_of(s, argv[2 : 2 + numkeys])
    if any(not x for x in sets):
        return 0
    present = sorted((x for x in sets if x is not None), key=len)
    smallest, others = present[0], present[1:]
    found = 0
    for member in smallest:
        if all(member in other for other in others):
            found += 1
            if found == limit:
                break
    return found


# ------------------------------------------------------------------------------- scan


def _intset_order(members: set[bytes]) -> list[bytes] | None:
    """The members in numeric order if Redis would hold them as an intset (all canonical
    64-bit integers, at most 512 of them), whose scans come sorted; None otherwise."""
    if len(members) > SSCAN_WHOLE_MAX_MEMBERS:
        return None
    numbers = []
    for m in members:
        if not _CANONICAL_INT.fullmatch(m):
            return None
        value = int(m)
        if not INT64_MIN <= value <= INT64_MAX:
            return None
        numbers.append(value)
    numbers.sort()
    return [b"%d" % v for v in numbers]


@command("SSCAN", arity=-3, flags=READONLY, group="set", keys=(1, 1, 1))
def sscan(s: Session, argv: list[bytes]) -> list[Any]:
    """SSCAN key cursor [MATCH pattern] [COUNT count]

    Iterate over the members of a set: start with cursor 0, pass back the cursor each reply
    gives, stop when it is 0 again. A set of up to 512 members (or no more than COUNT) comes
    whole in one reply. Larger ones are walked COUNT members per call over a snapshot taken at
    cursor 0: members present for the whole iteration are returned exactly once, members added
    during it may be missed.

    Reply: array of the next cursor (bulk string) and an array of members.
    Errors: `invalid cursor`; `syntax error` (also for COUNT < 1); not an integer; `WRONGTYPE`.
    """
    cursor = to_cursor(argv[2])
    key = argv[1]
    members = s.keyspace.get_set(key)
    if members is None:
        return [b"0", []]
    count, pattern, _ = scan_options(argv, 3)
    n = len(members)
    if n <= SSCAN_WHOLE_MAX_MEMBERS or n <= count:
        page: list[bytes] = _intset_order(members) or list(members)
        next_cursor = 0
    else:
        snap_id, remaining = cursor >> _POSITION_BITS, cursor & ((1 << _POSITION_BITS) - 1)
        snapshots = s.server.dbs.set_snapshots
        snapshot = snapshots.find(snap_id, key, members) if snap_id else None
        if snapshot is None:
            snap_id, snapshot = snapshots.take(key, members, snap_id)
            if not cursor:
                remaining = len(snapshot)
        remaining = min(remaining, len(snapshot))
        bottom = max(remaining - count, 0)
        page = [m for m in snapshot[bottom:remaining] if m in members]
        if bottom:
            next_cursor = snap_id << _POSITION_BITS | bottom
        else:
            next_cursor = 0
            snapshots.drop(snap_id)
    if pattern is not None:
        matcher = compile_glob(pattern)
        page = [m for m in page if matcher.match(m)]
    return [b"%d" % next_cursor, page]

