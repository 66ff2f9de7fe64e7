"""The primitive encodings of Redis' RDB format, shared by every payload we read or write:
DUMP / RESTORE values (rdbvalue.py, rdbstream.py) and FUNCTION DUMP (scripting/rdbdump.py).

A DUMP-style payload is an RDB fragment followed by a footer (src/cluster.c,
createDumpPayload / verifyDumpPayload):

    fragment   RDB version, 2 bytes little-endian (10 for Redis 7.0)   CRC64 of all before, 8 LE

The CRC is Redis' crc64 (src/crc64.c: Jones polynomial, reflected, no final xor). Inside the
fragment (src/rdb.c):

  - a *length* is 1, 2, 5 or 9 bytes: 00xxxxxx, 01xxxxxx xxxxxxxx, 0x80 + 32-bit big-endian,
    0x81 + 64-bit big-endian; 11xxxxxx is not a length but a string encoding tag;
  - a *string* is a length and its bytes, or an encoded string: a decimal integer that fits
    32 bits written in binary (tags 0, 1, 2: 1, 2 or 4 bytes little-endian), or LZF data
    (tag 3: compressed length, plain length, data). Redis writes an integer whenever the
    string is one (rdbTryIntegerEncoding) and compresses strings over 20 bytes when LZF saves
    at least 4 (rdbSaveLzfStringObject); `save_string` does the same, so the bytes agree
    (up to LZF_MAX_BYTES: longer strings are written plain);
  - doubles are 8 bytes little-endian IEEE (ZSET_2), or, in old payloads (ZSET), a length
    byte and text (253 nan, 254 +inf, 255 -inf);
  - millisecond times are 8 bytes little-endian.

Reading past the end, or any malformed encoding, raises RdbError; each caller reports it in
Redis' words ("Bad data format", "failed loading the given functions payload").
"""

from __future__ import annotations

import math
import struct

from jobcached.cache.lzf import lzf_compress, lzf_decompress

RDB_VERSION = 10
FOOTER_BYTES = 10  # version (2) and CRC64 (8)
ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF = 0, 1, 2, 3
LZF_MIN_BYTES = 21  # rdbSaveRawString: only strings longer than 20 bytes are compressed
#: Redis compresses strings of any size; our compressor is pure Python (~3 s per incompressible
#: MB, on the event loop), so longer strings are written plain: valid, just not Redis' bytes
LZF_MAX_BYTES = 32 * 1024
INT_ENCODABLE_MAX_BYTES = 11  # "-2147483648": longer strings cannot be 32-bit integers

_POLY = 0x95AC9329AC4BC9B5  # Jones' polynomial 0xad93d23594c935a9, bit-reflected
_DOUBLE = struct.Struct("<d")


class RdbError(Exception):
    """The bytes are not a valid RDB fragment (truncated, bad tag, bad inner structure)."""


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis' crc64 (reflected Jones, no final xor): crc64(b"123456789") == 0xe9c6d914c4b8d9ca."""
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def seal(fragment: bytes | bytearray) -> bytes:
    """A payload: the fragment, the RDB version and the CRC64 of both."""
    out = bytearray(fragment)
    out += RDB_VERSION.to_bytes(2, "little")
    out += crc64(bytes(out)).to_bytes(8, "little")
    return bytes(out)


def open_payload(payload: bytes) -> bytes | None:
    """The fragment of a payload, or None when verifyDumpPayload refuses it: too short, from
    a newer RDB version, or a checksum that does not match."""
    if len(payload) < FOOTER_BYTES:
        return None
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION or crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        return None
    return payload[:-FOOTER_BYTES]


# ---- writing ------------------------------------------------------------------------------------
def save_len(n: int) -> bytes:
    """rdbSaveLen: 6 bits, 14 bits, 32 bits or 64 bits, big-endian after the tag."""
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | n >> 8, n & 0xFF])
    if n < 1 << 32:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _int_encoding(data: bytes) -> bytes | None:
    """rdbTryIntegerEncoding: the binary form of a canonical decimal that fits 32 bits."""
    if not data or len(data) > INT_ENCODABLE_MAX_BYTES:
        return None
    try:
        value = int(data)
    except ValueError:
        return None
    if str(value).encode() != data:  # "+1", "01", " 1", "1_0" are strings to Redis
        return None
    if -(1 << 7) <= value < 1 << 7:
        return bytes([0xC0 | ENC_INT8]) + value.to_bytes(1, "little", signed=True)
    if -(1 << 15) <= value < 1 << 15:
        return bytes([0xC0 | ENC_INT16]) + value.to_bytes(2, "little", signed=True)
    if -(1 << 31) <= value < 1 << 31:
        return bytes([0xC0 | ENC_INT32]) + value.to_bytes(4, "little", signed=True)
    return None


def save_string(data: bytes, compress_max: int = LZF_MAX_BYTES) -> bytes:
    """rdbSaveRawString: an integer when it is one, LZF when that pays, else plain.

    `compress_max` bounds what is compressed (see LZF_MAX_BYTES); FUNCTION DUMP lifts it,
    since library code is text an administrator loaded and Redis' bytes are worth matching."""
    if len(data) <= INT_ENCODABLE_MAX_BYTES:
        encoded = _int_encoding(data)
        if encoded is not None:
            return encoded
    if LZF_MIN_BYTES <= len(data) <= compress_max:
        compressed = lzf_compress(data, len(data) - 4)
        if compressed is not None:
            return (bytes([0xC0 | ENC_LZF]) + save_len(len(compressed)) + save_len(len(data))
                    + compressed)
    return save_len(len(data)) + data


def save_double(value: float) -> bytes:
    """rdbSaveBinaryDoubleValue."""
    return _DOUBLE.pack(value)


def save_ms(ms: int) -> bytes:
    """rdbSaveMillisecondTime."""
    return ms.to_bytes(8, "little", signed=True)


def d2string(value: float) -> bytes:
    """Redis 7.0's d2string: how a sorted-set listpack stores a score (as text, which the
    listpack then stores as an integer when it is one)."""
    if math.isnan(value):
        return b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    if -4503599627370495 < value < 4503599627370496 and value == int(value):
        return b"%d" % int(value)
    return b"%.17g" % value


# ---- reading ------------------------------------------------------------------------------------
class Reader:
    """A cursor over an RDB fragment; every malformed read raises RdbError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise RdbError("unexpected end of payload")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise RdbError("unexpected end of payload")
        self.pos += 1
        return self.data[self.pos - 1]

    def length_or_tag(self) -> tuple[int, bool]:
        """(length, is it an encoding tag rather than a length): rdbLoadLenByRef."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return (first & 0x3F) << 8 | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise RdbError("unknown length encoding")

    def length(self) -> int:
        n, tag = self.length_or_tag()
        if tag:
            raise RdbError("an encoded string where a length belongs")
        return n

    def string(self) -> bytes:
        """rdbGenericLoadStringObject: plain, integer or LZF."""
        n, encoded = self.length_or_tag()
        if not encoded:
            return self.take(n)
        if n in (ENC_INT8, ENC_INT16, ENC_INT32):
            return b"%d" % int.from_bytes(self.take(1 << n), "little", signed=True)
        if n == ENC_LZF:
            compressed_len = self.length()
            plain_len = self.length()
            if not plain_len:
                raise RdbError("empty LZF string")
            try:
                return lzf_decompress(self.take(compressed_len), plain_len)
            except ValueError as exc:
                raise RdbError(str(exc)) from None
        raise RdbError("unknown string encoding")

    def binary_double(self) -> float:
        value: float = _DOUBLE.unpack(self.take(8))[0]
        return value

    def text_double(self) -> float:
        """rdbLoadDoubleValue (the RDB_TYPE_ZSET format)."""
        n = self.byte()
        if n == 253:
            return math.nan
        if n == 254:
            return math.inf
        if n == 255:
            return -math.inf
        try:
            return float(self.take(n).decode("ascii"))
        except ValueError:
            raise RdbError("bad double") from None

    def ms(self) -> int:
        return int.from_bytes(self.take(8), "little", signed=True)
