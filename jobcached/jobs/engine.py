"""The job engine: push, fetch, ack, fail, beat, cancel, retry — driven by calls and a clock.

Theory of operation
-------------------
Every change is made in two steps. A public method validates the request against the current
state (raising `CommandError` subclasses, changing nothing), takes every decision that involves
time or chance (ids, lease tokens, deadlines, backoff jitter) and writes them into a *record*, a
plain dict with absolute times, which is encoded, applied and handed to the engine's `sink`
(the server's effect log); crash recovery replays the same records through the same code.

Time-driven work (a delay or backoff ending, a lease expiring, a blocked fetch or wait timing
out) sits in a hierarchical timer wheel; `tick(now_ms)` fires what is due and returns nothing
but records and deliveries. Blocked clients wait in `waiters` (`jobs/waiting.py`) as plain
callbacks, so the engine needs no event loop: the command layer turns them into replies.

Observability: the public methods (never the apply path, so replay counts nothing twice) bump
the per-queue activity counters in `ReadyQueue`, and log job lifecycle events through
`logging`: debug for push, lease, ack, cancel and requeue; info for a failed attempt that will
be retried; warning for a job that went dead or whose lease expired. Each carries the job id,
its queue and the W3C `traceparent` from its META when it has one.

The parts
---------
`JobEngine` is the one object the commands, the app and the archiver hold; its parts are
classes it builds on, one module each, each part able to use the ones below it:

- `jobs/jobstate.py` (`JobState`): the state, records and replay: `_commit`, `_apply`.
- `jobs/dependencies.py` (`Dependencies`): a job's end (`_finished`, `_cancel`) and the AFTER
  graph it runs down.
- `jobs/fetching.py` (`Fetching`): `fetch` and leases, QUEUE.LIMIT slots (`set_limit`),
  blocked fetchers served.
- `jobs/timers.py` (`Timers`): `tick`: delays, lease expiry, EXPIRE; failed attempts, their
  retries and backoff.
- this module: the rest of the operations the commands call (push, ack, fail, beat, cancel,
  retry, list, pause, delete, logs, the archive's hand-over) and the snapshot.
"""

from __future__ import annotations

import bisect
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

from jobcached.clock import Clock
from jobcached.errors import CommandError, StaleLeaseError
from jobcached.jobs.batches import BatchTable
from jobcached.jobs.cron import MISSED_GRACE_MS, CronTable
from jobcached.jobs.jobstate import (
    CANCELED,
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_LOG_MAX_LINES,
    PENDING,
    QUEUED,
    RETRY,
    RUNNING,
    Record,
    encoded,
    job_fields,
)
from jobcached.jobs.model import DEFAULT_RETRIES, TERMINAL, Job, PushOptions, State, next_state
from jobcached.jobs.ready import observe_ms
from jobcached.jobs.records import job_record, put_record
from jobcached.jobs.timers import Timers
from jobcached.jobs.waiting import Waiters

log = logging.getLogger("jobcached.jobs")

#: JOB.LIST looks at no more than this many jobs per call times COUNT (bounded work, like SCAN).
LIST_SCAN_FACTOR = 10
#: PushOptions is part of the engine's interface (commands build it)
__all__ = ["JobEngine", "PushOptions"]


class JobEngine(Timers):
    """All jobs and queues, and every operation on them; see the module docstring.

    `sink` gets each applied record's encoded body; the server's effect log (None: they are
    dropped). `replay` gives it nothing: what is replayed is in the log already."""

    def __init__(self, clock: Clock, *, rng: random.Random | None = None,
                 sink: Callable[[bytes], None] | None = None,
                 default_lease_ms: int = 60_000, tick_ms: int = 10,
                 log_max_lines: int = DEFAULT_LOG_MAX_LINES,
                 log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
                 cron_grace_ms: int = MISSED_GRACE_MS) -> None:
        super().__init__(clock, rng, sink, tick_ms, log_max_lines, log_max_bytes)
        self.default_lease_ms = default_lease_ms
        self.waiters = Waiters(clock, self.timers)
        self.batches = BatchTable(clock, self.ids.new, self._commit, self.push)
        self.crons = CronTable(clock, self.timers, self._commit, self.push, cron_grace_ms)
        self.on_slot_freed = self._serve_waiters
        #: the time of the last push: jobs pushed in the same millisecond share one int
        #: object for their times (`push`), rather than 32 bytes each
        self._pushed_at = 0

    def snapshot(self) -> Iterator[Record | list[Any]]:
        """Records that rebuild the current state from nothing (for WAL compaction)."""
        yield from self.batches.snapshot()  # before their members: a put counts into it
        yield from self.crons.snapshot()
        for job in self.jobs.values():
            yield put_record(job.to_record())
        for queue in self.queues.values():
            if queue.paused:
                yield {"op": "pause", "queue": queue.name}
            if queue.limit is not None:
                yield queue.limit.record(queue.name)
            if queue.processed or queue.failed:
                yield {"op": "counters", "queue": queue.name, "processed": queue.processed,
                       "failed": queue.failed}
        yield from self.keys.snapshot(self.clock.now_ms())

    def push(self, queue: str, payload: bytes, opts: PushOptions | None = None,
             archived_parents: dict[str, State] | None = None) -> tuple[str, bool]:
        """Create a job; returns (id, created). An idempotency key seen before returns the
        existing id and creates nothing (NotUniqueError if the payload differs).

        AFTER parents that are no longer in memory must be looked up in the archive by the
        caller and passed as `archived_parents` (id -> final state); an id found in neither
        place is an error. A job whose parent already ended dead or canceled is created
        canceled, as it would have been had it been pushed earlier.

        Without options (most pushes) nothing can fail and the job is queued at once: its
        record is built first and the job from it (as replay does: about 30% fewer steps than
        constructing the job, 34 fields, and then listing them), skipping every option."""
        now = self.clock.now_ms()
        if now == self._pushed_at:
            now = self._pushed_at
        else:
            self._pushed_at = now
        if opts is None:
            record = job_record(id=self.ids.new(now), queue=queue, type=queue, payload=payload,
                                state="queued", retries=DEFAULT_RETRIES,
                                timeout=self.default_lease_ms, run_at=now, created=now,
                                enqueued=now)
            return self._put_new(Job.from_record(record), record, now), True
        if opts.batch is not None:
            self.batches.check_open(opts.batch)
        if opts.expire_ms is not None and opts.expire_ms <= now:
            raise CommandError("EXPIRE is not in the future")
        failed_parent, waiting = None, False
        if opts.after:
            failed_parent, waiting = self._parents_status(opts.after, archived_parents or {},
                                                          strict=True)
        if opts.key is not None:
            existing_id = self.keys.find(opts.key, queue, payload, self.jobs, now)
            if existing_id is not None:
                return existing_id, False
        run_at = opts.at_ms if opts.at_ms is not None else now + (opts.delay_ms or 0)
        state = PENDING if run_at > now or waiting else QUEUED
        # A job whose parent already failed is created canceled (it was queued, or pending,
        # for no time at all), with the parent's failure as its reason.
        backoff = opts.retry.backoff_ms
        record = job_record(
            id=self.ids.new(now), queue=queue, type=opts.type or queue, payload=payload,
            state="canceled" if failed_parent else state._value_, priority=opts.priority,
            retries=opts.retry.retries, backoff=list(backoff) if backoff else None,
            timeout=opts.timeout_ms or self.default_lease_ms, run_at=run_at, created=now,
            enqueued=now if state is QUEUED else 0, finished=now if failed_parent else 0,
            key=opts.key, key_expires=now + opts.key_ttl_ms if opts.key else 0, meta=opts.meta,
            reason=failed_parent or "", parents=opts.after, batch=opts.batch or "",
            expire=opts.expire_ms or 0)
        return self._put_new(Job.from_record(record), record, now), True

    def _put_new(self, job: Job, record: list[Any], now: int) -> str:
        """Add a job just pushed, whose record is `record`, and log it; returns its id. The job
        object itself is applied (replay builds the same object from the record)."""
        body = encoded(put_record(record))
        self._apply_put(job)
        self.sink(body)
        if self.on_transition is not None:
            self.on_transition(job, None, job.state, now)
        queue = job.queue
        self.queues[queue].pushed += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job pushed", extra=job_fields(job, state=job.state.value))
        if job.state in TERMINAL:
            self._finished(job)
        if queue in self.waiters.fetches:
            self._serve_waiters(queue)
        return job.id

    def _running(self, job_id: str, token: str) -> Job:
        """The running job a worker holds, or the error that says why it doesn't."""
        job = self.jobs.get(job_id)
        if job is None:
            raise CommandError(f"no such job {job_id}")
        if job.state is not RUNNING:
            if job.state is CANCELED:
                raise CommandError(f"job {job_id} is canceled")
            raise StaleLeaseError(f"lease {token} of job {job_id} is no longer valid "
                                  f"(job is {job.state.value})")
        if job.token != token:
            raise StaleLeaseError(f"lease {token} of job {job_id} is no longer valid "
                                  f"(it was handed out again)")
        return job

    def ack(self, job_id: str, token: str, result: bytes | None = None) -> None:
        job = self._running(job_id, token)
        now = self.clock.now_ms()
        ran_ms = now - job.started_ms
        self._commit_job(job, {"op": "ack", "id": job_id, "now": now, "result": result})
        queue = self.queues[job.queue]
        queue.succeeded += 1
        observe_ms(queue.run_ms, ran_ms)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job succeeded", extra=job_fields(job, ran_ms=ran_ms))
        self._finished(job)

    def fail(self, job_id: str, token: str, message: str, errtype: str = "Error",
             trace: str = "", retry_in_ms: int | None = None, noretry: bool = False) -> State:
        """Record a failed attempt; returns the state the job moved to (retrying or dead)."""
        job = self._running(job_id, token)
        self._fail(job, errtype, message, trace, retry_in_ms, noretry)
        return self.jobs[job_id].state

    def beat(self, job_id: str, token: str, extend_ms: int | None = None) -> int | None:
        """Extend a lease; the new deadline, or None if the job was canceled meanwhile."""
        job = self.jobs.get(job_id)
        if job is not None and job.state is CANCELED:
            return None
        job = self._running(job_id, token)
        now = self.clock.now_ms()
        deadline = now + (extend_ms or job.timeout_ms)
        self._commit_job(job, {"op": "beat", "id": job_id, "now": now, "deadline": deadline})
        return deadline

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def cancel(self, job_id: str, reason: str = "canceled") -> None:
        self._cancel(self._known(job_id), reason)

    def retry(self, job_id: str) -> None:
        """Run a finished job (succeeded, dead or canceled) again, now."""
        job = self._known(job_id)
        next_state(job, RETRY)
        self._commit_job(job, {"op": "retry", "id": job_id, "now": self.clock.now_ms()})
        self.queues[job.queue].requeued += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job requeued", extra=job_fields(job))
        self._serve_waiters(job.queue)

    def _known(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise CommandError(f"no such job {job_id}")
        return job

    def list_jobs(self, queue: str | None = None, state: State | None = None,
                  cursor: str = "0", count: int = 100) -> tuple[str, list[Job]]:
        """A page of jobs in id order; returns (next cursor, jobs), cursor "0" at the end."""
        ids = self._ids
        index = 0 if cursor == "0" else bisect.bisect_right(ids, cursor)
        found: list[Job] = []
        budget = count * LIST_SCAN_FACTOR
        while index < len(ids) and len(found) < count and budget > 0:
            job = self.jobs.get(ids[index])
            if job is not None and (queue is None or job.queue == queue) and (
                    state is None or job.state is state):
                found.append(job)
            index += 1
            budget -= 1
        next_cursor = ids[index - 1] if index < len(ids) else "0"
        return next_cursor, found

    def set_paused(self, queue: str, paused: bool) -> None:
        known = self.queues.get(queue)
        if (known is not None and known.paused) != paused:
            self._commit({"op": "pause" if paused else "resume", "queue": queue})
        if not paused:
            self._serve_waiters(queue)

    def delete(self, ids: list[str]) -> None:
        """Delete jobs for good (QUEUE.PURGE, DLQ.PURGE: see purge.py). The batches they were
        in may be complete without them; jobs pushed AFTER them can never run, so they are
        canceled (and theirs, down the graph): a parent missing from memory would otherwise
        count as archived, so succeeded."""
        if not ids:
            return
        batches = {self.jobs[job_id].batch for job_id in ids} - {""}
        orphans = self._take_children(ids)
        self._commit({"op": "delete", "ids": ids})
        for batch_id in batches:
            self.batches.settle(batch_id)
        self._orphaned(orphans)

    def log(self, job_id: str, token: str, lines: list[bytes]) -> int:
        """Append lines to a running job's log; returns the number of the next line."""
        job = self._running(job_id, token)
        self._commit_job(job, {"op": "log", "id": job_id, "lines": lines})
        self.waiters.wake(self.waiters.logs, job)
        return job.log_base + len(job.logs)

    def start(self) -> None:
        """Live from now on (after replay): fire what cron entries and batches are owed, and
        arm the cron timers. Records this appends go to the log like any other."""
        self.crons.start(self.clock.now_ms())
        self.batches.start()

    def archivable(self, finished_before_ms: int, limit: int) -> list[Job]:
        """Up to `limit` jobs that ended before the cutoff, oldest first, for the archive.

        `_finished_order` may hold stale entries (a job gone, run again, or ended again
        later): those are skipped, and dropped once they reach the front, so the deque is
        only ever shortened from the left (deleting in its middle costs its length). A job
        that ended twice in one millisecond (canceled, retried, canceled) has two entries
        that both still match: it is taken once (`found` is keyed by id)."""
        order = self._finished_order
        while order and self._still_finished(*order[0]) is None:
            order.popleft()
        found: dict[str, Job] = {}
        for finished, job_id in order:
            if finished >= finished_before_ms or len(found) >= limit:
                break
            job = self._still_finished(finished, job_id)
            if job is not None:
                found[job_id] = job
        return list(found.values())

    def _still_finished(self, finished: int, job_id: str) -> Job | None:
        """The job of a `_finished_order` entry, if it is still the ending that entry saw."""
        job = self.jobs.get(job_id)
        if job is None or job.state not in TERMINAL or job.finished_ms != finished:
            return None
        return job

    def archived(self, stored: list[tuple[Job, int]]) -> None:
        """The archive now holds these (job, finished_ms as stored): drop them from memory,
        skipping any that were run again while the archive wrote."""
        ids = [j.id for j, finished in stored if self._still_finished(finished, j.id) is j]
        if ids:
            self._commit({"op": "archive", "ids": ids})
        self.keys.prune(self.clock.now_ms())

    def restore(self, job: Job) -> None:
        """Bring an archived job back into memory (to run it again: JOB.RETRY, DLQ.REQUEUE)."""
        if job.id not in self.jobs:
            self._commit({"op": "restore", "job": job.to_record()})
