"""GCRA rate limiting, as redis-cell's `CL.THROTTLE` computes it.

The generic cell rate algorithm keeps one number per limited key: the TAT, the theoretical
arrival time at which the key would be back to a full bucket if requests had arrived exactly at
the allowed rate. A request of `quantity` tokens moves the TAT forward by `quantity` emission
intervals (period / count); it is refused when the moved TAT would lie further ahead of `now`
than the delay variation tolerance (the burst: emission interval * (max_burst + 1)). No
background drip is needed: the state is a timestamp, and it can expire when the TAT passes.

This module is the pure engine: a function of (stored TAT, now, parameters) with no store and
no clock of its own, so tests drive it with any `now` they like. It reproduces redis-cell's
arithmetic step by step, in integer nanoseconds, including where redis-cell goes through
floating point (the emission interval and `remaining` are truncated float divisions) and its
rounding of the two durations it replies in seconds (whole seconds, plus one when a
millisecond part remains).
"""

from __future__ import annotations

from dataclasses import dataclass

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_US = 1_000
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


class ThrottleError(ValueError):
    """A parameter redis-cell refuses (replied as `-Cell error: <message>`)."""


@dataclass(frozen=True, slots=True)
class Throttled:
    """The outcome of one `CL.THROTTLE` call."""

    limited: bool
    limit: int
    remaining: int
    #: nanoseconds; -1 s when allowed or when the request can never fit
    retry_after_ns: int
    reset_after_ns: int
    #: the TAT to store (unix ns) when the request was allowed, else None (nothing changes)
    new_tat_ns: int | None
    #: how long the stored TAT lives, in ms (redis-cell's key TTL); <= 0 means no key at all
    ttl_ms: int

    def reply(self) -> list[int]:
        """redis-cell's five integers: limited, limit, remaining, retry_after s, reset_after s."""
        return [int(self.limited), self.limit, self.remaining, ceil_seconds(self.retry_after_ns),
                ceil_seconds(self.reset_after_ns)]


def _trunc_div(a: int, b: int) -> int:
    """Integer division rounding toward zero (Rust's, not Python's floor)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def ceil_seconds(ns: int) -> int:
    """redis-cell's reply rounding: whole seconds, plus one when a millisecond part remains
    (so a fast caller never retries too early); sub-millisecond parts are ignored."""
    seconds = _trunc_div(ns, NS_PER_S)
    if _trunc_div(ns - seconds * NS_PER_S, NS_PER_MS) > 0:
        seconds += 1
    return seconds


def _float_div_to_i64(a: int, b: int) -> int:
    """`(a as f64 / b as f64) as i64` in Rust: truncation, saturating at the i64 bounds, NaN
    (0 / 0, an emission interval under a microsecond) giving 0."""
    if b == 0:
        return 0 if a == 0 else (INT64_MAX if a > 0 else INT64_MIN)
    return max(INT64_MIN, min(INT64_MAX, int(a / b)))


def emission_interval_ns(count: int, period_s: int) -> int:
    """Time between two tokens at the sustained rate (redis-cell's Rate::per_period): a float
    division truncated to whole nanoseconds; 0 when count or period is 0."""
    period_ns = period_s * NS_PER_S
    if count == 0 or period_ns == 0:
        return 0
    return int(float(period_ns) / float(count))


def throttle(tat_ns: int | None, now_ns: int, max_burst: int, count: int, period_s: int,
             quantity: int) -> Throttled:
    """Apply `quantity` tokens against a key whose stored TAT is `tat_ns` (None: no key).

    A quantity of 0 only peeks. Raises ThrottleError for a zero rate and negative arguments.
    """
    for name, value in (("max_burst", max_burst), ("count", count), ("period", period_s),
                        ("quantity", quantity)):
        if value < 0:
            raise ThrottleError(f"{name} must not be negative")
    emission = emission_interval_ns(count, period_s)
    if emission == 0:
        raise ThrottleError("Zero rates are not supported")
    tolerance = emission * (max_burst + 1)
    increment = emission * quantity
    tat = now_ns if tat_ns is None else tat_ns
    new_tat = (now_ns if now_ns > tat else tat) + increment
    diff = now_ns - (new_tat - tolerance)
    retry_after = -NS_PER_S
    if diff < 0:  # the next permitted time is in the future: blocked
        if increment <= tolerance:
            retry_after = -diff
        limited, ttl, stored = True, tat - now_ns, None
    else:
        limited, ttl, stored = False, new_tat - now_ns, new_tat
    remaining = 0
    spare = tolerance - ttl
    if spare > -emission:
        remaining = _float_div_to_i64(_trunc_div(spare, NS_PER_US), _trunc_div(emission, NS_PER_US))
    return Throttled(limited, max_burst + 1, remaining, retry_after, ttl, stored,
                     _trunc_div(ttl, NS_PER_MS))
