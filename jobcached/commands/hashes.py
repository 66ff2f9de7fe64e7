"""Hash commands: fields of a key, with Redis 7.0 replies and errors.

A hash is a plain dict (insertion-ordered, as Redis' small listpack hashes are). Handlers read
it through `Keyspace.get_hash`; they write through cache/hashes.py, which does the type check,
the memory accounting and the removal of a hash left empty. A failed command changes nothing:
numbers are checked before a missing hash is created.

Effects: field writes propagate as HSET (HINCRBY / HINCRBYFLOAT with their result, so replicas
need no arithmetic), deletions as HDEL of the fields that really went.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from jobcached.cache import compile_glob
from jobcached.cache.hashes import delete_fields, set_fields, set_new_field
from jobcached.commands import longdouble
from jobcached.commands.args import INT64_MAX, INT64_MIN, scan_options, to_cursor, to_int
from jobcached.commands.registry import DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError, NotFloatError, SyntaxErr
from jobcached.net.replies import OK
from jobcached.server.notify import HASH, notify, notify_if_gone
from jobcached.server.session import Session

#: HRANDFIELD with a negative count repeats fields: Redis builds a reply of |count| fields
#: whatever the hash size. Past this many reply elements we refuse instead of allocating.
HRANDFIELD_MAX_REPLY_ELEMENTS = 10_000_000
LONG_MAX = 2**63 - 1
#: HSCAN returns a hash this small whole, with cursor 0, as Redis does for its listpack hashes
#: (hash-max-listpack-entries)
HSCAN_WHOLE_MAX_FIELDS = 512


def _pairs(argv: list[bytes], name: str) -> zip[tuple[bytes, bytes]]:
    if len(argv) % 2:
        raise CommandError(f"wrong number of arguments for '{name}' command")
    return zip(argv[2::2], argv[3::2], strict=True)


@command("HSET", arity=-4, flags=WRITE | DENYOOM | FAST, group="hash", keys=(1, 1, 1))
def hset(s: Session, argv: list[bytes]) -> int:
    """HSET key field value [field value ...]

    Set fields of a hash, creating it if needed.

    Reply: integer: how many fields were added (not counting updated ones).
    Errors: wrong number of arguments when a value is missing; `WRONGTYPE`.
    """
    added = set_fields(s.keyspace, argv[1], _pairs(argv, "hset"))
    notify(s.server, HASH, b"hset", argv[1])
    return added


@command("HMSET", arity=-4, flags=WRITE | DENYOOM | FAST, group="hash", keys=(1, 1, 1))
def hmset(s: Session, argv: list[bytes]) -> Any:
    """HMSET key field value [field value ...]

    Set fields of a hash (the old form of HSET).

    Reply: `OK`.
    Errors: as HSET.
    """
    set_fields(s.keyspace, argv[1], _pairs(argv, "hmset"))
    s.server.effects.cache([b"HSET", *argv[1:]], (argv[1],))
    notify(s.server, HASH, b"hset", argv[1])
    return OK


@command("HSETNX", arity=4, flags=WRITE | DENYOOM | FAST, group="hash", keys=(1, 1, 1))
def hsetnx(s: Session, argv: list[bytes]) -> int:
    """HSETNX key field value

    Set a field only if it does not exist yet.

    Reply: integer: 1 if set, 0 if the field existed.
    Errors: `WRONGTYPE`.
    """
    key, field, value = argv[1], argv[2], argv[3]
    if not set_new_field(s.keyspace, key, field, value):
        return 0
    s.server.effects.cache([b"HSET", key, field, value], (key,))
    notify(s.server, HASH, b"hset", key)
    return 1


@command("HGET", arity=3, flags=READONLY | FAST, group="hash", keys=(1, 1, 1))
def hget(s: Session, argv: list[bytes]) -> bytes | None:
    """HGET key field

    The value of a field.

    Reply: bulk string, or nil when the field or the key does not exist.
    Errors: `WRONGTYPE`.
    """
    h = s.keyspace.get_hash(argv[1])
    return None if h is None else h.get(argv[2])


@command("HMGET", arity=-3, flags=READONLY | FAST, group="hash", keys=(1, 1, 1))
def hmget(s: Session, argv: list[bytes]) -> list[bytes | None]:
    """HMGET key field [field ...]

    The values of several fields.

    Reply: array of bulk strings, nil for each missing field.
    Errors: `WRONGTYPE`.
    """
    h = s.keyspace.get_hash(argv[1])
    if h is None:
        return [None] * (len(argv) - 2)
    return [h.get(field) for field in argv[2:]]


@command("HDEL", arity=-3, flags=WRITE | FAST, group="hash", keys=(1, 1, 1))
def hdel(s: Session, argv: list[bytes]) -> int:
    """HDEL key field [field ...]

    Delete fields; the key goes when its last field does.

    Reply: integer: how many fields existed and were deleted.
    Errors: `WRONGTYPE`.
    """
    key = argv[1]
    deleted, left = delete_fields(s.keyspace, key, argv[2:])
    if deleted:
        s.server.effects.cache([b"HDEL", key, *deleted], (key,))
        notify(s.server, HASH, b"hdel", key)
        notify_if_gone(s.server, key, left)
    return len(deleted)


@command("HEXISTS", arity=3, flags=READONLY | FAST, group="hash", keys=(1, 1, 1))
def hexists(s: Session, argv: list[bytes]) -> int:
    """HEXISTS key field

    Whether a field exists.

    Reply: integer: 1 or 0.
    Errors: `WRONGTYPE`.
    """
    h = s.keyspace.get_hash(argv[1])
    return int(h is not None and argv[2] in h)


@command("HGETALL", arity=2, flags=READONLY, group="hash", keys=(1, 1, 1))
def hgetall(s: Session, argv: list[bytes]) -> dict[bytes, bytes]:
    """HGETALL key

    Every field and value of a hash, in insertion order.

    Reply: map of field to value (RESP2: flat array field, value, ...); empty when the key
    does not exist.
    Errors: `WRONGTYPE`.
    """
    h = s.keyspace.get_hash(argv[1])
    return {} if h is None else dict(h)


@command("HKEYS", arity=2, flags=READONLY, group="hash", keys=(1, 1, 1))
def hkeys(s: Session, argv: list[bytes]) -> list[bytes]:
    """HKEYS key

    Every field name of a hash.

    Reply: array of bulk strings.
    Errors: `WRONGTYPE`.
    """
    h = s.keyspace.get_hash(argv[1])
    return [] if h is None else list(h)


@command("HVALS", arity=2, flags=READONLY, group="hash", keys=(1, 1, 1))
def hvals(s: Session, argv: list[bytes]) -> list[bytes]:
    """HVALS key

    Every value of a hash.

    Reply: array of bulk strings.
    Errors: `WRONGTYPE`.
    """
    h = s.keyspace.get_hash(argv[1])
    return [] if h is None else list(h.values())


@command("HLEN", arity=2, flags=READONLY | FAST, group="hash", keys=(1, 1, 1))
def hlen(s: Session, argv: list[bytes]) -> int:
    """HLEN key

    The number of fields in a hash.

    Reply: integer (0 when the key does not exist).
    Errors: `WRONGTYPE`.
    """
    h = s.keyspace.get_hash(argv[1])
    return 0 if h is None else len(h)


@command("HSTRLEN", arity=3, flags=READONLY | FAST, group="hash", keys=(1, 1, 1))
def hstrlen(s: Session, argv: list[bytes]) -> int:
    """HSTRLEN key field

    The length of a field's value.

    Reply: integer (0 when the field or the key does not exist).
    Errors: `WRONGTYPE`.
    """
    h = s.keyspace.get_hash(argv[1])
    return 0 if h is None else len(h.get(argv[2], b""))


# --------------------------------------------------------------------------- counters


@command("HINCRBY", arity=4, flags=WRITE | DENYOOM | FAST, group="hash", keys=(1, 1, 1))
def hincrby(s: Session, argv: list[bytes]) -> int:
    """HINCRBY key field increment

    Add an integer to the integer in a field (a missing field counts as 0).

    Reply: integer: the new value.
    Errors: not an integer (increment); `hash value is not an integer`; `increment or decrement
    would overflow`; `WRONGTYPE`.
    """
    key, field = argv[1], argv[2]
    increment = to_int(argv[3])
    h = s.keyspace.get_hash(key, write=True)
    old = None if h is None else h.get(field)
    value = 0
    if old is not None:
        try:
            value = to_int(old)
        except CommandError:
            raise CommandError("hash value is not an integer") from None
    if (increment < 0 and value < 0 and increment < INT64_MIN - value) or (
            increment > 0 and value > 0 and increment > INT64_MAX - value):
        raise CommandError("increment or decrement would overflow")
    value += increment
    text = b"%d" % value
    set_fields(s.keyspace, key, ((field, text),))
    s.server.effects.cache([b"HSET", key, field, text], (key,))
    notify(s.server, HASH, b"hincrby", key)
    return value


@command("HINCRBYFLOAT", arity=4, flags=WRITE | DENYOOM | FAST, group="hash", keys=(1, 1, 1))
def hincrbyfloat(s: Session, argv: list[bytes]) -> bytes:
    """HINCRBYFLOAT key field increment

    Add a floating point number to the number in a field, in Redis' long double precision
    (see INCRBYFLOAT).

    Reply: bulk string: the new value.
    Errors: `value is not a valid float`; `value is NaN or Infinity` for an infinite increment;
    `hash value is not a float`; `increment would produce NaN or Infinity`; `WRONGTYPE`.
    """
    key, field = argv[1], argv[2]
    increment = longdouble.parse(argv[3])
    if increment is None:
        raise NotFloatError()
    if not longdouble.is_finite(increment):
        raise CommandError("value is NaN or Infinity")
    h = s.keyspace.get_hash(key, write=True)
    old = None if h is None else h.get(field)
    current = longdouble.ZERO if old is None else longdouble.parse(old)
    if current is None:
        raise CommandError("hash value is not a float")
    total = longdouble.add(current, increment)
    if total is None:
        raise CommandError("increment would produce NaN or Infinity")
    text = longdouble.format_human(total)
    set_fields(s.keyspace, key, ((field, text),))
    s.server.effects.cache([b"HSET", key, field, text], (key,))
    notify(s.server, HASH, b"hincrbyfloat", key)
    return text


# --------------------------------------------------------------------------- random and scan


@command("HRANDFIELD", arity=-2, flags=READONLY, group="hash", keys=(1, 1, 1))
def hrandfield(s: Session, argv: list[bytes]) -> Any:
    """HRANDFIELD key [count [WITHVALUES]]

    Random fields of a hash. Without count: one field. A positive count returns that many
    distinct fields (the whole hash when count >= its size); a negative count returns |count|
    fields that may repeat. Unlike Redis, which builds any reply asked for, a negative count
    whose reply would exceed 10,000,000 elements (fields plus values) is refused.

    Reply: bulk string or nil without count; otherwise an array of fields, with WITHVALUES
    field, value, ... (RESP3: an array of [field, value] pairs); empty for a missing key.
    Errors: not an integer; `value is out of range, value must between -9223372036854775807
    and 9223372036854775807`; `value is out of range` (beyond +-2**62 with WITHVALUES);
    `syntax error`; `WRONGTYPE`; `count is too large` past the reply bound.
    """
    ks = s.keyspace
    if len(argv) == 2:
        h = ks.get_hash(argv[1])
        if not h:
            return None
        return next(islice(h, int(ks.rng.random() * len(h)), None))
    count = to_int(argv[2])
    if count < -LONG_MAX:
        raise CommandError(f"value is out of range, value must between {-LONG_MAX} and "
                           f"{LONG_MAX}")
    withvalues = False
    if len(argv) > 4 or (len(argv) == 4 and argv[3].upper() != b"WITHVALUES"):
        raise SyntaxErr()
    if len(argv) == 4:
        withvalues = True
        if not -(LONG_MAX // 2) <= count <= LONG_MAX // 2:
            raise CommandError("value is out of range")
    h = ks.get_hash(argv[1])
    if not h or count == 0:
        return []
    rng = ks.rng
    if count < 0 or count == 1:
        n = -count if count < 0 else 1
        if n * (2 if withvalues else 1) > HRANDFIELD_MAX_REPLY_ELEMENTS:
            raise CommandError(f"count is too large: the reply would exceed "
                               f"{HRANDFIELD_MAX_REPLY_ELEMENTS} elements")
        picked = rng.choices(list(h), k=n)
    elif count >= len(h):
        picked = list(h)
    else:
        picked = rng.sample(list(h), count)
    if not withvalues:
        return picked
    if s.resp3:
        return [[field, h[field]] for field in picked]
    return [x for field in picked for x in (field, h[field])]


@command("HSCAN", arity=-3, flags=READONLY, group="hash", keys=(1, 1, 1))
def hscan(s: Session, argv: list[bytes]) -> list[Any]:
    """HSCAN key cursor [MATCH pattern] [COUNT count]

    Iterate over the fields of a hash: start with cursor 0, pass back the cursor each reply
    gives, stop when it is 0 again. A hash of up to 512 fields (or no more than COUNT) comes
    whole in one reply, as Redis returns its small hashes. Larger ones are walked from the
    newest field to the oldest, COUNT fields per call: fields present for the whole iteration
    are returned at least once, fields added during it may be missed.

    Reply: array of the next cursor (bulk string) and a flat array field, value, ...
    Errors: `invalid cursor`; `syntax error` (also for COUNT < 1); not an integer; `WRONGTYPE`.
    """
    cursor = to_cursor(argv[2])
    h = s.keyspace.get_hash(argv[1])
    if h is None:
        return [b"0", []]
    count, pattern, _ = scan_options(argv, 3)
    n = len(h)
    if n <= HSCAN_WHOLE_MAX_FIELDS or n <= count:
        items: Iterable[tuple[bytes, bytes]] = h.items()
        next_cursor = 0
    else:
        # Cursor r means "positions r-1 .. 0 are still to visit" (0: start at the top). A
        # deletion only moves later fields down, i.e. from the visited part towards the
        # unvisited one: they may come twice, but none is skipped (cache/iteration.py).
        top = n if cursor == 0 else min(cursor, n)
        bottom = max(top - count, 0)
        items = list(islice(h.items(), bottom, top))
        next_cursor = bottom
    matcher = None if pattern is None else compile_glob(pattern)
    out = []
    for field, value in items:
        if matcher is None or matcher.match(field):
            out.append(field)
            out.append(value)
    return [b"%d" % next_cursor, out]
