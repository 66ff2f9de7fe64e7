"""FUNCTION DUMP's payload, byte for byte as Redis 7.0 writes it, so dumps move both ways
between redis-server and jobcached.

The payload is a piece of an RDB file followed by a footer (src/functions.c,
functionDumpCommand):

    for each library:  0xF5 (RDB_OPCODE_FUNCTION2)  <rdb string: the library's code>
    footer:            RDB version, 2 bytes little-endian (10 for Redis 7.0)
                       CRC64 (Jones polynomial, src/crc64.c) of everything before, 8 bytes LE

An RDB string is a length (1, 2, 5 or 9 bytes, see `_length`) and the bytes, or an "encoded"
value: a small integer written in binary, or an LZF-compressed string. Redis compresses any
string over 20 bytes when LZF shrinks it by at least 4 bytes; so do we, with liblzf's
algorithm, so the bytes are the same; we read all three forms.
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
        out += _string(code)
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


def _string(data: bytes) -> bytes:
    """rdbSaveRawString for code (never an integer: it starts with `#!`): LZF-compressed
    when longer than 20 bytes and it saves at least 4, else plain."""
    if len(data) > 20:
        compressed = lzf_compress(data, len(data) - 4)
        if compressed is not None:
            return b"\xc3" + _length(len(compressed)) + _length(len(data)) + compressed
    return _length(len(data)) + data


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


# liblzf's parameters as Redis builds it (lzfP.h): a 2^16-slot hash table, VERY_FAST.
_HLOG = 16
_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)


def lzf_compress(data: bytes, out_len: int) -> bytes | None:
    """liblzf 3.6's lzf_compress, step for step, so our payloads are Redis' bytes: None when
    the result would not fit in `out_len` bytes. Liblzf leaves its hash table uninitialized
    (whatever the stack held); an empty slot here means "no match", which is what Redis' own
    output shows for the payloads checked in the tests."""
    in_len = len(data)
    if not in_len or not out_len:
        return None
    htab: dict[int, int] = {}
    out = bytearray(out_len + 3)
    op, ip, lit = 1, 0, 0  # out[op - lit - 1] is the current literal run's header
    hval = (data[0] << 8 | data[1]) if in_len > 1 else 0
    while ip < in_len - 2:
        hval = (hval << 8 | data[ip + 2]) & 0xFFFFFFFF
        slot = (((hval >> (24 - _HLOG)) - hval * 5) & 0xFFFFFFFF) & ((1 << _HLOG) - 1)
        ref = htab.get(slot, 0)
        htab[slot] = ip
        off = ip - ref - 1
        if (0 <= off < _MAX_OFF and ref > 0 and data[ref + 2] == data[ip + 2]
                and data[ref] == data[ip] and data[ref + 1] == data[ip + 1]):
            length = 2
            maxlen = min(in_len - ip - length, _MAX_REF)
            if op + 3 + 1 >= out_len and op - (not lit) + 3 + 1 >= out_len:
                return None
            out[op - lit - 1] = (lit - 1) & 0xFF  # stop run
            op -= not lit  # undo run if length is zero
            stopped = False
            if maxlen > 16:  # liblzf's 16 unrolled steps, without a bound check: a match
                for _ in range(16):  # may end one byte past maxlen, and must here too
                    length += 1
                    if data[ref + length] != data[ip + length]:
                        stopped = True
                        break
            while not stopped:
                length += 1
                stopped = length >= maxlen or data[ref + length] != data[ip + length]
            length -= 2  # the number of bytes, minus one
            ip += 1
            if length < 7:
                out[op] = (off >> 8) + (length << 5)
                op += 1
            else:
                out[op] = (off >> 8) + (7 << 5)
                out[op + 1] = length - 7
                op += 2
            out[op] = off & 0xFF
            op += 2  # and start a new run
            lit = 0
            ip += length + 1
            if ip >= in_len - 2:
                break
            ip -= 2  # VERY_FAST: hash the two positions before the next one
            hval = data[ip] << 8 | data[ip + 1]
            for _ in range(2):
                hval = (hval << 8 | data[ip + 2]) & 0xFFFFFFFF
                htab[(((hval >> (24 - _HLOG)) - hval * 5) & 0xFFFFFFFF)
                     & ((1 << _HLOG) - 1)] = ip
                ip += 1
        else:
            if op >= out_len:
                return None
            lit += 1
            out[op] = data[ip]
            op += 1
            ip += 1
            if lit == _MAX_LIT:
                out[op - lit - 1] = lit - 1
                lit = 0
                op += 1
    if op + 3 > out_len:
        return None
    while ip < in_len:
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == _MAX_LIT:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    out[op - lit - 1] = (lit - 1) & 0xFF  # end run
    op -= not lit
    return bytes(out[:op])


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
