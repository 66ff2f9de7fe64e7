"""Hash operations: the writes of HSET, HSETNX, HDEL and the HINCRBY family, on the keyspace.

Why here and not in the handlers: a container write is more than the dict operation. It has to
find the key with the right type (`WrongTypeError` otherwise), create the hash on first write,
keep `used_memory` right (`Keyspace.notify_modified` with the `item_size` of what came and
went) and drop the key when its last field goes. Done once here, every handler gets it right
and stays what DESIGN.md asks of it: parse arguments, call the engine, propagate, reply.

Why functions over the Keyspace rather than methods on it or a per-type facade object: this
is Redis' t_hash.c next to db.c, one module per type; keyspace.py stays about keys, and a call
costs no extra object or attribute lookup on the hot path (HSET). Reads need no operation of
their own: handlers read the dict `Keyspace.get_hash` returns and never change it. The hot
operations (HSET, HDEL) take the value with `Keyspace.lookup_write` and check its type inline,
which is what `get_hash` does, one call fewer.

A hash is a plain dict, insertion-ordered as Redis' small listpack hashes are.
"""

from __future__ import annotations

from collections.abc import Iterable

from jobcached.cache.keyspace import Keyspace
from jobcached.cache.memory import item_size
from jobcached.errors import WrongTypeError


def set_fields(ks: Keyspace, key: bytes, pairs: Iterable[tuple[bytes, bytes]]) -> int:
    """Store field/value pairs, creating the hash; returns how many fields are new."""
    h = ks.lookup_write(key)
    if h is None:
        h = {}
        ks.set(key, h)
    elif type(h) is not dict:
        raise WrongTypeError()
    added = delta = 0
    for field, value in pairs:
        old = h.get(field)
        if old is None:
            added += 1
            delta += item_size(field) + item_size(value)
        else:
            delta += item_size(value) - item_size(old)
        h[field] = value
    ks.notify_modified(key, delta)
    return added


def set_new_field(ks: Keyspace, key: bytes, field: bytes, value: bytes) -> bool:
    """HSETNX: store the field only if the hash lacks it (creating the hash); True if stored."""
    h = ks.get_hash(key, write=True)
    if h is not None and field in h:
        return False
    set_fields(ks, key, ((field, value),))
    return True


def delete_fields(ks: Keyspace, key: bytes, fields: Iterable[bytes]) -> tuple[list[bytes], int]:
    """Delete fields; the key goes with its last field. Returns the fields that existed (in
    the order given) and how many fields are left (0: the key is gone, or never was)."""
    h = ks.lookup_write(key)
    if h is None:
        return [], 0
    if type(h) is not dict:
        raise WrongTypeError()
    deleted = []
    delta = 0
    for field in fields:
        value = h.pop(field, None)
        if value is not None:
            deleted.append(field)
            delta -= item_size(field) + item_size(value)
    if deleted:
        ks.notify_modified(key, delta)
    return deleted, len(h)
