"""The `notify-keyspace-events` flags: Redis' event classes, and their string spelling.

Why apart from `jobcached.server.notify` (which publishes the events): config.py validates
and canonicalises the setting with these functions, and config sits below the server. The flag
string is canonicalised as Redis' keyspaceEventsFlagsToString does (CONFIG GET shows `AKE` for
`KEA`).
"""

from __future__ import annotations

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
