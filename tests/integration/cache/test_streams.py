"""Stream commands without groups against redis-server: XADD (ids, NOMKSTREAM, trims), XRANGE,
XREVRANGE, XLEN, XDEL, XTRIM, XSETID, XREAD (without blocking), with Redis' error texts.

Ids are explicit everywhere a reply would show them: `*` depends on each server's clock, so it
is checked for shape, not value.
"""

from __future__ import annotations

import itertools

from tests.integration.cache.differential import Pair

BAD_IDS = ["abc", "1-", "-1", "1-x", "18446744073709551616", "1-2-3", "", " 1", "+1", "01",
           "-01", "1-*", "-", "+", "99999999999999999999-1"]


def fill(pair: Pair, key: str, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        pair.check("XADD", key, f"{i}-{i % 3}", "f", str(i), "g", "v" * (i % 5))


def test_xadd_ids_and_errors(pair: Pair) -> None:
    pair.check("XADD", "s", "5-5", "a", "1")
    for id_ in ["5-5", "5-4", "4-9", "5", "0-0", "0", "5-*", "6-*", "6-*", "6", "7-0", "7-*"]:
        pair.check("XADD", "s", id_, "a", "1")
    for id_ in BAD_IDS:
        pair.check("XADD", "s2", id_, "a", "1")
    pair.check("XADD", "s", "18446744073709551615-18446744073709551614", "a", "1")
    pair.check("XADD", "s", "18446744073709551615-*", "a", "1")
    pair.check("XADD", "s", "18446744073709551615-*", "a", "1")
    pair.check("XADD", "s", "*", "a", "1")
    pair.check("XLEN", "s")
    pair.check("XRANGE", "s", "-", "+")
    pair.check("XADD", "n", "NOMKSTREAM", "1-1", "a", "b")
    pair.check("EXISTS", "n")
    pair.check("XADD", "n", "1-1", "a")
    pair.check("XADD", "n", "1-1", "a", "b", "c")
    pair.check("XADD", "n", "NOMKSTREAM")
    pair.check("XADD", "n", "nomkstream", "NOMKSTREAM", "1-1", "a", "b")
    pair.check("SET", "str", "x")
    pair.check("XADD", "str", "1-1", "a", "b")
    pair.check("XADD", "str", "bad", "a", "b")
    pair.check("XLEN", "str")
    pair.check("XRANGE", "str", "-", "+")
    pair.check("TYPE", "s")
    pair.check("OBJECT", "ENCODING", "s")


def test_xadd_auto_id_shape(pair: Pair) -> None:
    ours, _ = pair.both("XADD", "s", "*", "a", "1")
    assert isinstance(ours, bytes) and ours.split(b"-")[1] == b"0", ours
    ours, _ = pair.both("XADD", "s", "*", "a", "1")
    assert int(ours.split(b"-")[0]) > 0


def test_xadd_trim_options(pair: Pair) -> None:
    opts = [["MAXLEN", "3"], ["MAXLEN", "=", "3"], ["MAXLEN", "~", "3"], ["maxlen", "~", "0"],
            ["MINID", "5"], ["MINID", "~", "5"], ["MINID", "=", "250"], ["MAXLEN", "-1"],
            ["MAXLEN", "x"], ["MAXLEN", "~", "3", "LIMIT", "2"], ["MAXLEN", "3", "LIMIT", "2"],
            ["LIMIT", "2"], ["LIMIT", "0"], ["MAXLEN", "~", "3", "LIMIT", "-1"],
            ["MAXLEN", "1", "MINID", "1"], ["MINID", "bad"],
            ["MAXLEN", "~", "150", "LIMIT", "100"],
            ["MAXLEN", "~", "50", "LIMIT", "0"], ["MINID", "~", "201", "LIMIT", "150"]]
    for opt in opts:
        pair.check("DEL", "s")
        fill(pair, "s", 260)
        pair.check("XADD", "s", *opt, "1000-1", "x", "y")
        pair.check("XLEN", "s")
        pair.check("XRANGE", "s", "-", "+", "COUNT", "3")


def test_xrange_bounds(pair: Pair) -> None:
    fill(pair, "s", 12)
    top = "18446744073709551615-18446744073709551615"
    bounds = ["-", "+", "3", "3-1", "(3-0", "(3-1", "(3", "(-", "(+", "0", "(0-0", "bad", top,
              "(" + top, "(bad", "((3"]
    for lo, hi in itertools.product(bounds, repeat=2):
        pair.check("XRANGE", "s", lo, hi)
        pair.check("XREVRANGE", "s", hi, lo)
    for count in ["0", "1", "5", "-3", "x", "100"]:
        pair.check("XRANGE", "s", "-", "+", "COUNT", count)
        pair.check("XREVRANGE", "s", "+", "-", "COUNT", count)
    pair.check("XRANGE", "s", "-", "+", "COUNT")
    pair.check("XRANGE", "s", "-", "+", "LIMIT", "1")
    pair.check("XRANGE", "nokey", "-", "+")
    pair.check("XRANGE", "nokey", "-", "+", "COUNT", "0")
    pair.check("XRANGE", "nokey", "bad", "+")


def test_xdel_and_xtrim(pair: Pair) -> None:
    fill(pair, "s", 30)
    pair.check("XDEL", "s", "3-0", "4-1", "99-0", "3-0")
    pair.check("XDEL", "s", "5-2", "bad")
    pair.check("XDEL", "nokey", "bad")
    pair.check("XLEN", "s")
    for opt in [["MAXLEN", "25"], ["MINID", "10"], ["MINID", "(10"], ["MAXLEN", "~", "1"],
                ["MAXLEN"], ["FOO", "1"], ["MAXLEN", "1", "junk"], ["LIMIT", "1"],
                ["MAXLEN", "=", "0"], ["MINID", "0"]]:
        pair.check("XTRIM", "s", *opt)
        pair.check("XRANGE", "s", "-", "+")
    pair.check("XTRIM", "nokey", "MAXLEN", "1")
    pair.check("EXISTS", "s")
    pair.check("XLEN", "s")
    pair.check("DEL", "s")
    fill(pair, "s", 450)
    for opt in [["MAXLEN", "~", "390"], ["MAXLEN", "~", "10", "LIMIT", "150"],
                ["MINID", "~", "330"], ["MINID", "~", "333", "LIMIT", "10"], ["MAXLEN", "~", "0"]]:
        pair.check("XTRIM", "s", *opt)
        pair.check("XRANGE", "s", "-", "+", "COUNT", "2")
    pair.check("XDEL", "s", *[f"{i}-{i % 3}" for i in range(1, 451)])
    pair.check("XLEN", "s")


def test_xsetid(pair: Pair) -> None:
    pair.check("XSETID", "nokey", "1-1")
    fill(pair, "s", 5)
    for args in [["3-0"], ["5-2"], ["10-0"], ["10-0", "ENTRIESADDED", "3"],
                 ["10-0", "ENTRIESADDED", "-1"], ["10-0", "ENTRIESADDED", "7"],
                 ["11-0", "MAXDELETEDID", "12-0"], ["11-0", "MAXDELETEDID", "4-0"],
                 ["9-0"], ["bad"], ["12", "FOO"], ["12", "ENTRIESADDED"]]:
        pair.check("XSETID", "s", *args)
    pair.check("XADD", "s", "11-0", "a", "b")
    pair.check("XADD", "s", "11-1", "a", "b")
    pair.check("XDEL", "s", "11-1")
    pair.check("XSETID", "s", "11-0")
    pair.check("SET", "str", "x")
    pair.check("XSETID", "str", "1-1")


def test_xread_non_blocking(pair: Pair) -> None:
    fill(pair, "a", 5)
    fill(pair, "b", 3, start=10)
    pair.check("XREAD", "STREAMS", "a", "b", "0", "0")
    pair.check("XREAD", "COUNT", "2", "STREAMS", "a", "b", "2", "10-1")
    pair.check("XREAD", "STREAMS", "a", "b", "$", "$")
    pair.check("XREAD", "STREAMS", "a", "nokey", "3", "0")
    pair.check("XREAD", "STREAMS", "a", "+")
    pair.check("XREAD", "STREAMS", "a", ">")
    pair.check("XREAD", "STREAMS", "a")
    pair.check("XREAD", "STREAMS", "a", "b", "0")
    pair.check("XREAD", "COUNT", "x", "STREAMS", "a", "0")
    pair.check("XREAD", "COUNT", "-1", "STREAMS", "a", "0")
    pair.check("XREAD", "BLOCK", "-1", "STREAMS", "a", "0")
    pair.check("XREAD", "BLOCK", "x", "STREAMS", "a", "0")
    pair.check("XREAD", "GROUP", "g", "c", "STREAMS", "a", "0")
    pair.check("XREAD", "NOACK", "STREAMS", "a", "0")
    pair.check("XREAD", "FOO", "STREAMS", "a", "0")
    pair.check("XREAD", "COUNT", "1", "a", "0")
    pair.check("XREAD", "STREAMS", "a", "bad")
    pair.check("SET", "str", "x")
    pair.check("XREAD", "STREAMS", "a", "str", "0", "0")
    pair.check("MULTI")
    pair.check("XREAD", "BLOCK", "0", "STREAMS", "a", "$")
    pair.check("EXEC")
