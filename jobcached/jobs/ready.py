"""Per-queue ready lists: highest priority first, FIFO within a priority.

Each priority level is a deque; the levels present are kept sorted. Removing a job that was
canceled or purged while queued is lazy: its entry stays in the deque and is skipped when it
reaches the front, because the job's `ready_seq` no longer matches or it is no longer queued.
So push, pop and cancel are all O(1) amortized (plus a bisect when a new level appears).

The queue also carries the per-queue counters behind QUEUE.STATS and the metrics. The activity
counters (`pushed` ... `lease_expired`, and the two duration histograms) describe what this
process did since it started: the engine bumps them in its public methods, never in `_apply`,
so replaying the log at start does not count history a second time (Prometheus reads a restart
as a counter reset, as for any process).
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

from jobcached.jobs.model import Job, State

#: Slots of a duration histogram: a duration of v ms is counted in slot v.bit_length() (so
#: v < 2**slot ms), which makes recording one integer op; 64 slots hold any int64. The slot
#: after them holds the sum of the durations in ms.
HISTOGRAM_SLOTS = 64
#: A module name for the state `pop` tests: `State.QUEUED` costs an EnumType.__getattr__ round
#: trip on Python 3.11, on every job fetched.
QUEUED = State.QUEUED


def new_histogram() -> list[int]:
    return [0] * (HISTOGRAM_SLOTS + 1)


def observe_ms(histogram: list[int], duration_ms: int) -> None:
    if duration_ms < 0:  # a clock stepped back must not index from the end
        duration_ms = 0
    histogram[duration_ms.bit_length()] += 1
    histogram[-1] += duration_ms


@dataclass(slots=True)
class ReadyQueue:
    """The queued jobs of one queue, plus what QUEUE.STATS reports about it."""

    name: str
    paused: bool = False
    processed: int = 0  # acked
    failed: int = 0  # failed attempts, lease expiries included
    counts: dict[State, int] = field(default_factory=lambda: dict.fromkeys(State, 0))
    # activity since this process started (see the module docstring)
    pushed: int = 0
    fetched: int = 0  # leases handed out
    succeeded: int = 0
    failed_attempts: int = 0  # JOB.FAIL and lease expiries
    retried: int = 0  # failed attempts that will run again (moved to retrying)
    dead: int = 0  # failed attempts with no retry left
    canceled: int = 0
    requeued: int = 0  # JOB.RETRY and DLQ.REQUEUE
    lease_expired: int = 0
    wait_ms: list[int] = field(default_factory=new_histogram)  # queued -> leased
    run_ms: list[int] = field(default_factory=new_histogram)  # leased -> acked
    _levels: dict[int, deque[tuple[int, Job]]] = field(default_factory=dict)
    _order: list[int] = field(default_factory=list)  # negated priorities, ascending
    _seq: int = 0  # numbers the entries, so an entry left behind by a re-filed job is stale

    def push(self, job: Job) -> None:
        self._seq += 1
        job.ready_seq = seq = self._seq
        level = self._levels.get(job.priority)
        if level is None:
            level = self._levels[job.priority] = deque()
            bisect.insort(self._order, -job.priority)
        level.append((seq, job))

    def pop(self) -> Job | None:
        """The next job to run, or None; stale entries are dropped on the way."""
        while self._order:
            priority = -self._order[0]
            level = self._levels[priority]
            while level:
                seq, job = level.popleft()
                if job.state is QUEUED and job.ready_seq == seq:
                    return job
            del self._levels[priority]
            self._order.pop(0)
        return None

    def oldest(self) -> Job | None:
        """The queued job that has waited longest (for queue lag), without removing it."""
        best: Job | None = None
        for level in self._levels.values():
            for seq, job in level:
                if job.state is QUEUED and job.ready_seq == seq:
                    if best is None or job.enqueued_ms < best.enqueued_ms:
                        best = job
                    break
        return best
