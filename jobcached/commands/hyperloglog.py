"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE (the representation is in cache/hyperloglog.py).

A HyperLogLog is a string value in Redis' exact byte layout, so GET, SET, COPY and RENAME
handle it like any string, and a value written by redis-server counts the same here.

Errors as Redis 7.0: a string that is not a HyperLogLog is `WRONGTYPE Key is not a valid
HyperLogLog string value.`; a HyperLogLog whose registers are corrupt is `INVALIDOBJ
Corrupted HLL object detected`.

Effects: PFADD and PFMERGE propagate themselves when they changed the value. PFCOUNT of one
key stores the recomputed cardinality in the value when the cached one was stale; like Redis
(which replicates it and signals the key as modified) it then propagates itself, which also
invalidates WATCHes on that key.
"""

from __future__ import annotations

from typing import Any

from jobcached.cache import hyperloglog as hll
from jobcached.commands.registry import ADMIN, DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError
from jobcached.net.replies import OK, Simple
from jobcached.server.notify import STRING, notify
from jobcached.server.session import Session


class NotHllError(CommandError):
    code = "WRONGTYPE"

    def __init__(self) -> None:
        super().__init__("Key is not a valid HyperLogLog string value.")


class CorruptHllError(CommandError):
    code = "INVALIDOBJ"

    def __init__(self) -> None:
        super().__init__("Corrupted HLL object detected")


def _checked(value: bytes | None) -> bytes | None:
    if value is not None and not hll.is_valid(value):
        raise NotHllError()
    return value


def _union(s: Session, keys: list[bytes]) -> tuple[bytes, bool]:
    """The per-register maximum over `keys` (missing keys are empty), and whether any of them
    was dense. Raises InvalidHll for corrupt registers."""
    raw: bytes | None = None
    any_dense = False
    for key in keys:
        value = _checked(s.keyspace.get_string(key))
        if value is not None:
            any_dense = any_dense or value[4] == hll.DENSE
            registers = hll.registers(value)
            raw = registers if raw is None else hll.raw_max(raw, registers)
    return (bytes(hll.REGISTERS) if raw is None else raw), any_dense


@command("PFADD", arity=-2, flags=WRITE | DENYOOM | FAST, group="hyperloglog", keys=(1, 1, 1))
def pfadd(s: Session, argv: list[bytes]) -> int:
    """PFADD key [element [element ...]]

    Add elements to a HyperLogLog, creating it (empty, sparse) if the key does not exist.

    Reply: integer: 1 if the HyperLogLog changed (or was created), 0 otherwise.
    Errors: `WRONGTYPE` when the key holds another type or a string that is not a
    HyperLogLog; `INVALIDOBJ Corrupted HLL object detected`.
    """
    key = argv[1]
    ks = s.keyspace
    old = _checked(ks.get_string(key, write=True))
    if old is not None and old[4] == hll.DENSE:
        raises = hll.dense_raises(old, argv[2:])
        if not raises:
            return 0
        buf = bytearray(old)
        for index, run in raises:
            hll.dense_set(buf, index, run)
        hll.invalidate(buf)
        ks.set(key, bytes(buf), keepttl=True)
        notify(s.server, STRING, b"pfadd", key)
        return 1
    buf = bytearray(hll.EMPTY_SPARSE if old is None else old)
    updated = old is None
    try:
        for element in argv[2:]:
            if hll.add(buf, element):
                updated = True
    except hll.InvalidHll:
        raise CorruptHllError() from None
    finally:
        if updated:  # Redis changes the value in place: what was added before an error stays
            hll.invalidate(buf)
            ks.set(key, bytes(buf), keepttl=True)
    if updated:  # not after an error: Redis replies with it before notifying
        notify(s.server, STRING, b"pfadd", key)
    return 1 if updated else 0


@command("PFCOUNT", arity=-2, flags=READONLY, group="hyperloglog", keys=(1, -1, 1))
def pfcount(s: Session, argv: list[bytes]) -> int:
    """PFCOUNT key [key ...]

    The estimated number of distinct elements added to a HyperLogLog, or to the union of
    several (computed without changing them). Missing keys count as empty.

    Reply: integer: the estimate, as redis-server computes it for the same elements.
    Errors: `WRONGTYPE`; `INVALIDOBJ Corrupted HLL object detected`.
    """
    ks = s.keyspace
    try:
        if len(argv) > 2:
            raw = _union(s, argv[1:])[0]
            return hll.estimate(hll.histogram(raw))
        key = argv[1]
        value = _checked(ks.get_string(key))
        if value is None:
            return 0
        card = hll.cached_count(value)
        if card is None:
            card = hll.count(value)
            ks.set(key, hll.with_cached_count(value, card), keepttl=True)
            s.server.effects.cache([b"PFCOUNT", key], (key,))
        return card
    except hll.InvalidHll:
        raise CorruptHllError() from None


@command("PFMERGE", arity=-2, flags=WRITE | DENYOOM, group="hyperloglog", keys=(1, -1, 1))
def pfmerge(s: Session, argv: list[bytes]) -> Simple:
    """PFMERGE destkey [sourcekey [sourcekey ...]]

    Merge HyperLogLogs into `destkey` (which is itself one of the inputs when it exists):
    afterwards it counts the union. The result is dense if any input was dense.

    Reply: `OK`.
    Errors: `WRONGTYPE`; `INVALIDOBJ Corrupted HLL object detected`.
    """
    ks = s.keyspace
    try:
        raw, use_dense = _union(s, argv[1:])
        dest = argv[1]
        old = ks.get_string(dest, write=True)
        buf = bytearray(hll.EMPTY_SPARSE if old is None else old)
        hll.merge_into(buf, raw, use_dense)
    except hll.InvalidHll:
        raise CorruptHllError() from None
    ks.set(dest, bytes(buf), keepttl=True)
    notify(s.server, STRING, b"pfadd", dest)  # Redis names PFMERGE's event `pfadd` too
    return OK


@command("PFDEBUG", arity=3, flags=WRITE | DENYOOM | ADMIN, group="hyperloglog",
         keys=(2, 2, 1))
def pfdebug(s: Session, argv: list[bytes]) -> Any:
    """PFDEBUG subcommand key

    Inspect a HyperLogLog, as Redis' internal debugging command: GETREG (the 16384 registers;
    converts a sparse value to dense), DECODE (the sparse opcodes as `z:len`, `Z:len`,
    `v:value,len`), ENCODING (`sparse` or `dense`), TODENSE (convert; 1 if it was sparse).

    Reply: per subcommand: array of integers, bulk string, status, integer.
    Errors: `The specified key does not exist`; `WRONGTYPE`; `HLL encoding is not sparse`
    (DECODE); `Unknown PFDEBUG subcommand '<name>'`; `INVALIDOBJ Corrupted HLL object detected`.
    """
    key, name = argv[2], argv[1]
    ks = s.keyspace
    value = _checked(ks.get_string(key, write=True))
    if value is None:
        raise CommandError("The specified key does not exist")
    sub = name.lower()
    if sub == b"encoding":
        return Simple(b"sparse" if value[4] == hll.SPARSE else b"dense")
    if sub == b"decode":
        if value[4] != hll.SPARSE:
            raise CommandError("HLL encoding is not sparse")
        return hll.decode_sparse(value)
    if sub not in (b"getreg", b"todense"):
        raise CommandError(f"Unknown PFDEBUG subcommand '{name.decode(errors='replace')}'")
    converted = value[4] == hll.SPARSE
    if converted:
        buf = bytearray(value)
        try:
            hll.to_dense(buf)
        except hll.InvalidHll:
            raise CorruptHllError() from None
        value = bytes(buf)
        ks.set(key, value, keepttl=True)
    if sub == b"todense":
        return 1 if converted else 0
    return list(hll.registers(value))
