"""CL.THROTTLE: redis-cell's GCRA rate limiter, so code written for that module works unchanged.

The limiter's state is what redis-cell keeps: a plain string key holding the TAT (unix
nanoseconds) with a TTL ending when the bucket would be full again. Being an ordinary key, it
expires, is evicted, is listed by SCAN and is replicated like any other; the effect propagated
is `SET key <tat> PXAT <unix ms>` (or DEL), never the command itself, so a replica or a replay
does not re-run the limiter against its own clock. The arithmetic lives in `cache/gcra.py`.
"""

from __future__ import annotations

import re

from jobcached.cache.gcra import NS_PER_MS, ThrottleError, throttle
from jobcached.commands.keyspec import at_index
from jobcached.commands.registry import DENYOOM, WRITE, command
from jobcached.errors import CommandError, WrongTypeError
from jobcached.server.session import Session

#: what Rust's `str::parse::<i64>` accepts (redis-cell parses its arguments that way)
_RUST_I64 = re.compile(rb"[+-]?[0-9]+\Z")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class CellError(CommandError):
    """redis-cell's replies to bad input: `-Cell error: <message>`."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}", code="Cell")


def _parse_i64(raw: bytes) -> int:
    if _RUST_I64.match(raw):
        value = int(raw)
        if _I64_MIN <= value <= _I64_MAX:
            return value
    raise CellError(f"Couldn't parse as integer: {raw.decode('utf-8', 'replace')}")


def _stored_tat(s: Session, key: bytes) -> int | None:
    """The TAT stored at `key`, None when there is none; redis-cell's errors otherwise."""
    value = s.keyspace.lookup_write(key)
    if value is None or value == b"":
        return None
    if type(value) is not bytes:
        raise WrongTypeError()
    if not _RUST_I64.match(value):
        raise CellError("invalid digit found in string")
    return int(value)


@command("CL.THROTTLE", arity=-1, flags=WRITE | DENYOOM, group="ratelimit", keys=(1, 1, 1),
         key_specs=at_index(1, "RW", "access", "update"))
def cl_throttle(s: Session, argv: list[bytes]) -> list[int]:
    """CL.THROTTLE key max_burst count period [quantity]

    Rate-limit an action on `key` with GCRA (redis-cell's command): `count` tokens per `period`
    seconds, bursts of up to `max_burst` + 1, this call spending `quantity` tokens (default 1; 0
    only peeks). The state is a string key holding the theoretical arrival time (unix ns) with a
    TTL, as redis-cell stores it.

    Reply: array of five integers: limited (0 allowed, 1 refused), limit (max_burst + 1),
    remaining tokens, seconds until a retry can succeed (-1 when allowed), seconds until the
    bucket is full again. Seconds round up when a millisecond part remains.
    Errors (redis-cell's texts): `Cell error: Usage: ...` for a wrong argument count; `Cell
    error: Couldn't parse as integer: <arg>`; `Cell error: Zero rates are not supported`;
    `Cell error: <name> must not be negative`; `WRONGTYPE` when the key is not a string.
    """
    if len(argv) not in (5, 6):
        raise CellError("Usage: cl.throttle <key> <max_burst> <count per period> <period> "
                        "[<quantity>]")
    key = argv[1]
    max_burst, count, period = (_parse_i64(a) for a in argv[2:5])
    quantity = _parse_i64(argv[5]) if len(argv) == 6 else 1
    server = s.server
    now_ms = server.clock.now_ms()
    tat = _stored_tat(s, key)
    try:
        result = throttle(tat, now_ms * NS_PER_MS, max_burst, count, period, quantity)
    except ThrottleError as e:
        raise CellError(str(e)) from None
    if result.new_tat_ns is not None:
        if result.ttl_ms > 0:
            at = now_ms + result.ttl_ms
            value = b"%d" % result.new_tat_ns
            s.keyspace.set(key, value, expire_at_ms=at)
            server.effects.cache([b"SET", key, value, b"PXAT", b"%d" % at], (key,))
        elif s.keyspace.delete(key):  # a TTL of 0: redis-cell's key expires at once
            server.effects.cache([b"DEL", key], (key,))
    return result.reply()
