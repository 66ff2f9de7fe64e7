"""Stream operations on the keyspace where clients blocked reading streams (XREAD, XREADGROUP)
must learn something: XADD's store, XGROUP DESTROY, and a stream dropped under a waiter.

Why here and not in the handlers: readiness belongs with the writes, as for lists and sorted
sets (cache/lists.py, cache/zsets.py), so the stream handlers only parse arguments and shape
replies. Redis signals a stream key where `Keyspace` signals any key (dbAdd: a new stream,
RENAME, COPY, MOVE, RESTORE) and in three places of its own, which are these functions:
xaddCommand after every append (`appended`), XGROUP DESTROY so that the group's waiters get
NOGROUP (`destroy_group`), and the deletion of the key so that XREADGROUP waiters get UNBLOCKED
(`watch_dropped`). XGROUP SETID, CREATECONSUMER, XDEL and XTRIM wake nobody, in Redis as here.

The value's own changes (entries, groups, pending lists) are stream.py's methods; a handler
that changes group state re-measures the key with `Keyspace.notify_modified(key, 0)`.
"""

from __future__ import annotations

import weakref

from jobcached.cache.keyspace import Keyspace
from jobcached.cache.stream import Stream


def _ready(ks: Keyspace, key: bytes) -> None:
    on_ready = ks.on_ready
    if on_ready is not None:
        on_ready(key)


def appended(ks: Keyspace, key: bytes, stream: Stream, created: bool) -> None:
    """XADD's write, once `stream` has its new entry (and its trim): store it when `created`
    (the keyspace reports a new key ready), else re-measure it and report it, as Redis'
    xaddCommand signals after every append (a waiter past the old last id can now read)."""
    if created:
        ks.set(key, stream)
    else:
        ks.notify_modified(key, 0)
        _ready(ks, key)


def destroy_group(ks: Keyspace, key: bytes, stream: Stream, name: bytes) -> None:
    """XGROUP DESTROY: drop the group `name` (it must exist), its consumers and pending
    entries; clients blocked reading through it are woken, to get NOGROUP."""
    del stream.groups[name]
    ks.notify_modified(key, 0)
    _ready(ks, key)


def watch_dropped(ks: Keyspace, key: bytes, stream: Stream) -> weakref.ref[Stream]:
    """A weak reference to `stream`, the value of `key` in `ks`, that reports `key` to the
    readiness hook when the keyspace drops the value (DEL, overwrite, expiry, eviction,
    FLUSHALL), as Redis' signalDeletedKeyAsReady does; the caller keeps it while a client
    blocks on the key. Streams hold no reference cycles, so the value goes at once, when the
    keyspace has finished removing the key. RENAME and MOVE keep the value alive under another
    name: `Keyspace.rename` and `move_to` report the old one."""

    def dropped(_: weakref.ref[Stream]) -> None:
        _ready(ks, key)

    return weakref.ref(stream, dropped)
