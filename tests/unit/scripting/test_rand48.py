"""Redis' rand48 and its math.random: the first draws of a fresh server, seeds, int casts."""

from __future__ import annotations

import pytest

from jobcached.scripting.libs import LuaCallError
from jobcached.scripting.rand48 import Rand48


def fresh() -> Rand48:
    return Rand48(lambda value: None)


def test_a_fresh_generator_draws_what_a_fresh_redis_server_does() -> None:
    # redis-server 7.0.15, first script after start:
    # EVAL "return {math.random(), math.random(100), math.random(5,10)}" 0 -> 0, 85, 7
    rand = fresh()
    first = rand.random()
    assert first == pytest.approx(0.3964647736383904, abs=1e-15)
    assert (rand.random(100), rand.random(5, 10)) == (85, 7)


def test_seeding_restarts_the_sequence() -> None:
    rand = fresh()
    rand.randomseed(7)  # redis-server: math.randomseed(7) then random(), (100), (5,10), (1.5)
    assert int(rand.random()) == 0
    assert (rand.random(100), rand.random(5, 10), rand.random(1.5)) == (69, 6, 1)
    again = fresh()
    again.randomseed(7)
    assert again.random() == pytest.approx(0.2664441965829787, abs=1e-15)


@pytest.mark.parametrize("bound, expected", [(2.0**40, "interval is empty"), (b"abc", "got")])
def test_bounds_are_checked_as_luaL_checkint(bound: object, expected: str) -> None:
    with pytest.raises(LuaCallError, match=expected):
        fresh().random(bound)


def test_numeric_strings_and_wrapped_ints_are_bounds() -> None:
    rand, twin = fresh(), fresh()
    assert rand.random(b" 0x10 ") == twin.random(16)
    assert rand.random(2.0**40 + 5) == twin.random(5)  # (int)(long long): the low 32 bits
