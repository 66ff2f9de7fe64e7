"""Bit-level arithmetic on string values: the pure part of Redis' bitops.c.

Strings are immutable `bytes` in the keyspace, so readers here take `bytes` (or a memoryview)
and only ever slice the few bytes they need; writers take a `bytearray` the command layer
builds once per command and stores back once.

Bit numbering is Redis': bit 0 is the most significant bit of byte 0, so the string reads as
one big-endian bit array. A bitfield of `bits` width at bit `offset` is the big-endian integer
made of bits offset .. offset+bits-1; reading past the end of the string reads zeros.

Ranges (BITCOUNT, BITPOS) are normalised to an inclusive *bit* range [first, last] once, the
way bitcountCommand / bitposCommand do it (negative indexes from the end, clamping, BYTE or
BIT units); counting and searching then work on whole bytes through `int.from_bytes` and
`int.bit_count`, both C loops, with the partial edge bytes masked.
"""

from __future__ import annotations

INT64_MIN = -(2**63)
UINT64_MASK = 2**64 - 1
COUNT_CHUNK_BYTES = 1 << 16  # popcount in slices this big: bounded temporaries for 512 MB values

WRAP, SAT, FAIL = 0, 1, 2
OVERFLOW_TYPES = {b"WRAP": WRAP, b"SAT": SAT, b"FAIL": FAIL}


def bit_range(length: int, start: int, end: int, in_bits: bool) -> tuple[int, int] | None:
    """The inclusive bit range [first, last] that `start end [BYTE|BIT]` names in a string
    of `length` bytes, or None when it is empty (after Redis' negative-index conversion and
    clamping)."""
    total = length * 8 if in_bits else length
    if start < 0:
        start = max(total + start, 0)
    if end < 0:
        end = max(total + end, 0)
    end = min(end, total - 1)
    if start > end:
        return None
    return (start, end) if in_bits else (start * 8, end * 8 + 7)


def count_bits(value: bytes, first: int, last: int) -> int:
    """Set bits of `value` within bits [first, last] (both inside the string)."""
    lo, hi = first >> 3, last >> 3
    view = memoryview(value)
    total = 0
    for pos in range(lo, hi + 1, COUNT_CHUNK_BYTES):
        total += int.from_bytes(view[pos : min(pos + COUNT_CHUNK_BYTES, hi + 1)],
                                "big").bit_count()
    head = value[lo] >> (8 - (first & 7)) if first & 7 else 0  # bits before `first`
    tail = value[hi] & ((1 << (7 - (last & 7))) - 1)  # bits after `last`
    return total - head.bit_count() - tail.bit_count()


def find_bit(value: bytes, bit: int, first: int, last: int) -> int:
    """The position of the first bit equal to `bit` within [first, last], or -1."""
    lo, hi = first >> 3, last >> 3
    skip = 0xFF if bit == 0 else 0x00  # a byte that cannot hold the bit we look for
    pos = lo
    while pos <= hi:
        chunk = value[pos : min(pos + COUNT_CHUNK_BYTES, hi + 1)]
        stripped = chunk.lstrip(bytes((skip,)))
        if stripped:
            byte_pos = pos + len(chunk) - len(stripped)
            found = _first_in_range(value[byte_pos], bit, byte_pos, first, last)
            if found >= 0:
                return found
            pos = byte_pos + 1  # only edge bytes can fail (masked bits), so this is rare
            continue
        pos += len(chunk)
    return -1


def _first_in_range(byte: int, bit: int, byte_pos: int, first: int, last: int) -> int:
    for i in range(8):
        position = byte_pos * 8 + i
        if first <= position <= last and (byte >> (7 - i)) & 1 == bit:
            return position
    return -1


def get_field(value: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    """The bitfield at `offset`, zero-padded past the end of the string."""
    lo = offset >> 3
    hi = (offset + bits - 1) >> 3
    raw = int.from_bytes(value[lo : hi + 1], "big")
    have = len(value) - lo
    width = hi - lo + 1
    if have < width:  # the field runs past the end: the missing bytes are zeros
        raw <<= 8 * (width - max(have, 0))
    field = (raw >> (width * 8 - (offset & 7) - bits)) & ((1 << bits) - 1)
    if signed and field >> (bits - 1):
        field -= 1 << bits
    return field


def set_field(buf: bytearray, offset: int, bits: int, field: int) -> None:
    """Write the low `bits` bits of `field` at `offset`; `buf` is already long enough."""
    lo = offset >> 3
    hi = (offset + bits - 1) >> 3
    width = hi - lo + 1
    shift = width * 8 - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    raw = int.from_bytes(buf[lo : hi + 1], "big")
    raw = (raw & ~mask) | ((field << shift) & mask)
    buf[lo : hi + 1] = raw.to_bytes(width, "big")


def overflow(value: int, incr: int, bits: int, signed: bool, kind: int) -> tuple[int, bool]:
    """(the value to store, whether it overflowed) for `value + incr` in a field of `bits`.

    Redis' checkSignedBitfieldOverflow / checkUnsignedBitfieldOverflow: the sum is exact here,
    so "overflow" means the sum is outside the type's range. WRAP keeps the low bits (two's
    complement for signed), SAT clamps, FAIL reports it (the caller writes nothing). For an
    unsigned SET (incr 0) a negative value is first read as a 64-bit unsigned number, as C
    does, so `SET u8 0 -1` saturates to 255 and wraps to 255.
    """
    if signed:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        total = value + incr
    else:
        low, high = 0, (1 << bits) - 1
        total = (value & UINT64_MASK) + incr
    if low <= total <= high:
        return total, False
    if kind == SAT:
        return (high if total > high else low), True
    wrapped = total & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return wrapped, True
