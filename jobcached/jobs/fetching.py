"""Handing out work: leases made by JOB.FETCH, QUEUE.LIMIT slots, and blocked fetchers served.

`fetch` takes ready jobs from the queues in the order given, as many as asked and as each
queue's limits allow (`jobs/limits.py`): a concurrency slot per running job, a rate window of
recent leases. A fetch that found nothing may block: `jobs/waiting.py` keeps the blocked
fetchers, and this part of the engine serves them, oldest first, whenever a queue may have
work again: a job pushed, made due or run again, a queue resumed or its limits loosened, a
concurrency slot freed (JobState's `on_slot_freed`) or a rate window moved on (a "limit" timer,
armed here when a window is full). Serving a waiter is a fetch for it, so it obeys the same
limits; one that still gets nothing keeps waiting.

A job whose EXPIRE passed before its timer fired is canceled on the way out, never leased.
"""

from __future__ import annotations

import logging

from jobcached.jobs.dependencies import Dependencies
from jobcached.jobs.jobstate import RUNNING, job_fields
from jobcached.jobs.limits import QueueLimit
from jobcached.jobs.model import Job
from jobcached.jobs.ready import observe_ms

log = logging.getLogger("jobcached.jobs")


class Fetching(Dependencies):
    """The engine's part that leases jobs and serves blocked fetchers; see the module
    docstring."""

    def fetch(self, queues: list[str], count: int = 1, lease_ms: int | None = None,
              worker: str = "") -> list[Job]:
        """Lease up to `count` ready jobs, taking the queues strictly in the order given.

        The clock is read once: the leases of one fetch are made at the same instant."""
        jobs: list[Job] = []
        now = self.clock.now_ms()
        for name in queues:
            queue = self.queues.get(name)
            if queue is None or queue.paused:
                continue
            limit = queue.limit
            wanted = count
            if limit is not None:
                wanted = len(jobs) + min(count - len(jobs),
                                         limit.allowance(queue.tally[RUNNING], now))
            while len(jobs) < wanted:
                job = queue.pop()
                if job is None:
                    break
                if job.expire_ms and job.expire_ms <= now:
                    self._cancel(job, "expired")  # its EXPIRE timer has not fired yet
                    continue
                self._lease(job, lease_ms, worker, now)
                jobs.append(job)
                if limit is not None:
                    limit.leased(now)
            if limit is not None and limit.timer is None:
                frees_at = limit.window_frees_at()
                if frees_at is not None:  # serve blocked fetchers when the window moves on
                    limit.timer = self.timers.schedule(frees_at, ("limit", name))
            if len(jobs) >= count:
                break
        return jobs

    def _lease(self, job: Job, lease_ms: int | None, worker: str, now: int) -> None:
        waited_ms = now - job.enqueued_ms
        self._commit_job(job, {"op": "lease", "id": job.id, "now": now, "worker": worker,
                               "token": f"{self.rng.getrandbits(64):016x}",
                               "deadline": now + (lease_ms or job.timeout_ms)})
        queue = self.queues[job.queue]
        queue.fetched += 1
        observe_ms(queue.wait_ms, waited_ms)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job leased", extra=job_fields(job, worker=worker, waited_ms=waited_ms))

    def _serve_waiters(self, queue_name: str) -> None:
        waiters = self.waiters.fetches.get(queue_name)
        while waiters:
            waiter = waiters[0]
            if not waiter.active:
                waiters.popleft()
                continue
            jobs = self.fetch([queue_name], waiter.count, waiter.lease_ms, waiter.worker)
            if not jobs:
                return
            waiters.popleft()
            self.waiters.cancel(waiter)
            waiter.deliver(jobs)
        if waiters is not None and not waiters:
            del self.waiters.fetches[queue_name]

    def _window_moved(self, queue_name: str) -> None:
        """A queue's "limit" timer fired: its rate window has room again."""
        queue = self.queues.get(queue_name)
        if queue is not None and queue.limit is not None:
            queue.limit.timer = None
            self._serve_waiters(queue_name)

    def set_limit(self, queue: str, concurrency: int | None = None,
                  rate: tuple[int, int] | None = None) -> QueueLimit | None:
        """Change a queue's QUEUE.LIMIT: `concurrency` (0: none) and `rate` as (jobs, per ms)
        ((0, 0): none); None leaves that limit as it is. Returns the limits now in force.
        Blocked fetchers are served at once, in case the limits loosened. A queue not known
        yet is made only by a record that changes it (as for `set_paused`): the state holds
        nothing its log cannot rebuild."""
        known = self.queues.get(queue)
        current = (known.limit if known is not None else None) or QueueLimit()
        new = QueueLimit(current.concurrency if concurrency is None else concurrency,
                         *(rate if rate is not None else (current.rate, current.per_ms)))
        if (new.concurrency, new.rate, new.per_ms) != (
                current.concurrency, current.rate, current.per_ms):
            self._commit(new.record(queue))
        self._serve_waiters(queue)
        known = self.queues.get(queue)
        return known.limit if known is not None else None
