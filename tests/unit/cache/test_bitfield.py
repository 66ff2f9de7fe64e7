"""The bit arithmetic of cache/bitfield.py against brute-force models (a list of bits)."""

from __future__ import annotations

import random

from jobcached.cache import bitfield


def bits_of(value: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in value for i in range(8)]


def test_count_and_find_match_a_bit_list() -> None:
    rng = random.Random(11)
    for _ in range(300):
        value = bytes(rng.choice([0, 0xFF, rng.randrange(256)]) for _ in range(rng.randint(1, 40)))
        bits = bits_of(value)
        first = rng.randrange(len(bits))
        last = rng.randrange(first, len(bits))
        assert bitfield.count_bits(value, first, last) == sum(bits[first : last + 1])
        for bit in (0, 1):
            window = bits[first : last + 1]
            expected = first + window.index(bit) if bit in window else -1
            assert bitfield.find_bit(value, bit, first, last) == expected


def test_bit_range_normalises_like_redis() -> None:
    assert bitfield.bit_range(10, 0, -1, in_bits=False) == (0, 79)
    assert bitfield.bit_range(10, -3, -1, in_bits=False) == (56, 79)
    assert bitfield.bit_range(10, 5, 2, in_bits=False) is None
    assert bitfield.bit_range(10, -100, 100, in_bits=True) == (0, 79)
    assert bitfield.bit_range(10, 3, 12, in_bits=True) == (3, 12)
    assert bitfield.bit_range(0, 0, -1, in_bits=False) is None


def test_fields_read_and_write_any_width_and_offset() -> None:
    rng = random.Random(12)
    for _ in range(500):
        buf = bytearray(rng.randbytes(12))
        signed = rng.random() < 0.5
        width = rng.randint(1, 64 if signed else 63)
        offset = rng.randint(0, 96 - width)
        field = rng.randrange(1 << width)
        bitfield.set_field(buf, offset, width, field)
        bits = bits_of(bytes(buf))
        unsigned = int("".join(map(str, bits[offset : offset + width])), 2)
        assert unsigned == field
        expected = unsigned - (1 << width) if signed and unsigned >> (width - 1) else unsigned
        assert bitfield.get_field(buf, offset, width, signed) == expected


def test_fields_past_the_end_read_zeros() -> None:
    assert bitfield.get_field(b"\xff", 4, 8, signed=False) == 0xF0
    assert bitfield.get_field(b"\xff", 8, 8, signed=False) == 0
    assert bitfield.get_field(b"", 100, 64, signed=True) == 0


def test_overflow_modes() -> None:
    wrap, sat, fail = bitfield.WRAP, bitfield.SAT, bitfield.FAIL
    assert bitfield.overflow(100, 100, 8, True, wrap) == (-56, True)
    assert bitfield.overflow(100, 100, 8, True, sat) == (127, True)
    assert bitfield.overflow(-100, -100, 8, True, sat) == (-128, True)
    assert bitfield.overflow(100, 27, 8, True, fail) == (127, False)
    assert bitfield.overflow(250, 10, 8, False, wrap) == (4, True)
    assert bitfield.overflow(5, -10, 8, False, sat) == (0, True)
    # an unsigned SET of a negative value is read as a 64-bit unsigned number, as in C
    assert bitfield.overflow(-1, 0, 8, False, sat) == (255, True)
    assert bitfield.overflow(-1, 0, 8, False, wrap) == (255, True)
    assert bitfield.overflow(2**63 - 1, 1, 64, True, wrap) == (-(2**63), True)
