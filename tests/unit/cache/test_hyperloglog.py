"""The HyperLogLog representation and estimator, without a server.

Expected values were read from redis-server 7.0: the register and run length PFADD of one
element sets in an empty HyperLogLog (so they pin MurmurHash64A and hllPatLen), and
PFCOUNT after known insertions.
"""

from __future__ import annotations

import random

import pytest

from jobcached.cache import hyperloglog as hll

# element -> (register, run length) as redis-server 7.0 stores them
PATTERNS = {
    b"": (5938, 2), b"a": (12711, 2), b"hello": (9216, 1), b"12345678": (10579, 3),
    b"123456789": (9293, 2), b"x" * 31: (10810, 1), bytes(range(256)): (12361, 1),
}


def build(elements: list[bytes]) -> bytearray:
    buf = bytearray(hll.EMPTY_SPARSE)
    for element in elements:
        hll.add(buf, element)
    return buf


@pytest.mark.parametrize("element", list(PATTERNS))
def test_pattern_matches_redis(element: bytes) -> None:
    assert hll.pattern(element) == PATTERNS[element]


def test_murmurhash64a_every_tail_length() -> None:
    """Inputs of 0..16 bytes exercise every tail case and one or two 8-byte blocks."""
    assert hll.murmurhash64a(b"a") == 0x53D2470A9B43B1A7
    assert hll.murmurhash64a(b"12345678") == 0x95EBB86389132953
    assert hll.murmurhash64a(b"123456789") == 0x217532CB09F2A44D
    assert len({hll.murmurhash64a(bytes(range(n))) for n in range(17)}) == 17


def test_estimates_match_redis() -> None:
    buf = build([b"el%d" % i for i in range(1000)])
    assert buf[4] == hll.SPARSE
    assert hll.count(bytes(buf)) == 1005
    assert bytes(buf[16:40]) == bytes.fromhex("048c0d80404b80018017841e80188c048003800f8809840c")
    buf = build([b"el%d" % i for i in range(100000)])
    assert buf[4] == hll.DENSE and len(buf) == hll.DENSE_BYTES
    assert hll.count(bytes(buf)) == 99142


def test_empty_and_header() -> None:
    empty = hll.EMPTY_SPARSE
    assert hll.is_valid(empty) and hll.count(empty) == 0 and hll.cached_count(empty) == 0
    buf = build([b"a"])
    assert hll.cached_count(bytes(buf)) is None  # a write marks the cache stale
    cached = hll.with_cached_count(bytes(buf), 1)
    assert hll.cached_count(cached) == 1
    assert not hll.is_valid(b"HYLL")
    assert not hll.is_valid(b"HYLX" + bytes(12))
    assert not hll.is_valid(b"HYLL\x02" + bytes(11))
    assert not hll.is_valid(b"HYLL\x00" + bytes(11))  # dense must be exactly DENSE_BYTES


def test_dense_lanes_round_trip() -> None:
    rng = random.Random(1)
    raw = bytes(rng.randint(0, 63) for _ in range(hll.REGISTERS))
    buf = bytearray(hll.DENSE_BYTES)
    for index, value in enumerate(raw):
        hll.dense_set(buf, index, value)
    assert hll.raw_to_dense(raw) == bytes(buf[hll.HEADER_BYTES:])
    assert hll.dense_to_raw(bytes(buf[hll.HEADER_BYTES:])) == raw


def test_raw_max() -> None:
    rng = random.Random(2)
    a = bytes(rng.randint(0, 63) for _ in range(hll.REGISTERS))
    b = bytes(rng.randint(0, 63) for _ in range(hll.REGISTERS))
    assert hll.raw_max(a, b) == bytes(max(x, y) for x, y in zip(a, b, strict=True))


def test_sparse_splits_and_merges() -> None:
    buf = bytearray(hll.EMPTY_SPARSE)
    assert hll.sparse_set(buf, 100, 3, hll.SPARSE_MAX_BYTES) == 1
    # XZERO(100 via ZERO: 64 max -> XZERO), VAL(3,1), XZERO(rest)
    assert bytes(buf[16:]) == bytes((0x40, 99, 0x88, 0x7F, 0xFF - 101))
    assert hll.sparse_set(buf, 100, 2, hll.SPARSE_MAX_BYTES) == 0  # not higher
    assert hll.sparse_set(buf, 101, 3, hll.SPARSE_MAX_BYTES) == 1
    assert bytes(buf[16:19]) == bytes((0x40, 99, 0x89))  # merged into VAL(3, 2)
    assert hll.sparse_set(buf, 101, 40, hll.SPARSE_MAX_BYTES) == 1  # > 32: promoted
    assert buf[4] == hll.DENSE
    assert hll.registers(bytes(buf))[99:103] == bytes((0, 3, 40, 0))


def test_promotion_at_the_size_limit() -> None:
    buf = bytearray(hll.EMPTY_SPARSE)
    for index in range(0, 2000, 2):
        hll.sparse_set(buf, index, 1, 40)
        assert len(buf) <= 40 or buf[4] == hll.DENSE
    assert buf[4] == hll.DENSE


def test_merge_resume_gives_the_same_bytes() -> None:
    """PFMERGE's resumable scan must produce what a scan from the start produces."""
    rng = random.Random(4)
    raw = bytearray(hll.REGISTERS)
    for _ in range(700):
        raw[rng.randrange(hll.REGISTERS)] = rng.randint(1, 6)
    fast = bytearray(hll.EMPTY_SPARSE)
    hll.merge_into(fast, bytes(raw), use_dense=False)
    slow = bytearray(hll.EMPTY_SPARSE)
    for index, value in enumerate(raw):
        if value:
            hll.sparse_set(slow, index, value, hll.SPARSE_MAX_BYTES)
    hll.invalidate(slow)
    assert fast == slow
    assert hll.registers(bytes(fast)) == bytes(raw)


def test_corrupt_sparse_values() -> None:
    short = b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xfe"  # covers 16383 registers
    with pytest.raises(hll.InvalidHll):
        hll.count(short)
    with pytest.raises(hll.InvalidHll):
        hll.registers(short)
    with pytest.raises(hll.InvalidHll):
        hll.sparse_set(bytearray(short), 16383, 1, hll.SPARSE_MAX_BYTES)  # past the runs
    too_long = b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xff\x80"
    with pytest.raises(hll.InvalidHll):
        hll.count(too_long)
