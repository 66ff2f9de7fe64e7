"""Bitmap commands against redis-server 7.0 (RESP2 and RESP3), and the effects they propagate.

Every command goes to both servers (`pair.check`): replies, errors and the resulting string
bytes (checked with GET) must be identical. Randomised sweeps draw ranges, offsets and field
types from a seeded RNG so the same cases run every time.
"""

from __future__ import annotations

import random

from tests.integration.cache.differential import Pair
from tests.integration.cache.test_strings import Local, command_table_matches

BITMAP_COMMANDS = ["SETBIT", "GETBIT", "BITCOUNT", "BITPOS", "BITOP", "BITFIELD",
                   "BITFIELD_RO"]
VALUE = b"\x00\xff\x0f\xf0\x81\x00\x00\x01foobar\xff\xff"


def run(pair: Pair, *commands: tuple[object, ...]) -> None:
    for cmd in commands:
        pair.check(*cmd)


def test_command_table(pair: Pair) -> None:
    command_table_matches(pair, BITMAP_COMMANDS)


def test_setbit_getbit(pair: Pair) -> None:
    run(pair,
        ("SETBIT", "b", "7", "1"), ("GET", "b"), ("SETBIT", "b", "7", "1"),
        ("SETBIT", "b", "7", "0"), ("SETBIT", "b", "100", "1"), ("GET", "b"), ("STRLEN", "b"),
        ("GETBIT", "b", "100"), ("GETBIT", "b", "101"), ("GETBIT", "b", "100000"),
        ("GETBIT", "missing", "0"), ("SETBIT", "b", "0", "2"), ("SETBIT", "b", "0", "-1"),
        ("SETBIT", "b", "0", "x"), ("SETBIT", "b", "-1", "1"), ("SETBIT", "b", "x", "1"),
        ("SETBIT", "b", "4294967296", "1"), ("SETBIT", "b", "4294967295", "x"),
        ("GETBIT", "b", "4294967296"), ("GETBIT", "b", "-1"), ("GETBIT", "b", "1.5"),
        ("SET", "n", "123"), ("SETBIT", "n", "1", "0"), ("GET", "n"), ("GETBIT", "n", "2"),
        ("LPUSH", "l", "a"), ("SETBIT", "l", "0", "1"), ("GETBIT", "l", "0"),
        ("SETBIT", "l", "-1", "1"), ("GETBIT", "l", "x"),
        ("SET", "e", ""), ("GETBIT", "e", "0"), ("SETBIT", "e", "9", "1"), ("GET", "e"),
        ("SETBIT", "b"), ("GETBIT", "b"), ("SETBIT", "b", "1", "1", "1"))


def test_setbit_keeps_ttl(pair: Pair) -> None:
    run(pair, ("SET", "t", "a", "EX", "1000"), ("SETBIT", "t", "3", "1"), ("TTL", "t"),
        ("GET", "t"))


def test_bitcount(pair: Pair) -> None:
    pair.check("SET", "s", VALUE)
    run(pair,
        ("BITCOUNT", "s"), ("BITCOUNT", "missing"), ("BITCOUNT", "missing", "x", "y"),
        ("BITCOUNT", "s", "0"), ("BITCOUNT", "s", "0", "1", "BIT", "x"),
        ("BITCOUNT", "s", "0", "-1", "bit"), ("BITCOUNT", "s", "0", "-1", "byte"),
        ("BITCOUNT", "s", "0", "-1", "bits"), ("BITCOUNT", "s", "a", "1"),
        ("BITCOUNT", "s", "1", "a"), ("BITCOUNT", "s", "-3", "-5"), ("BITCOUNT", "s", "-5", "-3"),
        ("BITCOUNT", "s", "5", "2"), ("BITCOUNT", "s", "-100", "100"),
        ("BITCOUNT", "s", "9223372036854775807", "-9223372036854775808"),
        ("BITCOUNT", "s", "-9223372036854775808", "9223372036854775807", "BIT"),
        ("SET", "e", ""), ("BITCOUNT", "e"), ("BITCOUNT", "e", "0", "-1"),
        ("BITCOUNT", "e", "0", "-1", "BIT"), ("HSET", "h", "f", "v"), ("BITCOUNT", "h"),
        ("BITCOUNT", "h", "0", "1"), ("SET", "n", "1234"), ("BITCOUNT", "n"))
    rng = random.Random(16)
    n = len(VALUE)
    for _ in range(300):
        unit = rng.choice([[], ["BIT"], ["BYTE"], ["bit"]])
        limit = n * 8 if unit and unit[0].upper() == "BIT" else n
        start, end = rng.randint(-limit - 3, limit + 3), rng.randint(-limit - 3, limit + 3)
        pair.check("BITCOUNT", "s", start, end, *unit)


def test_bitpos(pair: Pair) -> None:
    pair.check("SET", "s", VALUE)
    run(pair,
        ("BITPOS", "s", "1"), ("BITPOS", "s", "0"), ("BITPOS", "missing", "1"),
        ("BITPOS", "missing", "0"), ("BITPOS", "missing", "2"), ("BITPOS", "s", "2"),
        ("BITPOS", "s", "x"), ("BITPOS", "s", "1", "x"), ("BITPOS", "s", "1", "0", "x"),
        ("BITPOS", "s", "1", "0", "1", "xx"), ("BITPOS", "s", "1", "0", "1", "BIT", "x"),
        ("BITPOS", "missing", "1", "x"), ("BITPOS", "missing", "1", "0", "1", "bad"),
        ("SET", "ones", b"\xff\xff\xff"), ("BITPOS", "ones", "0"), ("BITPOS", "ones", "0", "1"),
        ("BITPOS", "ones", "0", "1", "-1"), ("BITPOS", "ones", "0", "0", "-1", "BIT"),
        ("BITPOS", "ones", "0", "3", "BIT"), ("BITPOS", "ones", "1", "5", "2"),
        ("SET", "zeros", b"\x00\x00"), ("BITPOS", "zeros", "1"), ("BITPOS", "zeros", "0", "1"),
        ("BITPOS", "zeros", "1", "0", "-1", "BIT"),
        ("SET", "e", ""), ("BITPOS", "e", "0"), ("BITPOS", "e", "1"), ("BITPOS", "e", "0", "0"),
        ("BITPOS", "e", "0", "0", "-1"), ("HSET", "h", "f", "v"), ("BITPOS", "h", "1"),
        ("BITPOS", "h", "3"), ("SET", "n", "42"), ("BITPOS", "n", "1"))
    rng = random.Random(7)
    for key in ("s", "ones", "zeros"):
        n = {"s": len(VALUE), "ones": 3, "zeros": 2}[key]
        for _ in range(150):
            unit = rng.choice([[], ["BIT"], ["BYTE"]])
            limit = n * 8 if unit == ["BIT"] else n
            start, end = rng.randint(-limit - 2, limit + 2), rng.randint(-limit - 2, limit + 2)
            bit = rng.choice("01")
            pair.check("BITPOS", key, bit, start, end, *unit)
            if not unit:
                pair.check("BITPOS", key, bit, start)


def test_bitop(pair: Pair) -> None:
    run(pair,
        ("SET", "a", b"\x0f\xf0\xaa"), ("SET", "b", b"\xff"), ("SET", "c", b""),
        ("BITOP", "AND", "d", "a", "b"), ("GET", "d"), ("BITOP", "or", "d", "a", "b", "missing"),
        ("GET", "d"), ("BITOP", "XOR", "d", "a", "b", "a"), ("GET", "d"),
        ("BITOP", "NOT", "d", "a"), ("GET", "d"), ("BITOP", "NOT", "d", "a", "b"),
        ("BITOP", "NOT", "d"), ("BITOP", "nand", "d", "a"), ("BITOP", "AND", "d"),
        ("BITOP", "AND", "d", "missing", "c"), ("EXISTS", "d"),
        ("BITOP", "AND", "d", "missing"), ("SET", "t", "x", "EX", "100"),
        ("BITOP", "OR", "t", "a"), ("TTL", "t"), ("GET", "t"),
        ("HSET", "h", "f", "v"), ("BITOP", "AND", "d", "a", "h"), ("BITOP", "AND", "h", "a"),
        ("TYPE", "h"), ("BITOP", "NOT", "d", "h"), ("SET", "n", "12"),
        ("BITOP", "XOR", "d", "n", "a"), ("GET", "d"), ("BITOP", "AND", "a", "a", "b"),
        ("GET", "a"))


def test_bitfield(pair: Pair) -> None:
    run(pair,
        ("BITFIELD", "f", "SET", "i8", "0", "-100"), ("GET", "f"),
        ("BITFIELD", "f", "GET", "i8", "0", "GET", "u8", "0", "GET", "u4", "2", "GET", "i64", "3"),
        ("BITFIELD", "f", "INCRBY", "u2", "100", "1", "OVERFLOW", "SAT", "INCRBY", "u2", "102",
         "1"), ("GET", "f"),
        ("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "i8", "#1", "200", "GET", "i8", "#1"),
        ("BITFIELD", "f", "OVERFLOW", "WRAP", "INCRBY", "i8", "#1", "200", "GET", "i8", "#1"),
        ("BITFIELD", "f", "SET", "u8", "#2", "-1"), ("BITFIELD", "f", "OVERFLOW", "sat", "SET",
                                                      "u8", "#2", "-1", "SET", "i4", "#5", "100"),
        ("BITFIELD", "f", "OVERFLOW", "fail", "SET", "u8", "#2", "-1", "SET", "u8", "#2", "256"),
        ("BITFIELD", "f", "SET", "i64", "0", "-9223372036854775808", "INCRBY", "i64", "0", "-1"),
        ("BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "-1",
         "INCRBY", "i64", "0", "9223372036854775807", "INCRBY", "i64", "0", "9223372036854775807"),
        ("BITFIELD", "f", "SET", "u63", "1", "9223372036854775807", "GET", "u63", "1",
         "GET", "i1", "0", "GET", "u1", "1"), ("GET", "f"),
        ("BITFIELD", "f", "GET", "u64", "0"), ("BITFIELD", "f", "GET", "i65", "0"),
        ("BITFIELD", "f", "GET", "i0", "0"), ("BITFIELD", "f", "GET", "I8", "0"),
        ("BITFIELD", "f", "GET", "x8", "0"), ("BITFIELD", "f", "GET", "i", "0"),
        ("BITFIELD", "f", "GET", "i8", "-1"), ("BITFIELD", "f", "GET", "i8", "#-1"),
        ("BITFIELD", "f", "GET", "i8", "#x"), ("BITFIELD", "f", "GET", "i8", "4294967296"),
        ("BITFIELD", "f", "GET", "i8", "#536870912"), ("BITFIELD", "f", "GET", "u8", "#536870911"),
        ("BITFIELD", "f", "GET", "i8"), ("BITFIELD", "f", "SET", "i8", "0"),
        ("BITFIELD", "f", "INCRBY", "i8", "0", "x"), ("BITFIELD", "f", "OVERFLOW", "nope"),
        ("BITFIELD", "f", "OVERFLOW"), ("BITFIELD", "f", "FOO", "i8", "0"),
        ("BITFIELD", "f", "OVERFLOW", "SAT"), ("BITFIELD", "f"), ("BITFIELD", "missing"),
        ("BITFIELD", "missing", "GET", "u8", "0"), ("EXISTS", "missing"),
        ("BITFIELD", "new", "OVERFLOW", "FAIL", "SET", "u2", "10", "9"), ("GET", "new"),
        ("BITFIELD", "new2", "SET", "u8", "100", "0"), ("GET", "new2"),
        ("BITFIELD_RO", "f", "GET", "u8", "0", "GET", "i16", "#1"),
        ("BITFIELD_RO", "f", "SET", "u8", "0", "1"), ("BITFIELD_RO", "f", "INCRBY", "u8", "0", "1"),
        ("BITFIELD_RO", "f"), ("BITFIELD_RO", "f", "OVERFLOW", "SAT", "GET", "u8", "0"),
        ("BITFIELD_RO", "f", "GET", "u8"),
        ("HSET", "h", "f", "v"), ("BITFIELD", "h", "GET", "u8", "0"),
        ("BITFIELD", "h", "SET", "u8", "0", "1"), ("BITFIELD", "h", "GET", "u8", "x"),
        ("BITFIELD_RO", "h", "GET", "u8", "0"), ("SET", "n", "255"),
        ("BITFIELD", "n", "GET", "u8", "0", "INCRBY", "u8", "0", "1"), ("GET", "n"),
        ("SET", "t", "abc", "PX", "100000"), ("BITFIELD", "t", "SET", "u8", "0", "66"),
        ("GET", "t"), ("EXISTS", "t"))


def test_bitfield_random(pair: Pair) -> None:
    """Random widths, offsets, values and overflow modes over one evolving string."""
    rng = random.Random(1)
    for _ in range(400):
        args: list[object] = ["BITFIELD", "r"]
        for _ in range(rng.randint(1, 4)):
            signed = rng.random() < 0.5
            bits = rng.randint(1, 64 if signed else 63)
            kind = f"{'i' if signed else 'u'}{bits}"
            offset = rng.choice([str(rng.randint(0, 200)), f"#{rng.randint(0, 5)}"])
            op = rng.choice(["GET", "SET", "INCRBY", "OVERFLOW"])
            if op == "OVERFLOW":
                args += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL"])]
            elif op == "GET":
                args += ["GET", kind, offset]
            else:
                value = rng.choice([rng.randint(-(2**63), 2**63 - 1), rng.randint(-300, 300),
                                    2**bits, 2 ** (bits - 1), -(2 ** (bits - 1)) - 1])
                value = max(min(value, 2**63 - 1), -(2**63))
                args += [op, kind, offset, value]
        pair.check(*args)
    pair.check("GET", "r")


def test_effects() -> None:
    local = Local()
    assert local.effects("SETBIT", "b", "3", "1") == [[b"SETBIT", b"b", b"3", b"1"]]
    assert local.effects("SETBIT", "b", "3", "1") == []  # no change, no effect
    assert local.effects("BITFIELD", "b", "GET", "u8", "0") == []
    assert local.effects("BITFIELD", "b", "SET", "u8", "0", "16") == []  # same value
    assert local.effects("BITFIELD", "b", "INCRBY", "u8", "0", "1") == [
        [b"BITFIELD", b"b", b"INCRBY", b"u8", b"0", b"1"]]
    assert local.effects("BITOP", "NOT", "d", "b") == [[b"BITOP", b"NOT", b"d", b"b"]]
    assert local.effects("BITOP", "AND", "d", "missing") == [[b"DEL", b"d"]]
    assert local.effects("BITOP", "AND", "d", "missing") == []
    assert local("GET", "b") == b"\x11"
    local.memory_is_exact()
