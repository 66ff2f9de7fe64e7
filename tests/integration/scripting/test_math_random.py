"""math.random and math.randomseed give redis-server's numbers (rand48, Redis' conversions).

Both servers share their generator across scripts (Redis 7.0 does not reseed per script), so
each check seeds first; the sequence then continues from one script to the next on both.
"""

from __future__ import annotations

import pytest

from tests.integration.cache.differential import Pair

DRAWS = ("return {math.random(), math.random(100), math.random(5, 10), "
         "tostring(math.random()), math.random(-3, 3), math.random(2^40 + 5)}")


@pytest.mark.parametrize("seed", ["0", "7", "-7", "2147483647", "-2147483648", "4294967301",
                                  " 0x10 ", "1e3", "12.9"])
def test_seeded_sequences_match(pair: Pair, seed: str) -> None:
    pair.check("EVAL", "math.randomseed(ARGV[1]) " + DRAWS, 0, seed)
    pair.check("EVAL", DRAWS, 0)  # no reseed between scripts: the sequence goes on
    pair.check("EVAL", "local t = {} for i = 1, 50 do t[i] = math.random(1000000) end "
               "return t", 0)


@pytest.mark.parametrize("body", [
    "return math.random(0)", "return math.random('x')", "return math.random(1, 2, 3)",
    "return math.random(5, 1)", "return math.random(nil)", "return math.random({})",
    "return math.random(true)", "return math.random(2^40)", "return math.randomseed()",
    "math.randomseed('x')", "return math.random(-2147483648, 2147483647)",
    "return {pcall(math.random, 1, 2)}",
])
def test_arguments_and_errors_match(pair: Pair, body: str) -> None:
    pair.check("EVAL", "math.randomseed(1)", 0)
    pair.check("EVAL", body, 0)


def test_functions_share_the_generator(pair: Pair) -> None:
    code = ("#!lua name=rnd\nredis.register_function('rnd', function(keys, args) "
            "math.randomseed(tonumber(args[1])) "
            "return {math.random(100), math.random(100)} end)")
    pair.check("FUNCTION", "LOAD", "REPLACE", code)
    pair.check("FCALL", "rnd", 0, "42")
    pair.check("EVAL", DRAWS, 0)
