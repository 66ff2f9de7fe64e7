"""FUNCTION DUMP payloads: Redis' bytes, checksum and LZF strings, without a server.

The payloads below were produced by redis-server 7.0.15 (FUNCTION DUMP); the integration
tests check the same round trips against a live redis-server.
"""

from __future__ import annotations

import pytest

from jobcached.cache.lzf import lzf_compress, lzf_decompress
from jobcached.cache.rdbformat import crc64
from jobcached.scripting.rdbdump import PayloadError, dump, load

ONE = b"#!lua name=x\nredis.register_function('a', function() return 1 end)"
#: redis-server's dump of the library ONE (66 bytes: a 2-byte length, no compression)
REDIS_ONE = (b"\xf5@B" + ONE + b"\n\x00}\xa4S\x10\xe9^\xc9\xa9")
#: redis-server's dump of three libraries, the first LZF-compressed
REDIS_THREE = (
    b"\xf5\xc3@D@h\x1f#!lua name=x\nredis.register_func\ntion('fa', \xe0\x00\x0e\x06) end) "
    b"\xe0\x10-\x01FA\xe0\a-\x01d)\xf59#!LUA name=X\nredis.register_function('b', function() "
    b"end)\xf59#!lua name=y\nredis.register_function('A', function() end)\n\x00\xf1\xb9\x1fE>"
    b"\x00\xb9\xdb")


def test_crc64_is_redis_jones_crc() -> None:
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA  # src/crc64.c's test vector
    assert crc64(b"") == 0


def test_dump_is_byte_identical_to_redis() -> None:
    assert dump([ONE]) == REDIS_ONE
    assert dump(load(REDIS_THREE)) == REDIS_THREE  # LZF-compressed as liblzf does it


def test_lzf_gives_up_when_it_does_not_save_four_bytes() -> None:
    assert lzf_compress(b"abcdefghijklmnopqrstuvwxyz", 22) is None
    compressed = lzf_compress(b"a" * 100, 96)
    assert compressed is not None and len(compressed) < 10
    assert lzf_decompress(compressed, 100) == b"a" * 100


def test_load_reads_redis_payloads_with_lzf_strings() -> None:
    assert load(REDIS_ONE) == [ONE]
    assert load(REDIS_THREE) == [
        b"#!lua name=x\nredis.register_function('fa', function() end) "
        b"redis.register_function('FA', function() end)",
        b"#!LUA name=X\nredis.register_function('b', function() end)",
        b"#!lua name=y\nredis.register_function('A', function() end)",
    ]


@pytest.mark.parametrize("size", [0, 63, 64, 16383, 16384, 70000])
def test_round_trip_across_length_encodings(size: int) -> None:
    code = b"#!lua name=x\n" + b"-" * size
    assert load(dump([code, b"#!lua name=y\n"])) == [code, b"#!lua name=y\n"]


def test_empty_dump_is_only_the_footer() -> None:
    assert len(dump([])) == 10
    assert load(dump([])) == []


@pytest.mark.parametrize("payload", [
    b"", b"short", REDIS_ONE[:-1] + b"\x00", REDIS_ONE[:-10] + b"\x0b\x00" + REDIS_ONE[-8:]])
def test_bad_checksum_length_or_version_is_refused(payload: bytes) -> None:
    with pytest.raises(PayloadError, match=r"^DUMP payload version or checksum are wrong$"):
        load(payload)


def _sealed(body: bytes) -> bytes:
    """A payload with a valid footer around an arbitrary body."""
    head = body + b"\n\x00"
    return head + crc64(head).to_bytes(8, "little")


def test_records_other_than_functions_are_refused() -> None:
    with pytest.raises(PayloadError, match=r"^given type is not a function$"):
        load(_sealed(b"\x00\x01a"))
    with pytest.raises(PayloadError, match=r"^Pre-GA function format not supported$"):
        load(_sealed(b"\xf6\x01a"))
    with pytest.raises(PayloadError, match=r"^failed loading the given functions payload$"):
        load(_sealed(b"\xf5\x05ab"))  # truncated string


def test_integer_encoded_strings_read_as_their_decimal_text() -> None:
    assert load(_sealed(b"\xf5\xc0\x7b")) == [b"123"]
    assert load(_sealed(b"\xf5\xc1\x00\x80")) == [b"-32768"]


def test_lzf_back_references_may_overlap() -> None:
    # literal "ab", then a back reference of length 6 at distance 2: "abababab"
    assert lzf_decompress(b"\x01ab\x80\x01", 8) == b"abababab"
    with pytest.raises(ValueError):
        lzf_decompress(b"\x01ab\x80\x05", 8)  # reference before the start
    with pytest.raises(ValueError):
        lzf_decompress(b"\x01ab", 3)  # wrong size
