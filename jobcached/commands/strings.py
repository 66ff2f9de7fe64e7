"""String commands: GET, SET and its variants, counters, ranges, with Redis 7.0 semantics.

Every write propagates one deterministic effect with absolute times (design principle 5), as
Redis' own rewrites do: `SET k v EX 10` becomes `SET k v PXAT <unix ms>`, GETEX becomes
PEXPIREAT / PERSIST / DEL, INCRBYFLOAT becomes `SET k <result> KEEPTTL`. A command that changes
nothing propagates nothing.

GET and plain `SET k v` run on every benchmark's hot path: they go straight to the keyspace and
skip the option parser.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands import longdouble
from jobcached.commands.args import INT64_MAX, INT64_MIN, to_int
from jobcached.commands.registry import DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError, NotFloatError, SyntaxErr, WrongTypeError
from jobcached.net.replies import OK
from jobcached.server.notify import GENERIC, STRING, notify
from jobcached.server.session import Session

# SET / GETEX option bits (Redis' OBJ_SET_* flags)
NX, XX, GET, KEEPTTL, PERSIST, EX, PX, EXAT, PXAT = (1 << i for i in range(9))
EXPIRES = EX | PX | EXAT | PXAT
SECONDS = EX | EXAT
RELATIVE = EX | PX
_EXPIRE_OPTIONS = {b"EX": EX, b"PX": PX, b"EXAT": EXAT, b"PXAT": PXAT}


def _too_big(s: Session, length: int) -> None:
    """Redis' checkStringLength: no string may grow past proto-max-bulk-len."""
    if length > s.server.config.proto_max_bulk_len:
        raise CommandError("string exceeds maximum allowed size (proto-max-bulk-len)")


# --------------------------------------------------------------------------- GET / SET


@command("GET", arity=2, flags=READONLY | FAST, group="string", keys=(1, 1, 1))
def get(s: Session, argv: list[bytes]) -> Any:
    """GET key

    Get the value of a key.

    Reply: bulk string, or nil when the key does not exist.
    Errors: `WRONGTYPE` when the key holds another type.
    """
    value = s.keyspace.lookup_read(argv[1])
    if value is None or type(value) is bytes:
        return value
    raise WrongTypeError()


def parse_string_options(argv: list[bytes], start: int, is_set: bool) -> tuple[int, bytes | None]:
    """Option bits and the raw expire argument, as Redis' parseExtendedStringArgumentsOrReply
    accepts them: NX/XX/GET/KEEPTTL only for SET, PERSIST only for GETEX, at most one kind of
    expiry (the same one repeated is allowed: its last value wins)."""
    flags = 0
    expire = None
    j, n = start, len(argv)
    while j < n:
        opt = argv[j].upper()
        if opt == b"NX" and is_set and not flags & XX:
            flags |= NX
        elif opt == b"XX" and is_set and not flags & NX:
            flags |= XX
        elif opt == b"GET" and is_set:
            flags |= GET
        elif opt == b"KEEPTTL" and is_set and not flags & (PERSIST | EXPIRES):
            flags |= KEEPTTL
        elif opt == b"PERSIST" and not is_set and not flags & (EXPIRES | KEEPTTL):
            flags |= PERSIST
        elif (kind := _EXPIRE_OPTIONS.get(opt)) and j + 1 < n and not flags & (
                KEEPTTL | PERSIST | (EXPIRES & ~kind)):
            flags |= kind
            expire = argv[j + 1]
            j += 1
        else:
            raise SyntaxErr()
        j += 1
    return flags, expire


def expire_at_ms(s: Session, raw: bytes, flags: int, name: str) -> int:
    """The absolute unix ms an EX / PX / EXAT / PXAT argument names (getExpireMillisecondsOrReply).

    Errors: not an integer; `invalid expire time in '<name>' command` for values <= 0 or that
    overflow 64 bits once converted.
    """
    value = to_int(raw)
    if value <= 0 or (flags & SECONDS and value > INT64_MAX // 1000):
        raise CommandError(f"invalid expire time in '{name}' command")
    if flags & SECONDS:
        value *= 1000
    if flags & RELATIVE:
        value += s.server.clock.now_ms()
        if value > INT64_MAX:
            raise CommandError(f"invalid expire time in '{name}' command")
    return value


def _set_generic(s: Session, key: bytes, value: bytes, flags: int, expire: bytes | None,
                 name: str) -> Any:
    """SET with options; returns the old value (GET), None (NX/XX refused) or True (set)."""
    ks = s.keyspace
    at = None if expire is None else expire_at_ms(s, expire, flags, name)
    old = None
    if flags & GET:
        old = ks.get_string(key)
        found = old is not None
    else:
        found = ks.lookup_write(key) is not None
    if (flags & NX and found) or (flags & XX and not found):
        return old if flags & GET else None
    ks.set(key, value, expire_at_ms=at, keepttl=bool(flags & KEEPTTL))
    server = s.server
    if at is not None and at <= server.clock.now_ms():  # already expired: the key is gone
        if found:
            server.effects.cache([b"DEL", key], (key,))
            notify(server, GENERIC, b"del", key)
        return old if flags & GET else True
    if at is not None:
        server.effects.cache([b"SET", key, value, b"PXAT", b"%d" % at], (key,))
    elif flags & KEEPTTL:
        server.effects.cache([b"SET", key, value, b"KEEPTTL"], (key,))
    else:
        server.effects.cache([b"SET", key, value], (key,))
    notify(server, STRING, b"set", key)
    if at is not None:
        notify(server, GENERIC, b"expire", key)
    return old if flags & GET else True


@command("SET", arity=-3, flags=WRITE | DENYOOM, group="string", keys=(1, 1, 1))
def set_(s: Session, argv: list[bytes]) -> Any:
    """SET key value [NX | XX] [GET] [EX seconds | PX milliseconds |
    EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]

    Set a key to a string value, replacing any value and, unless KEEPTTL, any TTL. NX sets only
    a missing key, XX only an existing one; GET returns the old value; EX / PX / EXAT / PXAT set
    a TTL (relative seconds / milliseconds, absolute unix seconds / milliseconds). An absolute
    time in the past stores nothing and deletes the key.

    Reply: `OK`; nil when NX / XX prevented the write; with GET, the old value or nil.
    Errors: `syntax error` for unknown or conflicting options; not an integer; `invalid expire
    time in 'set' command` for a TTL <= 0; `WRONGTYPE` with GET when the key is not a string.
    """
    if len(argv) == 3:  # the hot path: no options
        key = argv[1]
        s.keyspace.set(key, argv[2])
        server = s.server
        if server.notify_flags:  # notify() tests it too; this spares the hot path a call
            notify(server, STRING, b"set", key)
        return OK
    flags, expire = parse_string_options(argv, 3, is_set=True)
    result = _set_generic(s, argv[1], argv[2], flags, expire, "set")
    return OK if result is True else result


@command("SETNX", arity=3, flags=WRITE | DENYOOM | FAST, group="string", keys=(1, 1, 1))
def setnx(s: Session, argv: list[bytes]) -> int:
    """SETNX key value

    Set a key only if it does not exist.

    Reply: integer: 1 if the key was set, 0 if it already existed.
    """
    return 1 if _set_generic(s, argv[1], argv[2], NX, None, "setnx") is True else 0


@command("SETEX", arity=4, flags=WRITE | DENYOOM, group="string", keys=(1, 1, 1))
def setex(s: Session, argv: list[bytes]) -> Any:
    """SETEX key seconds value

    Set a key and its TTL in seconds (SET key value EX seconds).

    Reply: `OK`.
    Errors: not an integer; `invalid expire time in 'setex' command` for seconds <= 0.
    """
    _set_generic(s, argv[1], argv[3], EX, argv[2], "setex")
    return OK


@command("PSETEX", arity=4, flags=WRITE | DENYOOM, group="string", keys=(1, 1, 1))
def psetex(s: Session, argv: list[bytes]) -> Any:
    """PSETEX key milliseconds value

    Set a key and its TTL in milliseconds (SET key value PX milliseconds).

    Reply: `OK`.
    Errors: not an integer; `invalid expire time in 'psetex' command` for milliseconds <= 0.
    """
    _set_generic(s, argv[1], argv[3], PX, argv[2], "psetex")
    return OK


@command("GETSET", arity=3, flags=WRITE | DENYOOM | FAST, group="string", keys=(1, 1, 1))
def getset(s: Session, argv: list[bytes]) -> Any:
    """GETSET key value

    Set a key (clearing its TTL) and return its old value (SET key value GET).

    Reply: bulk string, or nil when the key did not exist.
    Errors: `WRONGTYPE` when the key holds another type.
    """
    return _set_generic(s, argv[1], argv[2], GET, None, "getset")


@command("GETDEL", arity=2, flags=WRITE | FAST, group="string", keys=(1, 1, 1))
def getdel(s: Session, argv: list[bytes]) -> Any:
    """GETDEL key

    Get the value of a key and delete it.

    Reply: bulk string, or nil when the key does not exist.
    Errors: `WRONGTYPE` when the key holds another type (nothing is deleted).
    """
    key = argv[1]
    ks = s.keyspace
    value = ks.get_string(key)
    if value is not None:
        ks.delete(key)
        s.server.effects.cache([b"DEL", key], (key,))
        notify(s.server, GENERIC, b"del", key)
    return value


@command("GETEX", arity=-2, flags=WRITE | FAST, group="string", keys=(1, 1, 1))
def getex(s: Session, argv: list[bytes]) -> Any:
    """GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
    PXAT unix-time-milliseconds | PERSIST]

    Get the value of a key and optionally set or remove its TTL. An absolute time in the past
    deletes the key (after returning its value).

    Reply: bulk string, or nil when the key does not exist (the options are then not checked).
    Errors: `syntax error`; `WRONGTYPE`; not an integer; `invalid expire time in 'getex'
    command` for a TTL <= 0.
    """
    flags, expire = parse_string_options(argv, 2, is_set=False)
    key = argv[1]
    ks = s.keyspace
    value = ks.get_string(key)
    if value is None:
        return None
    if expire is not None:
        at = expire_at_ms(s, expire, flags, "getex")
        if flags & (EXAT | PXAT) and at <= s.server.clock.now_ms():
            ks.delete(key)
            s.server.effects.cache([b"DEL", key], (key,))
            notify(s.server, GENERIC, b"del", key)
        else:
            ks.expire_at(key, at)
            s.server.effects.cache([b"PEXPIREAT", key, b"%d" % at], (key,))
            notify(s.server, GENERIC, b"expire", key)
    elif flags & PERSIST and ks.persist(key):
        s.server.effects.cache([b"PERSIST", key], (key,))
        notify(s.server, GENERIC, b"persist", key)
    return value


# --------------------------------------------------------------------------- multi-key


@command("MGET", arity=-2, flags=READONLY | FAST, group="string", keys=(1, -1, 1))
def mget(s: Session, argv: list[bytes]) -> list[bytes | None]:
    """MGET key [key ...]

    Get the values of several keys.

    Reply: array with one bulk string per key: nil for a missing key or one of another type.
    """
    lookup = s.keyspace.lookup_read
    values = []
    for key in argv[1:]:
        value = lookup(key)
        values.append(value if type(value) is bytes else None)
    return values


def _mset(s: Session, argv: list[bytes], name: str) -> bool:
    if len(argv) % 2 == 0:
        raise CommandError(f"wrong number of arguments for '{name}' command")
    ks = s.keyspace
    keys = argv[1::2]
    if name == "msetnx" and any(ks.lookup_write(key) is not None for key in keys):
        return False
    server = s.server
    for i in range(1, len(argv), 2):
        ks.set(argv[i], argv[i + 1])
        notify(server, STRING, b"set", argv[i])
    server.effects.cache([b"MSET", *argv[1:]], keys)
    return True


@command("MSET", arity=-3, flags=WRITE | DENYOOM, group="string", keys=(1, -1, 2))
def mset(s: Session, argv: list[bytes]) -> Any:
    """MSET key value [key value ...]

    Set several keys at once (clearing their TTLs).

    Reply: `OK`.
    Errors: wrong number of arguments when a value is missing.
    """
    _mset(s, argv, "mset")
    return OK


@command("MSETNX", arity=-3, flags=WRITE | DENYOOM, group="string", keys=(1, -1, 2))
def msetnx(s: Session, argv: list[bytes]) -> int:
    """MSETNX key value [key value ...]

    Set several keys at once, only if none of them exists.

    Reply: integer: 1 if all keys were set, 0 if none was (one already existed).
    Errors: wrong number of arguments when a value is missing.
    """
    return 1 if _mset(s, argv, "msetnx") else 0


# --------------------------------------------------------------------------- ranges


@command("APPEND", arity=3, flags=WRITE | DENYOOM | FAST, group="string", keys=(1, 1, 1))
def append(s: Session, argv: list[bytes]) -> int:
    """APPEND key value

    Append to a string (creating it if needed); the TTL is kept.

    Reply: integer: the new length.
    Errors: `WRONGTYPE`; `string exceeds maximum allowed size (proto-max-bulk-len)`.
    """
    key, tail = argv[1], argv[2]
    ks = s.keyspace
    old = ks.get_string(key, write=True)
    if old is None:
        value = tail
    else:
        _too_big(s, len(old) + len(tail))
        value = old + tail
    ks.set(key, value, keepttl=True)
    s.server.effects.cache([b"APPEND", key, tail], (key,))
    notify(s.server, STRING, b"append", key)
    return len(value)


@command("STRLEN", arity=2, flags=READONLY | FAST, group="string", keys=(1, 1, 1))
def strlen(s: Session, argv: list[bytes]) -> int:
    """STRLEN key

    The length of a string value.

    Reply: integer: the length, 0 when the key does not exist.
    Errors: `WRONGTYPE`.
    """
    value = s.keyspace.get_string(argv[1])
    return 0 if value is None else len(value)


def _getrange(s: Session, argv: list[bytes]) -> bytes:
    start, end = to_int(argv[2]), to_int(argv[3])
    value = s.keyspace.get_string(argv[1])
    if value is None or (start < 0 and end < 0 and start > end):
        return b""
    n = len(value)
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    end = min(end, n - 1)
    if start > end or n == 0:
        return b""
    return value[start : end + 1]


@command("GETRANGE", arity=4, flags=READONLY, group="string", keys=(1, 1, 1))
def getrange(s: Session, argv: list[bytes]) -> bytes:
    """GETRANGE key start end

    A substring, by inclusive byte offsets; negative offsets count from the end.

    Reply: bulk string (empty when the range or the key is empty).
    Errors: not an integer; `WRONGTYPE`.
    """
    return _getrange(s, argv)


@command("SUBSTR", arity=4, flags=READONLY, group="string", keys=(1, 1, 1))
def substr(s: Session, argv: list[bytes]) -> bytes:
    """SUBSTR key start end

    The old name of GETRANGE.

    Reply: bulk string.
    Errors: as GETRANGE.
    """
    return _getrange(s, argv)


@command("SETRANGE", arity=4, flags=WRITE | DENYOOM, group="string", keys=(1, 1, 1))
def setrange(s: Session, argv: list[bytes]) -> int:
    """SETRANGE key offset value

    Overwrite part of a string from a byte offset, padding with zero bytes (the TTL is kept).
    An empty value changes nothing and creates nothing.

    Reply: integer: the length of the string after the write.
    Errors: not an integer; `offset is out of range` for a negative offset; `WRONGTYPE`;
    `string exceeds maximum allowed size (proto-max-bulk-len)`.
    """
    key, patch = argv[1], argv[3]
    offset = to_int(argv[2])
    if offset < 0:
        raise CommandError("offset is out of range")
    ks = s.keyspace
    old = ks.get_string(key, write=True)
    if not patch:
        return 0 if old is None else len(old)
    _too_big(s, offset + len(patch))
    old = old or b""
    if offset > len(old):
        old += bytes(offset - len(old))
    value = old[:offset] + patch + old[offset + len(patch) :]
    ks.set(key, value, keepttl=True)
    s.server.effects.cache([b"SETRANGE", key, argv[2], patch], (key,))
    notify(s.server, STRING, b"setrange", key)
    return len(value)


# --------------------------------------------------------------------------- counters


def _incr(s: Session, argv: list[bytes], delta: int) -> int:
    key = argv[1]
    ks = s.keyspace
    old = ks.get_string(key, write=True)
    value = 0 if old is None else to_int(old)
    if (delta < 0 and value < 0 and delta < INT64_MIN - value) or (
            delta > 0 and value > 0 and delta > INT64_MAX - value):
        raise CommandError("increment or decrement would overflow")
    value += delta
    ks.set(key, b"%d" % value, keepttl=True)
    notify(s.server, STRING, b"incrby", key)
    return value


@command("INCR", arity=2, flags=WRITE | DENYOOM | FAST, group="string", keys=(1, 1, 1))
def incr(s: Session, argv: list[bytes]) -> int:
    """INCR key

    Add 1 to the integer in a key (a missing key counts as 0); the TTL is kept.

    Reply: integer: the new value.
    Errors: `value is not an integer or out of range` when the value is not a 64-bit integer;
    `increment or decrement would overflow`; `WRONGTYPE`.
    """
    return _incr(s, argv, 1)


@command("DECR", arity=2, flags=WRITE | DENYOOM | FAST, group="string", keys=(1, 1, 1))
def decr(s: Session, argv: list[bytes]) -> int:
    """DECR key

    Subtract 1 from the integer in a key.

    Reply: integer: the new value.
    Errors: as INCR.
    """
    return _incr(s, argv, -1)


@command("INCRBY", arity=3, flags=WRITE | DENYOOM | FAST, group="string", keys=(1, 1, 1))
def incrby(s: Session, argv: list[bytes]) -> int:
    """INCRBY key increment

    Add an integer to the integer in a key.

    Reply: integer: the new value.
    Errors: as INCR, and for an increment that is not an integer.
    """
    return _incr(s, argv, to_int(argv[2]))


@command("DECRBY", arity=3, flags=WRITE | DENYOOM | FAST, group="string", keys=(1, 1, 1))
def decrby(s: Session, argv: list[bytes]) -> int:
    """DECRBY key decrement

    Subtract an integer from the integer in a key.

    Reply: integer: the new value.
    Errors: as INCRBY; `decrement would overflow` for -9223372036854775808.
    """
    delta = to_int(argv[2])
    if delta == INT64_MIN:
        raise CommandError("decrement would overflow")
    return _incr(s, argv, -delta)


@command("INCRBYFLOAT", arity=3, flags=WRITE | DENYOOM | FAST, group="string", keys=(1, 1, 1))
def incrbyfloat(s: Session, argv: list[bytes]) -> bytes:
    """INCRBYFLOAT key increment

    Add a floating point number to the number in a key, in Redis' long double precision (so
    `10.5` + `0.1` is `10.6`); the TTL is kept. Hexadecimal and `inf` operands parse as in
    Redis; the result is printed in plain decimal notation, never with an exponent.

    Reply: bulk string: the new value.
    Errors: `value is not a valid float` for either operand; `increment would produce NaN or
    Infinity`; `WRONGTYPE`.
    """
    key = argv[1]
    ks = s.keyspace
    old = ks.get_string(key, write=True)
    current = longdouble.ZERO if old is None else longdouble.parse(old)
    increment = longdouble.parse(argv[2])
    if current is None or increment is None:
        raise NotFloatError()
    total = longdouble.add(current, increment)
    if total is None:
        raise CommandError("increment would produce NaN or Infinity")
    text = longdouble.format_human(total)
    ks.set(key, text, keepttl=True)
    s.server.effects.cache([b"SET", key, text, b"KEEPTTL"], (key,))
    notify(s.server, STRING, b"incrbyfloat", key)
    return text
