"""Redis' compact blobs, as they travel inside RDB payloads: listpack (read and write), intset
(read and write), ziplist and zipmap (read only: Redis 7.0 no longer writes them, but loads
them from older payloads).

We never keep values in these forms; they exist only at the DUMP / RESTORE boundary, so the
code favours following the C sources (src/listpack.c, intset.c, ziplist.c, zipmap.c) step by
step over speed. Writing follows Redis exactly (a string that is a canonical decimal integer is
stored as an integer, in the smallest encoding), so a small value dumps to redis-server's bytes.
Every decoder raises RdbError on malformed input; an element is returned as bytes (integers as
their decimal text), which is how Redis hands them to commands.
"""

from __future__ import annotations

from itertools import pairwise

from jobcached.cache.rdbformat import RdbError

LP_HEADER_BYTES = 6  # total bytes (uint32), element count (uint16)
LP_EOF = 0xFF
LP_COUNT_UNKNOWN = 0xFFFF  # the count field when there are more elements than it can hold
INT64_MAX_DECIMAL_BYTES = 20  # lpStringToInt64 rejects longer strings
ZIP_BIG_PREVLEN = 254
ZIPMAP_BIG_LEN = 254


def as_int(data: bytes) -> int | None:
    """lpStringToInt64 / string2ll: the value of a canonical decimal within int64, else None."""
    if not data or len(data) > INT64_MAX_DECIMAL_BYTES or not data[-1:].isdigit():
        return None
    try:
        value = int(data)
    except ValueError:
        return None
    if str(value).encode() != data or not -(1 << 63) <= value < 1 << 63:
        return None
    return value


# ---- listpack -----------------------------------------------------------------------------------
def _lp_int(v: int) -> bytes:
    """lpEncodeIntegerGetType: 7-bit unsigned, 13-bit, 16, 24, 32 or 64-bit signed."""
    if 0 <= v <= 127:
        return bytes([v])
    if -4096 <= v <= 4095:
        u = v & 0x1FFF
        return bytes([0xC0 | u >> 8, u & 0xFF])
    for tag, size in ((0xF1, 2), (0xF2, 3), (0xF3, 4), (0xF4, 8)):
        if -(1 << (8 * size - 1)) <= v < 1 << (8 * size - 1):
            return bytes([tag]) + v.to_bytes(size, "little", signed=True)
    raise ValueError("integer out of int64 range")


def _lp_str(data: bytes) -> bytes:
    n = len(data)
    if n < 64:
        return bytes([0x80 | n]) + data
    if n < 4096:
        return bytes([0xE0 | n >> 8, n & 0xFF]) + data
    return b"\xf0" + n.to_bytes(4, "little") + data


def _backlen(n: int) -> bytes:
    """lpEncodeBacklen: the entry's length, 7 bits a byte, most significant first; read
    backwards from the entry's end, every byte but the last one read has its high bit set."""
    groups = [n & 0x7F]
    n >>= 7
    while n:
        groups.append(n & 0x7F)
        n >>= 7
    return bytes([groups[-1], *(0x80 | g for g in reversed(groups[:-1]))])


def lp_entry(item: bytes | int) -> bytes:
    """One listpack entry: encoding, data, back-length. Strings that are integers become ints."""
    if type(item) is bytes:
        value = as_int(item)
        body = _lp_str(item) if value is None else _lp_int(value)
    else:
        body = _lp_int(item)  # type: ignore[arg-type]
    return body + _backlen(len(body))


def lp_build(entries: list[bytes]) -> bytes:
    """A listpack of already-encoded entries (`lp_entry`)."""
    total = LP_HEADER_BYTES + sum(map(len, entries)) + 1
    count = len(entries) if len(entries) < LP_COUNT_UNKNOWN else LP_COUNT_UNKNOWN
    return (total.to_bytes(4, "little") + count.to_bytes(2, "little") + b"".join(entries)
            + bytes([LP_EOF]))


def lp_encode(items: list[bytes] | list[bytes | int]) -> bytes:
    return lp_build([lp_entry(item) for item in items])


def lp_decode(blob: bytes) -> list[bytes]:
    """Every element of a listpack, after lpValidateIntegrity's header checks."""
    if len(blob) < LP_HEADER_BYTES + 1 or int.from_bytes(blob[:4], "little") != len(blob):
        raise RdbError("listpack size mismatch")
    if blob[-1] != LP_EOF:
        raise RdbError("listpack without its end marker")
    count = int.from_bytes(blob[4:6], "little")
    out: list[bytes] = []
    pos, end = LP_HEADER_BYTES, len(blob) - 1
    try:
        while pos < end:
            start = pos
            b = blob[pos]
            if b < 0x80:
                out.append(b"%d" % b)
                pos += 1
            elif b < 0xC0:
                n = b & 0x3F
                out.append(blob[pos + 1:pos + 1 + n])
                pos += 1 + n
            elif b < 0xE0:
                u = (b & 0x1F) << 8 | blob[pos + 1]
                out.append(b"%d" % (u - (1 << 13) if u >= 1 << 12 else u))
                pos += 2
            elif b < 0xF0:
                n = (b & 0x0F) << 8 | blob[pos + 1]
                out.append(blob[pos + 2:pos + 2 + n])
                pos += 2 + n
            elif b == 0xF0:
                n = int.from_bytes(blob[pos + 1:pos + 5], "little")
                out.append(blob[pos + 5:pos + 5 + n])
                pos += 5 + n
            elif 0xF1 <= b <= 0xF4:
                size = (2, 3, 4, 8)[b - 0xF1]
                out.append(b"%d" % int.from_bytes(blob[pos + 1:pos + 1 + size], "little",
                                                  signed=True))
                pos += 1 + size
            else:
                raise RdbError("bad listpack encoding")
            if pos > end:
                raise RdbError("listpack entry runs past the end")
            backlen = _backlen(pos - start)
            if blob[pos:pos + len(backlen)] != backlen:
                raise RdbError("bad listpack back-length")
            pos += len(backlen)
    except IndexError:
        raise RdbError("truncated listpack") from None
    if pos != end or (count != LP_COUNT_UNKNOWN and count != len(out)):
        raise RdbError("listpack count mismatch")
    return out


# ---- intset -------------------------------------------------------------------------------------
def intset_encode(values: list[int]) -> bytes:
    """An intset: the smallest width that holds every value, values sorted ascending."""
    values = sorted(values)
    width = 2
    if values and not -(1 << 15) <= values[0] <= values[-1] < 1 << 15:
        width = 4 if -(1 << 31) <= values[0] <= values[-1] < 1 << 31 else 8
    return (width.to_bytes(4, "little") + len(values).to_bytes(4, "little")
            + b"".join(v.to_bytes(width, "little", signed=True) for v in values))


def intset_decode(blob: bytes) -> list[bytes]:
    """intsetValidateIntegrity, then the members as decimal text."""
    if len(blob) < 8:
        raise RdbError("intset too short")
    width = int.from_bytes(blob[:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    if width not in (2, 4, 8) or len(blob) != 8 + width * count or not count:
        raise RdbError("bad intset")
    values = [int.from_bytes(blob[i:i + width], "little", signed=True)
              for i in range(8, len(blob), width)]
    if any(a >= b for a, b in pairwise(values)):
        raise RdbError("intset not sorted")
    return [b"%d" % v for v in values]


# ---- ziplist (read only) ------------------------------------------------------------------------
_ZIP_INTS = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}


def ziplist_decode(blob: bytes) -> list[bytes]:
    """Every element of a ziplist (zlbytes, zltail, zllen; prevlen, encoding, data; 0xFF)."""
    if len(blob) < 11 or int.from_bytes(blob[:4], "little") != len(blob) or blob[-1] != 0xFF:
        raise RdbError("bad ziplist header")
    out: list[bytes] = []
    pos, end = 10, len(blob) - 1
    try:
        while pos < end:
            pos += 5 if blob[pos] == ZIP_BIG_PREVLEN else 1
            b = blob[pos]
            kind = b >> 6
            if kind == 0:
                n, pos = b & 0x3F, pos + 1
            elif kind == 1:
                n, pos = (b & 0x3F) << 8 | blob[pos + 1], pos + 2
            elif kind == 2:
                n, pos = int.from_bytes(blob[pos + 1:pos + 5], "big"), pos + 5
            elif b in _ZIP_INTS:
                size = _ZIP_INTS[b]
                out.append(b"%d" % int.from_bytes(blob[pos + 1:pos + 1 + size], "little",
                                                  signed=True))
                pos += 1 + size
                continue
            elif 0xF1 <= b <= 0xFD:
                out.append(b"%d" % ((b & 0x0F) - 1))
                pos += 1
                continue
            else:
                raise RdbError("bad ziplist encoding")
            if pos + n > end:
                raise RdbError("ziplist entry runs past the end")
            out.append(blob[pos:pos + n])
            pos += n
    except IndexError:
        raise RdbError("truncated ziplist") from None
    if pos != end:
        raise RdbError("ziplist entry runs past the end")
    return out


# ---- zipmap (read only) -------------------------------------------------------------------------
def zipmap_decode(blob: bytes) -> list[bytes]:
    """A zipmap's keys and values, alternating (zmlen; len key len free value ...; 0xFF)."""
    out: list[bytes] = []
    pos = 1
    try:
        while blob[pos] != 0xFF:
            for is_value in (False, True):
                n = blob[pos]
                if n == ZIPMAP_BIG_LEN:
                    n = int.from_bytes(blob[pos + 1:pos + 5], "little")
                    pos += 5
                else:
                    pos += 1
                free = 0
                if is_value:
                    free = blob[pos]
                    pos += 1
                if pos + n + free > len(blob):
                    raise RdbError("zipmap entry runs past the end")
                out.append(blob[pos:pos + n])
                pos += n + free
    except IndexError:
        raise RdbError("truncated zipmap") from None
    if pos != len(blob) - 1:
        raise RdbError("zipmap has bytes after its end")
    return out
