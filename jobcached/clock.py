"""Time as an injected dependency.

Engines never read the system clock themselves: they are handed a `Clock`, so tests drive
them with `ManualClock` in milliseconds instead of sleeping (faktory's lesson: pass time in).
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What engines may ask about time."""

    def now_ms(self) -> int:
        """Wall-clock time in unix milliseconds (what TTLs and run-at times are stored in)."""
        ...

    def monotonic_ms(self) -> int:
        """A clock that never steps backwards, for measuring durations and idle time."""
        ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when a test says so."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = now_ms
        self._monotonic_ms = 0

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic_ms(self) -> int:
        return self._monotonic_ms

    def advance(self, ms: int) -> None:
        """Move both clocks forward by `ms`."""
        if ms < 0:
            raise ValueError("a ManualClock only moves forward; use step() for wall-clock jumps")
        self._now_ms += ms
        self._monotonic_ms += ms

    def step(self, ms: int) -> None:
        """Jump the wall clock alone (as NTP may), forwards or backwards."""
        self._now_ms += ms
