"""FUNCTION DUMP's payload, byte for byte as Redis 7.0 writes it, so dumps move both ways
between redis-server and jobcached.

The payload is a piece of an RDB file followed by a footer (src/functions.c,
functionDumpCommand):

    for each library:  0xF5 (RDB_OPCODE_FUNCTION2)  <rdb string: the library's code>
    footer:            RDB version, 2 bytes little-endian (10 for Redis 7.0)
                       CRC64 (Jones polynomial, src/crc64.c) of everything before, 8 bytes LE

An RDB string is a length (1, 2, 5 or 9 bytes, see `_length`) and the bytes, or an "encoded"
value: a small integer written in binary, or an LZF-compressed string. Redis compresses any
string over 20 bytes when LZF shrinks it by at least 4 bytes; we write plain strings (valid
RDB that Redis reads) and read all three forms, so a dump of redis-server restores here.
RESTORE refuses a payload from a newer RDB version or with a wrong checksum, as Redis does.
"""

from __future__ import annotations

RDB_VERSION = 10
OPCODE_FUNCTION_PRE_GA = 246  # 7.0 release candidates' format: Redis refuses it too
OPCODE_FUNCTION2 = 245

_POLY = 0x95AC9329AC4BC9B5  # Jones' polynomial 0xad93d23594c935a9, bit-reflected


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


class PayloadError(Exception):
    """A payload that is not a valid function dump: the message is Redis' reply text."""


def dump(codes: list[bytes]) -> bytes:
    """The FUNCTION DUMP payload of libraries with these codes."""
    out = bytearray()
    for code in codes:
        out.append(OPCODE_FUNCTION2)
        out += _length(len(code))
        out += code
    out += RDB_VERSION.to_bytes(2, "little")
    out += crc64(bytes(out)).to_bytes(8, "little")
    return bytes(out)


def load(payload: bytes) -> list[bytes]:
    """The library codes of a FUNCTION DUMP payload, after Redis' checks (verifyDumpPayload,
    then rdbFunctionLoad for each record)."""
    if len(payload) < 10:
        raise PayloadError("DUMP payload version or checksum are wrong")
    body, footer = payload[:-10], payload[-10:]
    version = int.from_bytes(footer[:2], "little")
    if version > RDB_VERSION or crc64(payload[:-8]) != int.from_bytes(footer[2:], "little"):
        raise PayloadError("DUMP payload version or checksum are wrong")
    reader = _Reader(body)
    codes = []
    while not reader.done():
        opcode = reader.byte()
        if opcode == OPCODE_FUNCTION_PRE_GA:
            raise PayloadError("Pre-GA function format not supported")
        if opcode != OPCODE_FUNCTION2:
            raise PayloadError("given type is not a function")
        codes.append(reader.string())
    return codes


def _length(n: int) -> bytes:
    """rdbSaveLen: 6 bits, 14 bits, 32 bits or 64 bits, big-endian after the tag."""
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | n >> 8, n & 0xFF])
    if n < 1 << 32:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


class _Reader:
    """A cursor over an RDB fragment; running past the end is a load error, as in Redis."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PayloadError("failed loading the given functions payload")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> tuple[int, bool]:
        """(length, is it an encoding tag rather than a length)."""
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
        raise PayloadError("failed loading the given functions payload")

    def string(self) -> bytes:
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n in (0, 1, 2):  # RDB_ENC_INT8/16/32: the decimal text of a little-endian int
            return str(int.from_bytes(self.take(1 << n), "little", signed=True)).encode()
        if n == 3:  # RDB_ENC_LZF
            compressed_len, _ = self.length()
            plain_len, _ = self.length()
            return lzf_decompress(self.take(compressed_len), plain_len)
        raise PayloadError("failed loading the given functions payload")


def lzf_decompress(data: bytes, size: int) -> bytes:
    """liblzf's lzf_decompress: literal runs (ctrl < 32: ctrl+1 bytes) and back references
    (length ctrl>>5, +next byte when 7; offset from the low 5 bits and the next byte)."""
    out = bytearray()
    i, end = 0, len(data)
    try:
        while i < end:
            ctrl = data[i]
            i += 1
            if ctrl < 32:
                out += data[i:i + ctrl + 1]
                if i + ctrl + 1 > end:
                    raise IndexError
                i += ctrl + 1
                continue
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            if ref < 0:
                raise IndexError
            for _ in range(length + 2):  # may overlap what it copies: byte by byte
                out.append(out[ref])
                ref += 1
    except IndexError:
        raise PayloadError("failed loading the given functions payload") from None
    if len(out) != size:
        raise PayloadError("failed loading the given functions payload")
    return bytes(out)
