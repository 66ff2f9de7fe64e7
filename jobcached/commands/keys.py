"""Generic key commands: deletion, existence, TTLs, iteration, renaming, OBJECT.

TTL writes propagate absolute times only: every EXPIRE / PEXPIRE / EXPIREAT becomes
`PEXPIREAT key <unix ms>`, and a time already in the past deletes the key and propagates DEL.
MOVE and SELECT are in databases.py; COPY ... DB copies into another database.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import INT64_MAX, scan_options, to_c_int, to_cursor, to_int
from jobcached.commands.registry import (
    DENYOOM,
    FAST,
    READONLY,
    WRITE,
    command,
    container,
    subcommand,
)
from jobcached.errors import CommandError, NoSuchKeyError, SyntaxErr
from jobcached.net.replies import OK, Simple
from jobcached.server.notify import GENERIC, notify
from jobcached.server.session import Session


@command("DEL", arity=-2, flags=WRITE, group="generic", keys=(1, -1, 1))
def del_(s: Session, argv: list[bytes]) -> int:
    """DEL key [key ...]

    Delete keys.

    Reply: integer: how many of the keys existed.
    """
    keyspace = s.keyspace
    deleted = [key for key in argv[1:] if keyspace.delete(key)]
    leases = s.server.leases
    if leases.table:  # a delete says the source changed: even of a missing key, it voids a fill
        for key in argv[1:]:
            leases.invalidate(s.db, key)
    if deleted:
        s.server.effects.cache([b"DEL", *deleted], deleted)
        for key in deleted:
            notify(s.server, GENERIC, b"del", key)
    return len(deleted)


@command("UNLINK", arity=-2, flags=WRITE | FAST, group="generic", keys=(1, -1, 1))
def unlink(s: Session, argv: list[bytes]) -> int:
    """UNLINK key [key ...]

    Delete keys (the same as DEL here: a value is freed by reference counting).

    Reply: integer: how many of the keys existed.
    """
    return del_(s, argv)


@command("EXISTS", arity=-2, flags=READONLY | FAST, group="generic", keys=(1, -1, 1))
def exists(s: Session, argv: list[bytes]) -> int:
    """EXISTS key [key ...]

    Count how many of the keys exist (a key named twice counts twice).

    Reply: integer.
    """
    keyspace = s.keyspace
    return sum(1 for key in argv[1:] if keyspace.exists(key))


@command("TOUCH", arity=-2, flags=READONLY | FAST, group="generic", keys=(1, -1, 1))
def touch(s: Session, argv: list[bytes]) -> int:
    """TOUCH key [key ...]

    Mark keys as just accessed (for LRU / LFU eviction) and count the ones that exist.

    Reply: integer.
    """
    lookup = s.keyspace.lookup_read
    return sum(1 for key in argv[1:] if lookup(key) is not None)


@command("TYPE", arity=2, flags=READONLY | FAST, group="generic", keys=(1, 1, 1))
def type_(s: Session, argv: list[bytes]) -> Simple:
    """TYPE key

    The type of the value stored at a key.

    Reply: status: `string`, `hash`, `list`, `set`, `zset`, or `none` when the key does not
    exist.
    """
    return Simple(s.keyspace.type_name(argv[1]).encode())


# --------------------------------------------------------------------------- TTLs

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_EXPIRE_FLAGS = {b"NX": _NX, b"XX": _XX, b"GT": _GT, b"LT": _LT}
_LLONG_MIN_DIV_1000 = -(2**63 // 1000)  # C's LLONG_MIN / 1000 truncates toward zero


def _expire_flags(argv: list[bytes]) -> int:
    """NX / XX / GT / LT after the time, with Redis' compatibility errors."""
    flags = 0
    for raw in argv[3:]:
        flag = _EXPIRE_FLAGS.get(raw.upper())
        if flag is None:
            text = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            raise CommandError(f"Unsupported option {text}")
        flags |= flag
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise CommandError("NX and XX, GT or LT options at the same time are not compatible")
    if flags & _GT and flags & _LT:
        raise CommandError("GT and LT options at the same time are not compatible")
    return flags


def _expire(s: Session, argv: list[bytes], seconds: bool, relative: bool, name: str) -> int:
    """expireGenericCommand: parse, convert to absolute ms, apply the conditions, set or delete."""
    flags = _expire_flags(argv) if len(argv) > 3 else 0
    when = to_int(argv[2])
    if seconds:
        if when > INT64_MAX // 1000 or when < _LLONG_MIN_DIV_1000:
            raise CommandError(f"invalid expire time in '{name}' command")
        when *= 1000
    now = s.server.clock.now_ms()
    if relative:
        if when > INT64_MAX - now:
            raise CommandError(f"invalid expire time in '{name}' command")
        when += now
    key = argv[1]
    ks = s.keyspace
    if ks.lookup_write(key) is None:
        return 0
    if flags:
        current = ks.expire_time_ms(key)  # -1: no TTL, an infinite one for GT / LT
        if ((flags & _NX and current != -1) or (flags & _XX and current == -1)
                or (flags & _GT and (current == -1 or when <= current))
                or (flags & _LT and current != -1 and when >= current)):
            return 0
    if when <= now:
        ks.delete(key)
        s.server.effects.cache([b"DEL", key], (key,))
        notify(s.server, GENERIC, b"del", key)
    else:
        ks.expire_at(key, when)
        s.server.effects.cache([b"PEXPIREAT", key, b"%d" % when], (key,))
        notify(s.server, GENERIC, b"expire", key)
    return 1


@command("EXPIRE", arity=-3, flags=WRITE | FAST, group="generic", keys=(1, 1, 1))
def expire(s: Session, argv: list[bytes]) -> int:
    """EXPIRE key seconds [NX | XX | GT | LT]

    Set a key's TTL in seconds. NX: only if it has none; XX: only if it has one; GT / LT: only
    if the new expiry is later / earlier than the current one (no TTL counts as infinite). A
    time not in the future deletes the key.

    Reply: integer: 1 if the TTL was set (or the key deleted), 0 if the key does not exist or a
    condition failed.
    Errors: `Unsupported option x`; `NX and XX, GT or LT options at the same time are not
    compatible`; `GT and LT options at the same time are not compatible`; not an integer;
    `invalid expire time in 'expire' command` when the time overflows.
    """
    return _expire(s, argv, seconds=True, relative=True, name="expire")


@command("PEXPIRE", arity=-3, flags=WRITE | FAST, group="generic", keys=(1, 1, 1))
def pexpire(s: Session, argv: list[bytes]) -> int:
    """PEXPIRE key milliseconds [NX | XX | GT | LT]

    Set a key's TTL in milliseconds; options as EXPIRE.

    Reply: integer: 1 if set, 0 if not.
    Errors: as EXPIRE.
    """
    return _expire(s, argv, seconds=False, relative=True, name="pexpire")


@command("EXPIREAT", arity=-3, flags=WRITE | FAST, group="generic", keys=(1, 1, 1))
def expireat(s: Session, argv: list[bytes]) -> int:
    """EXPIREAT key unix-time-seconds [NX | XX | GT | LT]

    Set a key's expiry as an absolute unix time in seconds; options as EXPIRE.

    Reply: integer: 1 if set, 0 if not.
    Errors: as EXPIRE.
    """
    return _expire(s, argv, seconds=True, relative=False, name="expireat")


@command("PEXPIREAT", arity=-3, flags=WRITE | FAST, group="generic", keys=(1, 1, 1))
def pexpireat(s: Session, argv: list[bytes]) -> int:
    """PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]

    Set a key's expiry as an absolute unix time in milliseconds; options as EXPIRE.

    Reply: integer: 1 if set, 0 if not.
    Errors: as EXPIRE.
    """
    return _expire(s, argv, seconds=False, relative=False, name="pexpireat")


@command("TTL", arity=2, flags=READONLY | FAST, group="generic", keys=(1, 1, 1))
def ttl(s: Session, argv: list[bytes]) -> int:
    """TTL key

    The remaining time to live of a key, in seconds (rounded to the nearest second).

    Reply: integer: seconds; -1 when the key has no TTL; -2 when it does not exist.
    """
    ms = s.keyspace.ttl_ms(argv[1])
    return ms if ms < 0 else (ms + 500) // 1000


@command("PTTL", arity=2, flags=READONLY | FAST, group="generic", keys=(1, 1, 1))
def pttl(s: Session, argv: list[bytes]) -> int:
    """PTTL key

    The remaining time to live of a key, in milliseconds.

    Reply: integer: milliseconds; -1 when the key has no TTL; -2 when it does not exist.
    """
    return s.keyspace.ttl_ms(argv[1])


@command("EXPIRETIME", arity=2, flags=READONLY | FAST, group="generic", keys=(1, 1, 1))
def expiretime(s: Session, argv: list[bytes]) -> int:
    """EXPIRETIME key

    The absolute unix time, in seconds, at which a key expires.

    Reply: integer: unix seconds; -1 when the key has no TTL; -2 when it does not exist.
    """
    at = s.keyspace.expire_time_ms(argv[1])
    return at if at < 0 else (at + 500) // 1000


@command("PEXPIRETIME", arity=2, flags=READONLY | FAST, group="generic", keys=(1, 1, 1))
def pexpiretime(s: Session, argv: list[bytes]) -> int:
    """PEXPIRETIME key

    The absolute unix time, in milliseconds, at which a key expires.

    Reply: integer: unix milliseconds; -1 when the key has no TTL; -2 when it does not exist.
    """
    return s.keyspace.expire_time_ms(argv[1])


@command("PERSIST", arity=2, flags=WRITE | FAST, group="generic", keys=(1, 1, 1))
def persist(s: Session, argv: list[bytes]) -> int:
    """PERSIST key

    Remove a key's TTL.

    Reply: integer: 1 if a TTL was removed, 0 if the key has none or does not exist.
    """
    key = argv[1]
    if not s.keyspace.persist(key):
        return 0
    s.server.effects.cache([b"PERSIST", key], (key,))
    notify(s.server, GENERIC, b"persist", key)
    return 1


# --------------------------------------------------------------------------- iteration


@command("KEYS", arity=2, flags=READONLY, group="generic")
def keys(s: Session, argv: list[bytes]) -> list[bytes]:
    """KEYS pattern

    Every key matching a glob-style pattern (`*`, `?`, `[a-z]`, `[^a]`, `\\x`). This walks the
    whole keyspace in one call: prefer SCAN on large datasets.

    Reply: array of keys, in no particular order.
    """
    return s.keyspace.keys(argv[1])


@command("SCAN", arity=-2, flags=READONLY, group="generic")
def scan(s: Session, argv: list[bytes]) -> list[Any]:
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]

    Iterate over the keys a few at a time: start with cursor 0, pass back the cursor each reply
    gives, stop when it is 0 again. Every key present for the whole iteration is returned at
    least once (some may come twice). COUNT (default 10) bounds the keys examined per call;
    MATCH and TYPE filter them afterwards, so a call may return fewer keys, or none.

    Reply: array of the next cursor (bulk string) and an array of keys.
    Errors: `invalid cursor`; `syntax error` (also for COUNT < 1); not an integer.
    """
    cursor = to_cursor(argv[1])
    count, pattern, type_name = scan_options(argv, 2, allow_type=True)
    kind = None if type_name is None else type_name.decode("latin-1")
    next_cursor, found = s.keyspace.scan(cursor, count, pattern, kind)
    return [b"%d" % next_cursor, found]


@command("RANDOMKEY", arity=1, flags=READONLY, group="generic")
def randomkey(s: Session, argv: list[bytes]) -> bytes | None:
    """RANDOMKEY

    A key picked at random.

    Reply: bulk string, or nil when the database is empty.
    """
    return s.keyspace.random_key()


# --------------------------------------------------------------------------- renaming


@command("RENAME", arity=3, flags=WRITE, group="generic", keys=(1, 2, 1))
def rename(s: Session, argv: list[bytes]) -> Any:
    """RENAME key newkey

    Rename a key, with its TTL, replacing newkey if it exists.

    Reply: `OK`.
    Errors: `no such key` when key does not exist (even if newkey is the same name).
    """
    src, dst = argv[1], argv[2]
    s.keyspace.rename(src, dst)
    _renamed(s, src, dst)
    return OK


@command("RENAMENX", arity=3, flags=WRITE | FAST, group="generic", keys=(1, 2, 1))
def renamenx(s: Session, argv: list[bytes]) -> int:
    """RENAMENX key newkey

    Rename a key only if newkey does not exist.

    Reply: integer: 1 if renamed, 0 if newkey exists (or is the same name).
    Errors: `no such key`.
    """
    src, dst = argv[1], argv[2]
    ks = s.keyspace
    if ks.lookup_write(src) is None:
        raise NoSuchKeyError()
    if src == dst or ks.lookup_write(dst) is not None:
        return 0
    ks.rename(src, dst)
    _renamed(s, src, dst)
    return 1


def _renamed(s: Session, src: bytes, dst: bytes) -> None:
    """The effects of a rename (RENAME and RENAMENX: Redis propagates both as RENAME); a key
    renamed to itself changes nothing, so nothing is propagated or notified. (Clients blocked
    on `dst` or `src` are woken by `Keyspace.rename`.)"""
    if src == dst:
        return
    server = s.server
    server.effects.cache([b"RENAME", src, dst], (src, dst))
    notify(server, GENERIC, b"rename_from", src)
    notify(server, GENERIC, b"rename_to", dst)


@command("COPY", arity=-3, flags=WRITE | DENYOOM, group="generic", keys=(1, 2, 1))
def copy(s: Session, argv: list[bytes]) -> int:
    """COPY source destination [DB destination-db] [REPLACE]

    Copy a key's value and TTL to another key. REPLACE overwrites an existing destination.
    DB copies into another database (the destination name may then equal the source).

    Reply: integer: 1 if copied, 0 if the source does not exist or the destination exists.
    Errors: `source and destination objects are the same`; `DB index is out of range`;
    `syntax error`; not an integer.
    """
    replace = False
    db = s.db
    i, n = 3, len(argv)
    while i < n:
        option = argv[i].upper()
        if option == b"REPLACE":
            replace = True
        elif option == b"DB" and i + 1 < n:
            db = to_c_int(argv[i + 1])
            if not 0 <= db < len(s.server.dbs):
                raise CommandError("DB index is out of range")
            i += 1
        else:
            raise SyntaxErr()
        i += 1
    src, dst = argv[1], argv[2]
    server = s.server
    if not s.keyspace.copy(src, dst, replace=replace, target=server.dbs[db]):
        return 0
    effect = [b"COPY", src, dst]
    if db != s.db:
        effect += [b"DB", str(db).encode()]
    if replace:
        effect.append(b"REPLACE")
    server.effects.cache(effect)
    server.effects.touch(dst, db)
    notify(server, GENERIC, b"copy_to", dst, db)
    return 1


# --------------------------------------------------------------------------- OBJECT

container("OBJECT", group="generic", summary="Inspect how keys are stored.")


@subcommand("OBJECT", "ENCODING", arity=3, flags=READONLY, keys=(2, 2, 1))
def object_encoding(s: Session, argv: list[bytes]) -> bytes | None:
    """OBJECT ENCODING key

    The internal encoding Redis 7.0 would use for this value (`int`, `embstr`, `raw`,
    `listpack`, `hashtable`, `intset`, `quicklist`, `skiplist`), computed from the current
    content: unlike Redis, an encoding is not sticky after the value shrinks.

    Reply: bulk string, or nil when the key does not exist.
    """
    encoding = s.keyspace.object_encoding(argv[2])
    return None if encoding is None else encoding.encode()


@subcommand("OBJECT", "FREQ", arity=3, flags=READONLY, keys=(2, 2, 1))
def object_freq(s: Session, argv: list[bytes]) -> int | None:
    """OBJECT FREQ key

    The logarithmic access frequency counter of a key (LFU policies only).

    Reply: integer, or nil when the key does not exist.
    Errors: an `ERR` when the maxmemory policy is not an LFU one.
    """
    return s.keyspace.object_freq(argv[2])


@subcommand("OBJECT", "IDLETIME", arity=3, flags=READONLY, keys=(2, 2, 1))
def object_idletime(s: Session, argv: list[bytes]) -> int | None:
    """OBJECT IDLETIME key

    Seconds since the key was last accessed (not under LFU policies).

    Reply: integer, or nil when the key does not exist.
    Errors: an `ERR` when the maxmemory policy is an LFU one.
    """
    return s.keyspace.object_idletime(argv[2])

