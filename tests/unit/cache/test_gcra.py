"""The GCRA engine against redis-cell's own test sequence and README example, on a fake clock."""

from __future__ import annotations

import pytest

from jobcached.cache.gcra import (
    NS_PER_MS,
    NS_PER_S,
    ThrottleError,
    ceil_seconds,
    emission_interval_ns,
    throttle,
)
from jobcached.clock import ManualClock

# redis-cell's `it_rate_limits` case table: limit 5 (max_burst 4), 1 token per second.
# (offset ms, quantity, remaining, reset_after ms, retry_after ms, limited)
REDIS_CELL_CASES = [
    (0, 6, 5, 0, -1000, True),  # never more than the maximum at once
    (0, 1, 4, 1000, -1000, False),
    (0, 1, 3, 2000, -1000, False),
    (0, 1, 2, 3000, -1000, False),
    (0, 1, 1, 4000, -1000, False),
    (0, 1, 0, 5000, -1000, False),
    (0, 1, 0, 5000, 1000, True),
    (3000, 1, 2, 3000, -1000, False),
    (3100, 1, 1, 3900, -1000, False),
    (4000, 1, 1, 4000, -1000, False),
    (8000, 1, 4, 1000, -1000, False),
    (9500, 1, 4, 1000, -1000, False),
    (9500, 0, 4, 1000, -1000, False),  # quantity 0 only peeks
    (9500, 2, 2, 3000, -1000, False),
    (9500, 5, 2, 3000, 3000, True),  # a large request cannot exceed the limit
]


def test_redis_cell_sequence_with_a_fake_clock() -> None:
    clock = ManualClock()
    start = clock.now_ms()
    tat: int | None = None
    for n, (offset, quantity, remaining, reset_ms, retry_ms, limited) in enumerate(
            REDIS_CELL_CASES):
        clock.advance(start + offset - clock.now_ms())
        result = throttle(tat, clock.now_ms() * NS_PER_MS, 4, 1, 1, quantity)
        got = (result.limited, result.limit, result.remaining, result.reset_after_ns,
               result.retry_after_ns)
        assert got == (limited, 5, remaining, reset_ms * NS_PER_MS, retry_ms * NS_PER_MS), n
        if result.new_tat_ns is not None:
            tat = result.new_tat_ns
            assert result.ttl_ms == result.reset_after_ns // NS_PER_MS
        else:
            assert limited


def test_readme_example_reply() -> None:
    """`CL.THROTTLE user123 15 30 60` on a fresh key replies 0 16 15 -1 2."""
    now = 1_700_000_000 * NS_PER_S
    result = throttle(None, now, 15, 30, 60, 1)
    assert result.reply() == [0, 16, 15, -1, 2]
    assert result.new_tat_ns == now + 2 * NS_PER_S


def test_reply_rounds_partial_seconds_up() -> None:
    now = 10 * NS_PER_S
    first = throttle(None, now, 0, 1, 3, 1)  # one token per 3 s, no burst
    assert first.reply() == [0, 1, 0, -1, 3]
    second = throttle(first.new_tat_ns, now + 1500 * NS_PER_MS, 0, 1, 3, 1)
    assert second.reply() == [1, 1, 0, 2, 2]  # 1.5 s left rounds up to 2
    assert second.new_tat_ns is None
    assert ceil_seconds(1_000_999_999) == 1  # a sub-millisecond part does not round up
    assert ceil_seconds(1_001_000_000) == 2
    assert ceil_seconds(-NS_PER_S) == -1


def test_emission_interval_truncates_like_redis_cell() -> None:
    assert emission_interval_ns(3, 1) == 333_333_333
    assert emission_interval_ns(0, 5) == 0
    assert emission_interval_ns(5, 0) == 0


@pytest.mark.parametrize(("args", "message"), [
    ((10, 0, 60, 1), "Zero rates are not supported"),
    ((10, 5, 0, 1), "Zero rates are not supported"),
    ((-1, 5, 60, 1), "max_burst must not be negative"),
    ((1, 5, 60, -1), "quantity must not be negative"),
])
def test_refused_parameters(args: tuple[int, int, int, int], message: str) -> None:
    with pytest.raises(ThrottleError, match=message):
        throttle(None, NS_PER_S, *args)


def test_peek_on_a_missing_key_stores_nothing_lasting() -> None:
    result = throttle(None, NS_PER_S, 4, 1, 1, 0)
    assert result.reply() == [0, 5, 5, -1, 0]
    assert result.ttl_ms == 0
