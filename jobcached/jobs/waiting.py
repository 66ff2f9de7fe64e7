"""Clients blocked on the job engine: JOB.FETCH ... BLOCK by queue, JOB.WAIT and JOB.LOGS
... BLOCK by job.

A waiter is a plain callback (`deliver`), so the engine needs no event loop: the command layer
turns deliveries into replies. Timeouts ride the engine's timer wheel ("fetch-timeout" and
"wait-timeout" entries, fired by `JobEngine.tick` in `jobs/timers.py`). The engine decides when
a waiter is served (a push, a job's end, new log lines: blocked fetches are served by
`jobs/fetching.py`); this module only keeps the waiters, in arrival order, and the count INFO
reports as blocked clients.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobcached.clock import Clock
from jobcached.jobs.model import Job
from jobcached.jobs.timerwheel import TimerWheel


@dataclass(eq=False, slots=True)
class FetchWaiter:
    """A JOB.FETCH ... BLOCK waiting for work."""

    queues: list[str]
    count: int
    lease_ms: int | None
    worker: str
    deliver: Callable[[list[Job]], None]
    active: bool = True
    timer: Any = None


@dataclass(eq=False, slots=True)
class JobWaiter:
    """A client waiting on one job: JOB.WAIT (for its end), JOB.LOGS ... BLOCK (for new
    lines or its end). `deliver` gets the job, or None on timeout."""

    job_id: str
    deliver: Callable[[Job | None], None]
    active: bool = True
    timer: Any = None


class Waiters:
    """Every blocked job client; see the module docstring."""

    def __init__(self, clock: Clock, timers: TimerWheel[tuple[str, Any]]) -> None:
        self.clock = clock
        self.timers = timers
        #: queue -> fetches waiting for it, oldest first (a fetch of several queues waits
        #: in each; it is served once, and then inactive everywhere)
        self.fetches: dict[str, deque[FetchWaiter]] = {}
        self.ends: dict[str, list[JobWaiter]] = {}  # job id -> JOB.WAITs
        self.logs: dict[str, list[JobWaiter]] = {}  # job id -> JOB.LOGS ... BLOCKs
        #: waiters still active: INFO clients' blocked_clients counts them with BLPOP's
        self.blocked = 0

    def for_jobs(self, queues: list[str], count: int, lease_ms: int | None, worker: str,
                 block_ms: int, deliver: Callable[[list[Job]], None]) -> FetchWaiter:
        """Register a blocked fetch (after a fetch found nothing); `deliver` gets the jobs, or
        [] on timeout (0 = never). Blocked fetches are served first come, first served."""
        waiter = FetchWaiter(queues, count, lease_ms, worker, deliver)
        self.blocked += 1
        for name in queues:
            self.fetches.setdefault(name, deque()).append(waiter)
        if block_ms > 0:
            waiter.timer = self.timers.schedule(self.clock.now_ms() + block_ms,
                                                ("fetch-timeout", waiter))
        return waiter

    def for_end(self, job_id: str, timeout_ms: int,
                deliver: Callable[[Job | None], None]) -> JobWaiter:
        """Call `deliver(job)` when the job finishes, or `deliver(None)` after timeout_ms
        (0 = no timeout). The caller checks first whether it already finished."""
        return self._wait(self.ends, job_id, timeout_ms, deliver)

    def for_logs(self, job_id: str, timeout_ms: int,
                 deliver: Callable[[Job | None], None]) -> JobWaiter:
        """Call `deliver(job)` when the job logs more lines or ends, `deliver(None)` after
        timeout_ms (0 = no timeout)."""
        return self._wait(self.logs, job_id, timeout_ms, deliver)

    def _wait(self, waiters: dict[str, list[JobWaiter]], job_id: str, timeout_ms: int,
              deliver: Callable[[Job | None], None]) -> JobWaiter:
        waiter = JobWaiter(job_id, deliver)
        self.blocked += 1
        waiters.setdefault(job_id, []).append(waiter)
        if timeout_ms > 0:
            waiter.timer = self.timers.schedule(self.clock.now_ms() + timeout_ms,
                                                ("wait-timeout", waiter))
        return waiter

    def cancel(self, waiter: FetchWaiter | JobWaiter) -> None:
        """Forget a blocked fetch or wait (its client went away, or it is being served)."""
        if waiter.active:
            self.blocked -= 1
        waiter.active = False
        if waiter.timer is not None:
            self.timers.cancel(waiter.timer)

    def wake(self, waiters: dict[str, list[JobWaiter]], job: Job) -> None:
        """Deliver `job` to everyone in `waiters` (`ends` or `logs`) waiting on it."""
        for waiter in waiters.pop(job.id, ()):
            if waiter.active:
                self.cancel(waiter)
                waiter.deliver(job)

    def job_ended(self, job: Job) -> None:
        """Wake JOB.WAIT and JOB.LOGS followers of a job that ended; looked up first, since
        most jobs have none and this runs once per job."""
        if job.id in self.ends:
            self.wake(self.ends, job)
        if job.id in self.logs:
            self.wake(self.logs, job)

    def timed_out(self, waiter: FetchWaiter | JobWaiter) -> None:
        """A waiter's timer fired: it gets [] (a fetch) or None (a wait)."""
        if waiter.active:
            self.cancel(waiter)
            if isinstance(waiter, FetchWaiter):
                waiter.deliver([])
            else:
                waiter.deliver(None)
