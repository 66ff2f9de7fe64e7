"""Time-driven work: delays ending, leases expiring, retries with backoff, EXPIREs passing.

Everything the engine must do at a time rather than on a call sits in one hierarchical timer
wheel (`jobs/timerwheel.py`), as `(kind, target)` entries the apply path and the other parts
schedule: "due" (a delay or backoff ends), "lease" (a lease's deadline), "expire" (a job's
EXPIRE), "cron", "limit" (a rate window moves on), "fetch-timeout" and "wait-timeout" (a
blocked client gives up). `tick(now_ms)` fires what is due; the server calls it when
`next_wakeup` says, and tests with a manual clock call it directly. A fired entry is checked
against the job first, since the job may have moved on in the meantime without its timer
being cancelled (a stale entry does nothing).

A failed attempt lives here too: a worker's JOB.FAIL and a lease that expired both go through
`_fail`, which decides, with the job's retry policy and the engine's random generator, whether
the job retries (and when: its backoff) or goes dead, and writes that decision into the record.
"""

from __future__ import annotations

import logging
from typing import Any

from jobcached.jobs.fetching import Fetching
from jobcached.jobs.jobstate import PENDING, RETRYING, RUNNING, WAITING, job_fields
from jobcached.jobs.model import Job, clip_text

log = logging.getLogger("jobcached.jobs")


class Timers(Fetching):
    """The engine's part that the clock drives; see the module docstring."""

    def tick(self, now_ms: int | None = None) -> None:
        """Fire everything due by now: delays and backoffs end, leases expire, waits time out."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        for kind, target in self.timers.advance(now):
            if kind == "due":
                job: Job = target
                if job.state in (PENDING, RETRYING) and job.id in self.jobs:
                    job.timer = None
                    self._due(job, now)
            elif kind == "expire":
                job = target
                job.expire_timer = None
                if job.state in WAITING and job.id in self.jobs:
                    self._cancel(job, "expired")
            elif kind == "cron":
                self.crons.fire(target, now)
            elif kind == "lease":
                job = target
                if job.state is RUNNING and job.id in self.jobs:
                    job.timer = None
                    self._fail(job, "LeaseExpired",
                               f"lease expired at {job.deadline_ms} without ack or heartbeat",
                               "", None, False, expired=True)
            elif kind == "limit":
                self._window_moved(target)
            elif kind == "fetch-timeout" or kind == "wait-timeout":
                self.waiters.timed_out(target)

    def next_wakeup(self) -> int | None:
        """When `tick` has work next, at the latest (see TimerWheel.next_wakeup)."""
        return self.timers.next_wakeup()

    def _due(self, job: Job, now: int) -> None:
        """A delay or backoff ended: queue the job, unless it still waits for a parent (the
        parent's end releases it), or a parent failed meanwhile (recovery after a crash
        between a parent's end and its children's update), or its EXPIRE passed."""
        if job.expire_ms and job.expire_ms <= now:
            self._cancel(job, "expired")
            return
        if job.parents and job.state is PENDING:
            failed, waiting = self._parents_status(job.parents, {})
            if failed is not None:
                self._cancel(job, failed)
                return
            if waiting:
                return
        self._commit_job(job, {"op": "due", "id": job.id, "now": now})
        self._serve_waiters(job.queue)

    def _fail(self, job: Job, errtype: str, message: str, trace: str,
              retry_in_ms: int | None, noretry: bool, *, expired: bool = False) -> None:
        """A running job's attempt failed (JOB.FAIL, or its lease `expired`): retry it after
        `retry_in_ms` or its backoff, unless `noretry` or its retries are spent (then dead)."""
        now = self.clock.now_ms()
        retry_at = None
        if not noretry and job.retries_done < job.retry.retries:
            delay = retry_in_ms if retry_in_ms is not None else job.retry.delay_ms(
                job.retries_done, self.rng)
            retry_at = now + delay
        error: dict[str, Any] = {"type": errtype, "message": clip_text(message),
                                 "trace": clip_text(trace), "time": now, "attempt": job.attempt}
        self._commit_job(job, {"op": "fail", "id": job.id, "now": now, "error": error,
                               "retry_at": retry_at})
        queue = self.queues[job.queue]
        queue.failed_attempts += 1
        if expired:
            queue.lease_expired += 1
        fields = job_fields(job, error_type=errtype, error=error["message"][:200])
        if retry_at is None:
            queue.dead += 1
            log.warning("job lease expired, job is dead" if expired else "job dead",
                        extra=fields)
            self._finished(job)
        else:
            queue.retried += 1
            fields["retry_in_ms"] = retry_at - now
            if expired:
                log.warning("job lease expired, will retry", extra=fields)
            else:
                log.info("job failed, will retry", extra=fields)
