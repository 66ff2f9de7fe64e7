"""FUNCTION DUMP's payload, byte for byte as Redis 7.0 writes it, so dumps move both ways
between redis-server and jobcached.

The payload is a piece of an RDB file followed by a footer (src/functions.c,
functionDumpCommand):

    for each library:  0xF5 (RDB_OPCODE_FUNCTION2)  <rdb string: the library's code>
    footer:            RDB version, 2 bytes little-endian (10 for Redis 7.0)
                       CRC64 (Jones polynomial, src/crc64.c) of everything before, 8 bytes LE

The RDB primitives (lengths, strings with their integer and LZF forms, CRC64, the footer) are
in cache/rdbformat.py, shared with DUMP / RESTORE of keys.
RESTORE refuses a payload from a newer RDB version or with a wrong checksum, as Redis does.
"""

from __future__ import annotations

from jobcached.cache.rdbformat import RdbError, Reader, open_payload, save_string, seal

OPCODE_FUNCTION_PRE_GA = 246  # 7.0 release candidates' format: Redis refuses it too
OPCODE_FUNCTION2 = 245
_LOAD_FAILED = "failed loading the given functions payload"


class PayloadError(Exception):
    """A payload that is not a valid function dump: the message is Redis' reply text."""


def dump(codes: list[bytes]) -> bytes:
    """The FUNCTION DUMP payload of libraries with these codes."""
    out = bytearray()
    for code in codes:
        out.append(OPCODE_FUNCTION2)
        out += save_string(code, compress_max=len(code))
    return seal(out)


def load(payload: bytes) -> list[bytes]:
    """The library codes of a FUNCTION DUMP payload, after Redis' checks (verifyDumpPayload,
    then rdbFunctionLoad for each record)."""
    body = open_payload(payload)
    if body is None:
        raise PayloadError("DUMP payload version or checksum are wrong")
    reader = Reader(body)
    codes = []
    try:
        while not reader.done():
            opcode = reader.byte()
            if opcode == OPCODE_FUNCTION_PRE_GA:
                raise PayloadError("Pre-GA function format not supported")
            if opcode != OPCODE_FUNCTION2:
                raise PayloadError("given type is not a function")
            codes.append(reader.string())
    except RdbError:
        raise PayloadError(_LOAD_FAILED) from None
    return codes
