"""Set operations: the writes of SADD, SREM, SPOP and SMOVE (a remove, then an add).

As cache/hashes.py (which says why these are functions over the Keyspace): each operation finds
the key with the right type (`WrongTypeError` otherwise), creates the set on first write,
keeps `used_memory` right through `Keyspace.notify_modified`, and drops a set left empty.
Handlers read sets through `Keyspace.get_set` and never change them; the STORE commands
replace a whole value with `Keyspace.set`. SADD and SREM take the value with
`Keyspace.lookup_write` and check its type inline (`get_set`, one call fewer: hot paths).

SPOP's randomness comes from the keyspace's injected `rng`. A set of up to SAMPLE_MAX_MEMBERS
is sampled uniformly. Python sets cannot be indexed, so a uniform pick from a larger set costs
a walk: SPOP then takes members in hash-table order (`set.pop()`, O(1)) instead. Bytes hashes
are seeded per process, so that order is arbitrary, but not a fresh draw for every call.
"""

from __future__ import annotations

from collections.abc import Iterable

from jobcached.cache.keyspace import Keyspace
from jobcached.cache.memory import item_size
from jobcached.errors import WrongTypeError

#: Sets up to this size are sampled uniformly by SPOP (a list copy of them costs microseconds).
SAMPLE_MAX_MEMBERS = 1024


def add_members(ks: Keyspace, key: bytes, members: Iterable[bytes]) -> int:
    """Add members, creating the set; returns how many were not there yet."""
    current = ks.lookup_write(key)
    if current is None:
        current = set()
        ks.set(key, current)
    elif type(current) is not set:
        raise WrongTypeError()
    before = len(current)
    grown = 0
    for member in members:
        if member not in current:
            current.add(member)
            grown += item_size(member)
    if grown:  # nothing new: nothing to account for, and no change to report
        ks.notify_modified(key, grown)
    return len(current) - before


def remove_members(ks: Keyspace, key: bytes, members: Iterable[bytes]) -> tuple[int, int]:
    """Remove members; the key goes with its last one. Returns how many were removed and how
    many are left (0: the key is gone, or never was)."""
    current = ks.lookup_write(key)
    if current is None:
        return 0, 0
    if type(current) is not set:
        raise WrongTypeError()
    freed = 0
    removed = 0
    for member in members:
        if member in current:
            current.discard(member)
            removed += 1
            freed += item_size(member)
    if removed:
        ks.notify_modified(key, -freed)
    return removed, len(current)


def pop_members(ks: Keyspace, key: bytes, count: int) -> tuple[list[bytes], int] | None:
    """SPOP: remove up to `count` random members (see the module docstring for how random);
    the key goes when they were all it had. Returns them and how many members are left, or
    None when the key does not exist. A count of 0 only checks the key's type."""
    members = ks.get_set(key, write=True)
    if members is None:
        return None
    if count == 0:
        return [], len(members)
    n = len(members)
    if count >= n:
        popped = list(members)
        ks.delete(key)
        return popped, 0
    if n <= SAMPLE_MAX_MEMBERS:
        popped = ks.rng.sample(list(members), count)
        members.difference_update(popped)
    else:
        popped = [members.pop() for _ in range(count)]
    ks.notify_modified(key, -sum(map(item_size, popped)))
    return popped, len(members)
