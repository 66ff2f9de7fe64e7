"""Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.

Bitmaps are plain strings (Redis' bitops.c); the bit arithmetic lives in `cache/bitfield.py`.
Reads never copy the value: they slice the bytes they look at. A write builds the new value
once per command (one `bytearray` copy, one `bytes` back, since strings are immutable `bytes`
everywhere else) and stores it with `keepttl`, so the TTL survives as in Redis, where the
string is changed in place.

Error order follows Redis: arguments are parsed before the key is looked up, so a bad offset
on a key of another type is an offset error, not WRONGTYPE. Effects: SETBIT, BITFIELD and a
storing BITOP propagate themselves (they are deterministic); a BITOP whose result is empty
propagates the DEL it performed; a command that changed nothing propagates nothing.
"""

from __future__ import annotations

from typing import Any

from jobcached.cache import bitfield
from jobcached.commands.args import INT64_MAX, to_int
from jobcached.commands.registry import DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.server.notify import GENERIC, STRING, notify
from jobcached.server.session import Session

OFFSET_ERROR = "bit offset is not an integer or out of range"
BIT_ERROR = "bit is not an integer or out of range"
TYPE_ERROR = ("Invalid bitfield type. Use something like i16 u8. Note that u64 is not "
              "supported but i64 is.")
MAX_SIGNED_BITS = 64
MAX_UNSIGNED_BITS = 63  # replies are signed 64-bit integers


def _wrap64(value: int) -> int:
    """C's signed 64-bit wrap-around (Redis multiplies `#n` offsets without a check)."""
    value &= bitfield.UINT64_MASK
    return value - (1 << 64) if value > INT64_MAX else value


def parse_offset(s: Session, raw: bytes, bits: int = 0) -> int:
    """A bit offset (getBitOffsetFromArgument); `#n` means n * bits when `bits` is given.
    The byte it reaches must stay below proto-max-bulk-len."""
    hashed = bits > 0 and raw[:1] == b"#"
    try:
        offset = to_int(raw[1:] if hashed else raw)
    except CommandError:
        raise CommandError(OFFSET_ERROR) from None
    if hashed:
        offset = _wrap64(offset * bits)
    if offset < 0 or (offset >> 3) >= s.server.config.proto_max_bulk_len:
        raise CommandError(OFFSET_ERROR)
    return offset


def _grown(s: Session, key: bytes, last_bit: int) -> tuple[bytearray, bool]:
    """The string at `key` as a mutable copy, zero-extended to hold `last_bit`, and whether
    it was created or grown (lookupStringForBitCommand)."""
    old = s.keyspace.get_string(key, write=True)
    need = (last_bit >> 3) + 1
    if old is None:
        return bytearray(need), True
    buf = bytearray(old)
    if len(buf) < need:
        buf.extend(bytes(need - len(buf)))
        return buf, True
    return buf, False


def _store(s: Session, key: bytes, buf: bytearray, argv: list[bytes]) -> None:
    s.keyspace.set(key, bytes(buf), keepttl=True)


# --------------------------------------------------------------------------- single bits


@command("SETBIT", arity=4, flags=WRITE | DENYOOM, group="bitmap", keys=(1, 1, 1))
def setbit(s: Session, argv: list[bytes]) -> int:
    """SETBIT key offset value

    Set or clear one bit of a string, growing it with zero bytes as needed; the TTL is kept.

    Reply: integer: the bit's previous value.
    Errors: `bit offset is not an integer or out of range` (negative, or a byte at or past
    proto-max-bulk-len); `bit is not an integer or out of range` for a value other than 0
    or 1; `WRONGTYPE`.
    """
    offset = parse_offset(s, argv[2])
    try:
        on = to_int(argv[3])
    except CommandError:
        raise CommandError(BIT_ERROR) from None
    if on not in (0, 1):
        raise CommandError(BIT_ERROR)
    key = argv[1]
    byte, mask = offset >> 3, 0x80 >> (offset & 7)
    old = s.keyspace.get_string(key, write=True)
    previous = 1 if old is not None and byte < len(old) and old[byte] & mask else 0
    if old is not None and byte < len(old) and previous == on:
        return previous  # nothing changes: no write, no effect
    buf, _ = _grown(s, key, offset)
    buf[byte] = buf[byte] | mask if on else buf[byte] & ~mask
    _store(s, key, buf, argv)
    notify(s.server, STRING, b"setbit", key)
    return previous


@command("GETBIT", arity=3, flags=READONLY | FAST, group="bitmap", keys=(1, 1, 1))
def getbit(s: Session, argv: list[bytes]) -> int:
    """GETBIT key offset

    The value of one bit of a string; bits past the end (or of a missing key) are 0.

    Reply: integer: 0 or 1.
    Errors: `bit offset is not an integer or out of range`; `WRONGTYPE`.
    """
    offset = parse_offset(s, argv[2])
    value = s.keyspace.get_string(argv[1])
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return 1 if value[byte] & (0x80 >> (offset & 7)) else 0


# --------------------------------------------------------------------------- ranges


def _unit(raw: bytes) -> bool:
    """True for BIT, False for BYTE (case-insensitive); anything else is a syntax error."""
    unit = raw.upper()
    if unit not in (b"BIT", b"BYTE"):
        raise SyntaxErr()
    return unit == b"BIT"


@command("BITCOUNT", arity=-2, flags=READONLY, group="bitmap", keys=(1, 1, 1))
def bitcount(s: Session, argv: list[bytes]) -> int:
    """BITCOUNT key [start end [BYTE | BIT]]

    Count the set bits of a string, optionally within a range of bytes (or, with BIT, of
    bits); negative indexes count from the end.

    Reply: integer: the number of set bits (0 for a missing key).
    Errors: not an integer; `syntax error` for a wrong argument count or unit; `WRONGTYPE`.
    A missing key answers 0 before the range is checked, as in Redis 7.0.
    """
    value = s.keyspace.get_string(argv[1])
    if value is None:
        return 0
    n = len(argv)
    if n == 2:
        return bitfield.count_bits(value, 0, len(value) * 8 - 1) if value else 0
    if n not in (4, 5):
        raise SyntaxErr()
    start, end = to_int(argv[2]), to_int(argv[3])
    if start < 0 and end < 0 and start > end:
        return 0
    in_bits = _unit(argv[4]) if n == 5 else False
    span = bitfield.bit_range(len(value), start, end, in_bits)
    return 0 if span is None else bitfield.count_bits(value, *span)


@command("BITPOS", arity=-3, flags=READONLY, group="bitmap", keys=(1, 1, 1))
def bitpos(s: Session, argv: list[bytes]) -> int:
    """BITPOS key bit [start [end [BYTE | BIT]]]

    The position of the first bit set to 1 or 0, optionally within a range of bytes (or, with
    BIT, of bits). Looking for 0 without an end treats the string as padded with zeros on the
    right, so the answer may be the first bit past the end; with an explicit end it is -1.

    Reply: integer: the bit position, or -1 when there is none (a missing key holds no 1s and
    has its first 0 at position 0).
    Errors: `The bit argument must be 1 or 0.`; not an integer; `syntax error`; `WRONGTYPE`.
    """
    bit = to_int(argv[2])
    if bit not in (0, 1):
        raise CommandError("The bit argument must be 1 or 0.")
    value = s.keyspace.get_string(argv[1])
    if value is None:
        return -1 if bit else 0
    n = len(argv)
    if n > 6:
        raise SyntaxErr()
    end_given = n >= 5
    if n == 3:
        span = (0, len(value) * 8 - 1) if value else None
    else:
        start = to_int(argv[3])
        in_bits = _unit(argv[5]) if n == 6 else False
        end = to_int(argv[4]) if end_given else INT64_MAX
        span = bitfield.bit_range(len(value), start, end, in_bits)
    if span is None:
        return -1
    found = bitfield.find_bit(value, bit, *span)
    if found < 0 and bit == 0 and not end_given:
        return span[1] + 1
    return found


# --------------------------------------------------------------------------- BITOP


_OPS = {b"AND", b"OR", b"XOR", b"NOT"}
_NOT_TABLE = bytes(255 - i for i in range(256))


@command("BITOP", arity=-4, flags=WRITE | DENYOOM, group="bitmap", keys=(2, -1, 1))
def bitop(s: Session, argv: list[bytes]) -> int:
    """BITOP AND | OR | XOR | NOT destkey key [key ...]

    Combine strings bit by bit into `destkey` (replacing it, TTL included); shorter strings
    and missing keys count as zero bytes. NOT takes exactly one key. An empty result deletes
    `destkey`.

    Reply: integer: the length of the result in bytes.
    Errors: `syntax error` for an unknown operation; `BITOP NOT must be called with a single
    source key.`; `WRONGTYPE` when a source is not a string.
    """
    op = argv[1].upper()
    if op not in _OPS:
        raise SyntaxErr()
    if op == b"NOT" and len(argv) != 4:
        raise CommandError("BITOP NOT must be called with a single source key.")
    ks = s.keyspace
    sources = [ks.get_string(key) or b"" for key in argv[3:]]
    size = max(len(v) for v in sources)
    dest = argv[2]
    if size == 0:
        if ks.delete(dest):
            s.server.effects.cache([b"DEL", dest], (dest,))
            notify(s.server, GENERIC, b"del", dest)
        return 0
    if op == b"NOT":
        result = sources[0].translate(_NOT_TABLE)
    else:
        acc = int.from_bytes(sources[0].ljust(size, b"\0"), "big")
        for value in sources[1:]:
            other = int.from_bytes(value.ljust(size, b"\0"), "big")
            if op == b"AND":
                acc &= other
            elif op == b"OR":
                acc |= other
            else:
                acc ^= other
        result = acc.to_bytes(size, "big")
    ks.set(dest, result)
    notify(s.server, STRING, b"set", dest)
    return size


# --------------------------------------------------------------------------- BITFIELD


def _field_type(raw: bytes) -> tuple[bool, int]:
    """(signed, bits) from `i<bits>` / `u<bits>` (lower case only, as Redis)."""
    signed = raw[:1] == b"i"
    if not signed and raw[:1] != b"u":
        raise CommandError(TYPE_ERROR)
    try:
        bits = to_int(raw[1:])
    except CommandError:
        raise CommandError(TYPE_ERROR) from None
    if not 1 <= bits <= (MAX_SIGNED_BITS if signed else MAX_UNSIGNED_BITS):
        raise CommandError(TYPE_ERROR)
    return signed, bits


#: one parsed operation: (opcode, signed, bits, offset, argument, overflow kind)
Op = tuple[bytes, bool, int, int, int, int]


def _parse_ops(s: Session, argv: list[bytes]) -> list[Op]:
    ops: list[Op] = []
    kind = bitfield.WRAP
    j, n = 2, len(argv)
    while j < n:
        name = argv[j].upper()
        left = n - j - 1
        if name == b"OVERFLOW" and left >= 1:
            kind_name = argv[j + 1].upper()
            if kind_name not in bitfield.OVERFLOW_TYPES:
                raise CommandError("Invalid OVERFLOW type specified")
            kind = bitfield.OVERFLOW_TYPES[kind_name]
            j += 2
            continue
        if not ((name == b"GET" and left >= 2) or (name in (b"SET", b"INCRBY") and left >= 3)):
            raise SyntaxErr()
        signed, bits = _field_type(argv[j + 1])
        offset = parse_offset(s, argv[j + 2], bits)
        arg = 0
        if name != b"GET":
            arg = to_int(argv[j + 3])
        ops.append((name, signed, bits, offset, arg, kind))
        j += 3 if name == b"GET" else 4
    return ops


def _bitfield(s: Session, argv: list[bytes], readonly: bool) -> list[Any]:
    ops = _parse_ops(s, argv)
    key = argv[1]
    writes = [op for op in ops if op[0] != b"GET"]
    if not writes:
        value = s.keyspace.get_string(key) or b""
        return [bitfield.get_field(value, off, bits, signed)
                for _, signed, bits, off, _, _ in ops]
    if readonly:
        raise CommandError("BITFIELD_RO only supports the GET subcommand")
    buf, dirty = _grown(s, key, max(op[3] + op[2] - 1 for op in writes))
    replies: list[Any] = []
    changed = dirty
    reported = False  # Redis reports `setbit` for an op that did not fail and changed a bit
    for name, signed, bits, off, arg, kind in ops:
        old = bitfield.get_field(buf, off, bits, signed)
        if name == b"GET":
            replies.append(old)
            continue
        if name == b"INCRBY":
            new, over = bitfield.overflow(old, arg, bits, signed, kind)
            reply = new
        else:
            new, over = bitfield.overflow(arg, 0, bits, signed, kind)
            reply = old
        if over and kind == bitfield.FAIL:
            replies.append(None)
            continue
        replies.append(reply)
        bitfield.set_field(buf, off, bits, new)
        if dirty or new != old:
            changed = reported = True
    if changed:
        _store(s, key, buf, argv)
    if reported:
        notify(s.server, STRING, b"setbit", key)
    return replies


@command("BITFIELD", arity=-2, flags=WRITE | DENYOOM, group="bitmap", keys=(1, 1, 1))
def bitfield_(s: Session, argv: list[bytes]) -> list[Any]:
    """BITFIELD key [GET encoding offset | [OVERFLOW WRAP | SAT | FAIL]
    SET encoding offset value | INCRBY encoding offset increment ...]

    Read and write integers of any width at any bit offset of a string: `i1`..`i64` signed,
    `u1`..`u63` unsigned; an offset `#n` means n times the width. OVERFLOW sets how the SET
    and INCRBY after it handle a value out of range: WRAP (the default) keeps the low bits,
    SAT clamps, FAIL skips the write and answers nil. Writes grow the string with zero bytes
    and keep the TTL.

    Reply: array with one entry per GET / SET / INCRBY: the value read, the previous value
    (SET), the new value (INCRBY), or nil when FAIL refused it.
    Errors: `syntax error`; `Invalid OVERFLOW type specified`; `Invalid bitfield type...`;
    `bit offset is not an integer or out of range`; not an integer; `WRONGTYPE`.
    """
    return _bitfield(s, argv, readonly=False)


@command("BITFIELD_RO", arity=-2, flags=READONLY | FAST, group="bitmap", keys=(1, 1, 1))
def bitfield_ro(s: Session, argv: list[bytes]) -> list[Any]:
    """BITFIELD_RO key [GET encoding offset [GET encoding offset ...]]

    BITFIELD restricted to GET, so it may run on replicas and in read-only scripts.

    Reply: array of integers, one per GET.
    Errors: as BITFIELD; `BITFIELD_RO only supports the GET subcommand`.
    """
    return _bitfield(s, argv, readonly=True)

