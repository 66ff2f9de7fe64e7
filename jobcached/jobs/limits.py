"""Per-queue throttling: how many of a queue's jobs may run at once, and how many may be leased
per time window (QUEUE.LIMIT).

Both limits are checked where jobs are handed out (`JobEngine.fetch`), so every way of
fetching — a plain JOB.FETCH, a blocked one served later, several queues at once — obeys them:
a fetch gets fewer jobs, or none, and a blocked fetch keeps waiting.

- **Concurrency** counts the queue's running (leased) jobs, which the queue's index already
  tallies. A slot frees when a running job leaves running (ack, fail, cancel, lease expiry):
  the engine then serves the queue's blocked fetchers at once.
- **Rate** is a sliding window log: the lease times of the last `per_ms`, at most `rate` of
  them. When the window is full, a timer on the engine's wheel fires when its oldest lease
  leaves it and serves the blocked fetchers then. The window itself is not logged: after a
  restart it starts empty (the limits are logged, and replayed, as `limit` records).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class QueueLimit:
    """The limits of one queue; 0 means no such limit."""

    concurrency: int = 0
    rate: int = 0
    per_ms: int = 0
    #: lease times (unix ms) inside the current window, oldest first; at most `rate` of them
    window: deque[int] = field(default_factory=deque)
    #: the pending timer that serves waiters when the window frees, if any
    timer: Any = None

    @property
    def empty(self) -> bool:
        return not self.concurrency and not self.rate

    def allowance(self, running: int, now_ms: int) -> int:
        """How many more jobs may be leased now, given `running` jobs of the queue running
        (a large number when nothing limits it)."""
        room = 1 << 62
        if self.concurrency:
            room = max(0, self.concurrency - running)
        if self.rate:
            window = self.window
            while window and window[0] <= now_ms - self.per_ms:
                window.popleft()
            room = min(room, self.rate - len(window))
        return room

    def leased(self, now_ms: int) -> None:
        """Count one lease made at `now_ms` in the rate window."""
        if self.rate:
            self.window.append(now_ms)

    def window_frees_at(self) -> int | None:
        """When the oldest lease leaves a full rate window (None: the window is not full)."""
        if self.rate and len(self.window) >= self.rate:
            return self.window[0] + self.per_ms
        return None

    def record(self, queue: str) -> dict[str, Any]:
        """The log record that sets these limits on `queue` (all of them at once)."""
        return {"op": "limit", "queue": queue, "concurrency": self.concurrency,
                "rate": self.rate, "per_ms": self.per_ms}

    def reply(self) -> dict[bytes, int]:
        """What QUEUE.LIMIT and QUEUE.STATS show."""
        return {b"concurrency": self.concurrency, b"rate": self.rate, b"rate_per_ms": self.per_ms}
