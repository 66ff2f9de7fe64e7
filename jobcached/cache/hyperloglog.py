"""HyperLogLog exactly as Redis 7.0 stores and counts it (hyperloglog.c), byte for byte.

Why byte for byte: a HyperLogLog is a plain string value. Users GET it, DUMP it, copy it
between servers; PFCOUNT of a value Redis wrote must give Redis' answer, and ours must read
back in Redis. So this module reproduces Redis' representation and its update algorithm, not
just the estimator.

Theory of operation. An element is hashed with MurmurHash64A (seed 0xadc83b19); the low 14
bits pick one of 16384 registers, and the register keeps the largest "run length" seen: the
number of trailing zero bits of the remaining 50 bits, plus one (1..51). The value is

    "HYLL" | encoding (0 dense, 1 sparse) | 3 unused bytes | cached cardinality (8 bytes, LE)
    | registers

The cached cardinality is valid unless the top bit of its last byte is set; writes set that bit,
PFCOUNT of a single key recomputes and stores it. Dense registers are 6 bits each, packed
least-significant bit first (12288 bytes). Sparse registers are run-length opcodes:
ZERO `00xxxxxx` (1..64 zero registers), XZERO `01xxxxxx yyyyyyyy` (1..16384 zeros) and
VAL `1vvvvvxx` (1..4 registers of value 1..32). A new value is one XZERO of 16384. Setting a
register splits the opcode that covers it (`sparse_set`, a transcription of hllSparseSet,
including its 5-opcode merge window, since any other split would give other bytes); a value
over 32, or growth past `hll-sparse-max-bytes`, promotes the value to dense.

Counting uses Ertl's estimator as Redis 7 does (hllCount with hllTau / hllSigma) on the
register histogram, in the same floating-point operations, so the rounded result is Redis'.

Speed. MurmurHash64A runs in Python integer arithmetic (about 1.5 us for a short element:
no package on the index provides this exact hash). Whole-register work (merge, count of a
dense value) avoids per-register loops: the 12288 dense bytes are split into three lanes of
4096 bytes that become Python integers, and shifts and masks on those give the four
registers of each 3-byte group in all lanes at once; the maximum of two register arrays is a
SWAR comparison on 16384 one-byte lanes.
"""

from __future__ import annotations

import math
import struct

SEED = 0xADC83B19
M64 = 0xC6A4A7935BD1E995
MASK64 = (1 << 64) - 1
P = 14  # register index bits
Q = 64 - P  # bits left for the run length
REGISTERS = 1 << P
INDEX_MASK = REGISTERS - 1
HEADER_BYTES = 16
DENSE_BYTES = HEADER_BYTES + REGISTERS * 6 // 8
SPARSE, DENSE = 1, 0
MAGIC = b"HYLL"
CARD_OFFSET = 8
STALE_BIT_OFFSET = 15  # card[7]: its top bit marks the cached cardinality as stale
SPARSE_VAL_MAX_VALUE = 32
SPARSE_VAL_MAX_LEN = 4
SPARSE_ZERO_MAX_LEN = 64
SPARSE_XZERO_MAX_LEN = 16384
SPARSE_MAX_BYTES = 3000  # Redis' default hll-sparse-max-bytes
MERGE_WINDOW_OPCODES = 5  # hllSparseSet re-examines this many opcodes from the previous one
ALPHA_INF = 0.721347520444481703680  # 0.5 / ln(2)

LANE = REGISTERS // 4  # 4096 three-byte groups, each holding four registers
_LANE_BYTES = LANE
_L3 = int.from_bytes(b"\x03" * LANE, "little")
_L15 = int.from_bytes(b"\x0f" * LANE, "little")
_L63 = int.from_bytes(b"\x3f" * LANE, "little")
_HIGH = int.from_bytes(b"\x80" * REGISTERS, "little")
_ALL = int.from_bytes(b"\xff" * REGISTERS, "little")

EMPTY_SPARSE = MAGIC + bytes((SPARSE, 0, 0, 0)) + bytes(8) + b"\x7f\xff"


class InvalidHll(Exception):
    """The value has the HYLL header but its registers are corrupt (Redis' INVALIDOBJ)."""


# --------------------------------------------------------------------------- hashing


def murmurhash64a(data: bytes, seed: int = SEED) -> int:
    """Austin Appleby's MurmurHash64A, as Redis compiles it on little-endian machines."""
    n = len(data)
    h = (seed ^ (n * M64)) & MASK64
    blocks = n >> 3
    if blocks:
        for k in struct.unpack_from(f"<{blocks}Q", data):
            k = (k * M64) & MASK64
            k ^= k >> 47
            h ^= (k * M64) & MASK64
            h = (h * M64) & MASK64
    if n & 7:
        h ^= int.from_bytes(data[blocks * 8 :], "little")
        h = (h * M64) & MASK64
    h ^= h >> 47
    h = (h * M64) & MASK64
    return h ^ (h >> 47)


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, run length) for an element (hllPatLen)."""
    h = murmurhash64a(element)
    rest = (h >> P) | (1 << Q)
    return h & INDEX_MASK, (rest & -rest).bit_length()


# --------------------------------------------------------------------------- the header


def is_valid(value: bytes) -> bool:
    """Redis' isHLLObjectOrReply: header, known encoding, exact dense size."""
    return (len(value) >= HEADER_BYTES and value[:4] == MAGIC and value[4] <= SPARSE
            and (value[4] != DENSE or len(value) == DENSE_BYTES))


def cached_count(value: bytes) -> int | None:
    """The cached cardinality, or None when it is stale."""
    if value[STALE_BIT_OFFSET] & 0x80:
        return None
    return int.from_bytes(value[CARD_OFFSET:HEADER_BYTES], "little")


def with_cached_count(value: bytes, card: int) -> bytes:
    return value[:CARD_OFFSET] + card.to_bytes(8, "little") + value[HEADER_BYTES:]


def invalidate(buf: bytearray) -> None:
    buf[STALE_BIT_OFFSET] |= 0x80


# --------------------------------------------------------------------------- dense registers


def _dense_get(buf: bytearray | bytes, index: int) -> int:
    pos = HEADER_BYTES + index * 6 // 8
    window = buf[pos] | (buf[pos + 1] << 8 if pos + 1 < len(buf) else 0)
    return (window >> (index * 6 & 7)) & 63


def dense_set(buf: bytearray, index: int, count: int) -> int:
    """Raise register `index` to `count`; 1 if it changed (hllDenseSet)."""
    if _dense_get(buf, index) >= count:
        return 0
    pos = HEADER_BYTES + index * 6 // 8
    shift = index * 6 & 7
    window = buf[pos] | (buf[pos + 1] << 8 if pos + 1 < len(buf) else 0)
    window = (window & ~(63 << shift)) | (count << shift)
    buf[pos] = window & 0xFF
    if pos + 1 < len(buf):
        buf[pos + 1] = window >> 8
    return 1


def dense_to_raw(registers: bytes) -> bytes:
    """12288 packed bytes -> 16384 bytes, one register each (all lanes at once)."""
    x0 = int.from_bytes(registers[0::3], "little")
    x1 = int.from_bytes(registers[1::3], "little")
    x2 = int.from_bytes(registers[2::3], "little")
    raw = bytearray(REGISTERS)
    raw[0::4] = (x0 & _L63).to_bytes(LANE, "little")
    raw[1::4] = (((x0 >> 6) & _L3) | ((x1 & _L15) << 2)).to_bytes(LANE, "little")
    raw[2::4] = (((x1 >> 4) & _L15) | ((x2 & _L3) << 4)).to_bytes(LANE, "little")
    raw[3::4] = ((x2 >> 2) & _L63).to_bytes(LANE, "little")
    return bytes(raw)


def raw_to_dense(raw: bytes) -> bytes:
    """The inverse of dense_to_raw (registers must be < 64)."""
    r0 = int.from_bytes(raw[0::4], "little")
    r1 = int.from_bytes(raw[1::4], "little")
    r2 = int.from_bytes(raw[2::4], "little")
    r3 = int.from_bytes(raw[3::4], "little")
    packed = bytearray(REGISTERS * 6 // 8)
    packed[0::3] = (r0 | ((r1 & _L3) << 6)).to_bytes(LANE, "little")
    packed[1::3] = (((r1 >> 2) & _L15) | ((r2 & _L15) << 4)).to_bytes(LANE, "little")
    packed[2::3] = (((r2 >> 4) & _L3) | (r3 << 2)).to_bytes(LANE, "little")
    return bytes(packed)


def raw_max(a: bytes, b: bytes) -> bytes:
    """Per-register maximum of two raw arrays (values < 128): a SWAR comparison."""
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    keep_x = ((((x | _HIGH) - y) & _HIGH) >> 7) * 0xFF  # lanes where x >= y
    return ((x & keep_x) | (y & (_ALL ^ keep_x))).to_bytes(REGISTERS, "little")


# --------------------------------------------------------------------------- sparse registers


def _opcode(buf: bytes | bytearray, p: int, end: int) -> tuple[int, int, int]:
    """(kind, run length, value) of the opcode at p: kind 0 ZERO, 1 XZERO, 2 VAL."""
    op = buf[p]
    if op & 0x80:
        return 2, (op & 3) + 1, ((op >> 2) & 31) + 1
    if op & 0x40:
        low = buf[p + 1] if p + 1 < end else 0
        return 1, (((op & 63) << 8) | low) + 1, 0
    return 0, (op & 63) + 1, 0


def _val(value: int, run: int) -> int:
    return 0x80 | ((value - 1) << 2) | (run - 1)


def _zeros(run: int) -> bytes:
    if run > SPARSE_ZERO_MAX_LEN:
        return bytes((0x40 | ((run - 1) >> 8), (run - 1) & 0xFF))
    return bytes((run - 1,))


def sparse_to_raw(value: bytes | bytearray) -> bytes:
    """16384 bytes, one register each; InvalidHll if the runs do not cover them exactly."""
    raw = bytearray(REGISTERS)
    p, end, idx = HEADER_BYTES, len(value), 0
    while p < end:
        kind, run, val = _opcode(value, p, end)
        if kind == 2:
            if idx + run > REGISTERS:
                break
            raw[idx : idx + run] = bytes((val,)) * run
        idx += run
        p += 2 if kind == 1 else 1
    if idx != REGISTERS:
        raise InvalidHll()
    return bytes(raw)


def decode_sparse(value: bytes) -> bytes:
    """The opcodes of a sparse value as PFDEBUG DECODE prints them."""
    words = []
    p, end = HEADER_BYTES, len(value)
    while p < end:
        kind, run, val = _opcode(value, p, end)
        words.append(f"v:{val},{run}" if kind == 2 else f"{'Z' if kind == 1 else 'z'}:{run}")
        p += 2 if kind == 1 else 1
    return " ".join(words).encode()


def to_dense(buf: bytearray) -> None:
    """Convert a sparse value to dense in place, keeping the header (hllSparseToDense)."""
    if buf[4] == DENSE:
        return
    raw = sparse_to_raw(buf)
    buf[4:] = bytes((DENSE,)) + buf[5:HEADER_BYTES] + raw_to_dense(raw)


def sparse_set(buf: bytearray, index: int, count: int, max_bytes: int,
               resume: list[int] | None = None) -> int:
    """Raise register `index` to `count` in a sparse value (hllSparseSet): 1 if it changed,
    0 if not. Promotes `buf` to dense when needed. Raises InvalidHll on a corrupt value.

    `resume` lets a caller that sets registers in ascending order (PFMERGE) skip the opcodes
    already passed: [position, first register, previous position or -1], updated in place.
    """
    if count > SPARSE_VAL_MAX_VALUE:
        return _promote(buf, index, count)
    end = len(buf)
    if resume:
        p, first, prev = resume
    else:
        p, first, prev = HEADER_BYTES, 0, -1
    prev_first, pprev, advanced = 0, -1, False
    span = 0
    while p < end:  # the hot loop of a sparse PFADD: _opcode() inlined
        op = buf[p]
        if op & 0x80:
            span, step = (op & 3) + 1, 1
        elif op & 0x40:
            span, step = (((op & 63) << 8) | (buf[p + 1] if p + 1 < end else 0)) + 1, 2
        else:
            span, step = (op & 63) + 1, 1
        if index < first + span:
            break
        pprev, prev, prev_first, advanced = prev, p, first, True
        p += step
        first += span
    if span == 0 or p >= end:
        raise InvalidHll()
    kind, span, val = _opcode(buf, p, end)
    if resume is not None and advanced:
        # Nothing before `prev` changes below (merges start there), so the next, higher
        # register can be searched from it.
        resume[:] = [prev, prev_first, pprev]
    if kind == 2:
        if val >= count:
            return 0
        if span == 1:
            buf[p] = _val(count, 1)
            _merge(buf, prev, end)
            return 1
    if kind == 0 and span == 1:
        buf[p] = _val(count, 1)
        _merge(buf, prev, end)
        return 1
    last = first + span - 1
    seq = bytearray()
    if kind == 2:
        if index != first:
            seq.append(_val(val, index - first))
        seq.append(_val(count, 1))
        if index != last:
            seq.append(_val(val, last - index))
    else:
        if index != first:
            seq += _zeros(index - first)
        seq.append(_val(count, 1))
        if index != last:
            seq += _zeros(last - index)
    old_len = 2 if kind == 1 else 1
    delta = len(seq) - old_len
    if delta > 0 and end + delta > max_bytes:
        return _promote(buf, index, count)
    buf[p : p + old_len] = seq
    _merge(buf, prev, end + delta)
    return 1


def _merge(buf: bytearray, prev: int, end: int) -> None:
    """Join adjacent VAL opcodes of equal value within the window after a change; marks the
    cached cardinality stale (the tail of hllSparseSet)."""
    p = prev if prev >= 0 else HEADER_BYTES
    for _ in range(MERGE_WINDOW_OPCODES):
        if p >= end:
            break
        op = buf[p]
        if not op & 0x80:
            p += 2 if op & 0x40 else 1
            continue
        if p + 1 < end and buf[p + 1] & 0x80:
            nxt = buf[p + 1]
            if (op >> 2) & 31 == (nxt >> 2) & 31:
                run = (op & 3) + (nxt & 3) + 2
                if run <= SPARSE_VAL_MAX_LEN:
                    buf[p + 1] = _val(((op >> 2) & 31) + 1, run)
                    del buf[p]
                    end -= 1
                    continue
        p += 1
    invalidate(buf)


def _promote(buf: bytearray, index: int, count: int) -> int:
    to_dense(buf)
    return dense_set(buf, index, count)


# --------------------------------------------------------------------------- whole values


def add(buf: bytearray, element: bytes, max_bytes: int = SPARSE_MAX_BYTES) -> int:
    """PFADD one element (hllAdd): 1 if a register changed, else 0."""
    index, count = pattern(element)
    if buf[4] == DENSE:
        return dense_set(buf, index, count)
    return sparse_set(buf, index, count, max_bytes)


def dense_raises(value: bytes, elements: list[bytes]) -> list[tuple[int, int]]:
    """The (register, run length) pairs of `elements` that would raise a register of a dense
    value, read without copying it: once a HyperLogLog is dense most PFADDs change nothing,
    and those should not pay for a 12 KB copy."""
    raises = []
    for element in elements:
        index, run = pattern(element)
        if _dense_get(value, index) < run:
            raises.append((index, run))
    return raises


def registers(value: bytes) -> bytes:
    """The registers of a valid value, one byte each (hllMerge's input)."""
    if value[4] == DENSE:
        return dense_to_raw(value[HEADER_BYTES:])
    return sparse_to_raw(value)


def merge_into(buf: bytearray, raw: bytes, use_dense: bool,
               max_bytes: int = SPARSE_MAX_BYTES) -> None:
    """PFMERGE's write: raise the registers of `buf` (whose own registers are part of `raw`)
    to `raw`, promoting first when any input was dense, registers in ascending order."""
    if use_dense:
        to_dense(buf)
    if buf[4] == SPARSE:
        resume: list[int] = []
        for index, count in enumerate(raw):
            if count:
                sparse_set(buf, index, count, max_bytes, resume)
                if buf[4] == DENSE:
                    break
    if buf[4] == DENSE:  # every register ends at raw's value: raw already holds the old ones
        buf[HEADER_BYTES:] = raw_to_dense(raw)
    invalidate(buf)


def histogram(raw: bytes) -> list[int]:
    """How many registers hold each value 0..63."""
    histo = [0] * 64
    left = REGISTERS
    for v in range(64):
        if not left:
            break
        histo[v] = c = raw.count(v)
        left -= c
    return histo


def _sparse_histogram(value: bytes) -> list[int]:
    histo = [0] * 64
    p, end, idx = HEADER_BYTES, len(value), 0
    while p < end:  # _opcode() inlined: PFCOUNT of a sparse value walks every opcode
        op = value[p]
        if op & 0x80:
            run = (op & 3) + 1
            histo[((op >> 2) & 31) + 1] += run
            p += 1
        elif op & 0x40:
            run = (((op & 63) << 8) | (value[p + 1] if p + 1 < end else 0)) + 1
            histo[0] += run
            p += 2
        else:
            run = (op & 63) + 1
            histo[0] += run
            p += 1
        idx += run
    if idx != REGISTERS:
        raise InvalidHll()
    return histo


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z: float = 1 - x  # float ** float below is typed Any (typeshed): keep z a float
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= (1 - x) ** 2.0 * y
        if z_prime == z:
            return z / 3


def estimate(histo: list[int]) -> int:
    """Ertl's improved estimator, in hllCount's exact operation order, rounded as llroundl."""
    m = float(REGISTERS)
    z = m * _tau((m - histo[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histo[j]
        z *= 0.5
    z += m * _sigma(histo[0] / m)
    e = ALPHA_INF * m * m / z
    whole = int(e)
    return whole + 1 if e - whole >= 0.5 else whole


def count(value: bytes) -> int:
    """The cardinality estimate of one valid value (ignoring its cache)."""
    if value[4] == DENSE:
        return estimate(histogram(dense_to_raw(value[HEADER_BYTES:])))
    return estimate(_sparse_histogram(value))
