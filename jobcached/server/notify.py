"""Keyspace notifications: `notify-keyspace-events`, and the one `notify()` commands call.

After Redis' notify.c. Every command that changes a key calls `notify(server, CLASS, event,
key)` where Redis calls notifyKeyspaceEvent, with Redis' event name (`set`, `hset`, `lpush`,
`rename_from`, `expired` ...). When the configured flags include the event's class, the event is
published as ordinary pub/sub messages:

- `K`: on `__keyspace@<db>__:<key>`, the message is the event name;
- `E`: on `__keyevent@<db>__:<event>`, the message is the key.

A class without K or E publishes nothing. The flags are cached as an int on ServerState
(`notify_flags`), so a write pays one attribute load and one `&` while notifications are off,
Redis' default. Job status events (`__job__:<id>`, `__queue__:<q>`) are not keyspace events
and do not depend on these flags.

The flag string is canonicalised as Redis' keyspaceEventsFlagsToString does (CONFIG GET shows
`AKE` for `KEA`): this module has no server import so config.py can validate with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobcached.server.state import ServerState

# Classes, with Redis' bit values (server.h NOTIFY_*).
KEYSPACE = 1 << 0  # K
KEYEVENT = 1 << 1  # E
GENERIC = 1 << 2  # g: DEL, EXPIRE, RENAME, MOVE, COPY, PERSIST ...
STRING = 1 << 3  # $
LIST = 1 << 4  # l
SET = 1 << 5  # s
HASH = 1 << 6  # h
ZSET = 1 << 7  # z
EXPIRED = 1 << 8  # x: a key removed because its TTL passed
EVICTED = 1 << 9  # e: a key evicted for maxmemory
STREAM = 1 << 10  # t
KEY_MISS = 1 << 11  # m: a read found no key (not part of A)
MODULE = 1 << 13  # d: module types (none here; accepted for compatibility)
NEW = 1 << 14  # n: a key was created (not part of A)
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE

_CLASS_OF = {"A": ALL, "g": GENERIC, "$": STRING, "l": LIST, "s": SET, "h": HASH, "z": ZSET,
             "x": EXPIRED, "e": EVICTED, "K": KEYSPACE, "E": KEYEVENT, "t": STREAM,
             "m": KEY_MISS, "d": MODULE, "n": NEW}
#: the order keyspaceEventsFlagsToString writes the classes that A does not stand for
_ORDER = ("g", "$", "l", "s", "h", "z", "x", "e", "t", "d", "n")


def parse_flags(text: str) -> int:
    """The flags a `notify-keyspace-events` string names; ValueError on an unknown class."""
    flags = 0
    for char in text:
        try:
            flags |= _CLASS_OF[char]
        except KeyError:
            raise ValueError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.") from None
    return flags


def flags_to_string(flags: int) -> str:
    """Redis' canonical spelling of `flags` (what CONFIG GET shows)."""
    # With every class of A set, Redis 7.0 writes A and drops `n`, so we do too.
    out = "A" if flags & ALL == ALL else "".join(c for c in _ORDER if flags & _CLASS_OF[c])
    for char, bit in (("K", KEYSPACE), ("E", KEYEVENT), ("m", KEY_MISS)):
        if flags & bit:
            out += char
    return out


def canonical(text: str) -> str:
    """Redis' spelling of a flag string (CONFIG GET)."""
    return flags_to_string(parse_flags(text))


def valid_notify_flags(text: str) -> str:
    """The config parser: the string itself once its classes are checked. It is not stored
    canonical, because Redis' spelling of A-with-n drops the n that still counts."""
    parse_flags(text)
    return text


def notify(server: ServerState, kind: int, event: bytes, key: bytes, db: int | None = None
           ) -> None:
    """Publish `event` on `key` (in `db`, by default the running command's database) if
    the configured flags include class `kind`."""
    flags = server.notify_flags
    if not flags & kind:
        return
    index = server.db if db is None else db
    pubsub = server.pubsub
    if flags & KEYSPACE:
        pubsub.publish(b"__keyspace@%d__:%s" % (index, key), event)
    if flags & KEYEVENT:
        pubsub.publish(b"__keyevent@%d__:%s" % (index, event), key)


def notify_if_gone(server: ServerState, key: bytes, left: int) -> None:
    """`del` for a container a command emptied (`left`, the items it has left, is 0: the
    keyspace has dropped it), after the command's own event, as Redis does."""
    if not left:
        notify(server, GENERIC, b"del", key)
