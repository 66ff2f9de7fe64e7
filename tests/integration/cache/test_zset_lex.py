"""Every lex range command against redis-server, on sets where lex order is easy to get wrong.

The sets hold the empty member, members that are prefixes of each other (`a`, `ab`, `abc`) and,
in some, different scores: Redis leaves lex ranges over mixed scores "unspecified", but for a
small set (listpack encoding) its answer is deterministic: walk from the head (tail for REV)
to the first member past the start bound, then take members while they are within the other
bound. The bounds include `[` and `(` on the empty string and `-`/`+` at both ends.
"""

from __future__ import annotations

import itertools

import pytest

from tests.integration.cache.differential import Pair

BOUNDS = ["-", "+", "[", "(", "[a", "(a", "[ab", "(ab", "[abc", "(abc", "[b", "[v", "(v"]
LIMITS = [("0", "1"), ("1", "2"), ("2", "-1"), ("-1", "1"), ("0", "0")]

SETS = {
    # The case from the issue: Redis answers ["", "v"] to ZRANGEBYLEX z - [v.
    "issue": ["0", "", "1", "v"],
    "same-score": ["0", "", "0", "a", "0", "ab", "0", "abc", "0", "b", "0", "v"],
    "mixed-prefixes": ["0", "abc", "1", "", "2", "ab", "3", "a", "4", "v", "5", "b"],
    "only-empty": ["7", ""],
}


def fill(pair: Pair, key: str, members: list[str]) -> None:
    pair.check("DEL", key)
    pair.check("ZADD", key, *members)


@pytest.mark.parametrize("name", sorted(SETS))
def test_lex_reads_match_redis(pair: Pair, name: str) -> None:
    fill(pair, "z", SETS[name])
    for lo, hi in itertools.product(BOUNDS, repeat=2):
        pair.check("ZRANGEBYLEX", "z", lo, hi)
        pair.check("ZREVRANGEBYLEX", "z", hi, lo)
        pair.check("ZLEXCOUNT", "z", lo, hi)
        pair.check("ZRANGE", "z", lo, hi, "BYLEX")
        pair.check("ZRANGE", "z", hi, lo, "BYLEX", "REV")
    for (lo, hi), limit in itertools.product(
            [("-", "+"), ("-", "[v"), ("[", "(v"), ("(", "+"), ("[a", "[b")], LIMITS):
        pair.check("ZRANGEBYLEX", "z", lo, hi, "LIMIT", *limit)
        pair.check("ZREVRANGEBYLEX", "z", hi, lo, "LIMIT", *limit)
        pair.check("ZRANGE", "z", lo, hi, "BYLEX", "LIMIT", *limit)
        pair.check("ZRANGE", "z", hi, lo, "BYLEX", "REV", "LIMIT", *limit)


@pytest.mark.parametrize("name", sorted(SETS))
def test_lex_removals_match_redis(pair: Pair, name: str) -> None:
    for lo, hi in itertools.product(BOUNDS, repeat=2):
        fill(pair, "z", SETS[name])
        pair.check("ZREMRANGEBYLEX", "z", lo, hi)
        pair.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
