"""When Python's cyclic garbage collector may pause the server.

A full (generation 2) collection scans every object the collector tracks, and holds the event
loop meanwhile: 270 ms with 100,000 delayed jobs held, growing with the heap. CPython starts
one whenever the objects that survived grew by a quarter, that is, exactly while a burst of
jobs or keys arrives, so the pauses land in the latency tail of the busiest moments.

Here full collections leave the allocation path. The young generations still collect as
usual (they hold only recent objects: cheap, and most garbage dies there). A full collection
runs from the server cron instead: when no command arrived for a second (at most once a
minute, and only if anything reached the old generation since the last one), or in any case
once `gc-full-interval` seconds have passed, which bounds how long cyclic garbage can wait.
`INFO stats` shows how many ran and the last one's pause.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

IDLE_AFTER_S = 1.0
"""No command for this long: the server is idle, and a pause costs nobody anything."""
IDLE_MIN_INTERVAL_S = 60.0
"""Idle full collections at most this often: a big heap costs CPU to scan even when idle."""
_NEVER = 2**31 - 1
"""A generation-2 threshold that the young collections never reach."""


class FullCollections:
    """Runs generation-2 collections at moments of the server's choosing (see the module)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.collections = 0
        self.last_pause_ms = 0.0
        self._clock = clock
        self._last = self._quiet_since = clock()
        self._commands = 0

    def install(self) -> None:
        """Take full collections off the allocation path (the young generations keep theirs)."""
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, _NEVER)

    def step(self, commands_processed: int) -> None:
        """Call often (the server cron): collect now if the time has come."""
        now = self._clock()
        if commands_processed != self._commands:
            self._commands, self._quiet_since = commands_processed, now
        since = now - self._last
        idle = now - self._quiet_since >= IDLE_AFTER_S
        if since >= self.interval_s or (idle and since >= IDLE_MIN_INTERVAL_S
                                        and gc.get_count()[2]):
            self.collect()

    def collect(self) -> None:
        started = time.perf_counter()
        gc.collect()
        self.last_pause_ms = (time.perf_counter() - started) * 1000
        self.collections += 1
        self._last = self._clock()
