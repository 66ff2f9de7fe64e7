"""The job engine: push, fetch, ack, fail, beat, cancel, retry — driven by calls and a clock.

Theory of operation
-------------------
Every change is made in two steps. A public method validates the request against the current
state (raising `CommandError` subclasses, changing nothing), takes every decision that involves
time or chance (ids, lease tokens, deadlines, backoff jitter) and writes them into a *record*, a
plain dict with absolute times, which `JobState` (`jobs/jobstate.py`, the base class) encodes,
applies and logs; crash recovery replays the same records through the same code.

Time-driven work (a delay or backoff ending, a lease expiring, a blocked fetch or wait timing
out) sits in a hierarchical timer wheel; `tick(now_ms)` fires what is due and returns nothing
but records and deliveries. Blocked clients wait in `waiters` (`jobs/waiting.py`) as plain
callbacks, so the engine needs no event loop: the command layer turns them into replies.

Observability: the public methods (never `_apply`, so replay counts nothing twice) bump the
per-queue activity counters in `ReadyQueue`, and log job lifecycle events through `logging`:
debug for push, lease, ack, cancel and requeue; info for a failed attempt that will be
retried; warning for a job that went dead or whose lease expired. Each carries the job id,
its queue and the W3C `traceparent` from its META when it has one.
"""

from __future__ import annotations

import bisect
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from jobcached.clock import Clock
from jobcached.errors import CommandError, StaleLeaseError
from jobcached.jobs.batches import BatchTable
from jobcached.jobs.cron import MISSED_GRACE_MS, CronTable
from jobcached.jobs.jobstate import (
    CANCEL,
    CANCELED,
    DEAD,
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_LOG_MAX_LINES,
    PENDING,
    QUEUED,
    RETRY,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    WAITING,
    JobState,
    Record,
    encoded,
)
from jobcached.jobs.limits import QueueLimit
from jobcached.jobs.model import (
    DEFAULT_RETRIES,
    TERMINAL,
    Job,
    PushOptions,
    State,
    clip_text,
    next_state,
)
from jobcached.jobs.ready import observe_ms
from jobcached.jobs.records import job_record, put_record
from jobcached.jobs.waiting import Waiters

log = logging.getLogger("jobcached.jobs")

#: JOB.LIST looks at no more than this many jobs per call times COUNT (bounded work, like SCAN).
LIST_SCAN_FACTOR = 10
#: PushOptions is part of the engine's interface (commands build it)
__all__ = ["JobEngine", "PushOptions"]


class JobEngine(JobState):
    """All jobs and queues; see the module docstring."""

    def __init__(self, clock: Clock, *, rng: random.Random | None = None,
                 propagate: Callable[[bytes], None] | None = None,
                 default_lease_ms: int = 60_000, tick_ms: int = 10,
                 log_max_lines: int = DEFAULT_LOG_MAX_LINES,
                 log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
                 cron_grace_ms: int = MISSED_GRACE_MS) -> None:
        super().__init__(clock, rng, propagate, tick_ms, log_max_lines, log_max_bytes)
        self.default_lease_ms = default_lease_ms
        self.waiters = Waiters(clock, self.timers)
        self.batches = BatchTable(clock, self.ids.new, self._commit, self.push)
        self.crons = CronTable(clock, self.timers, self._commit, self.push, cron_grace_ms)
        self.on_slot_freed = self._serve_waiters

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
        yield from self.keys.snapshot(self.clock.now_ms())

    # ------------------------------------------------------------------ producers

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
        self.propagate(body)
        if self.on_transition is not None:
            self.on_transition(job, None, job.state, now)
        queue = job.queue
        self.queues[queue].pushed += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job pushed", extra=_job_fields(job, state=job.state.value))
        if job.state in TERMINAL:
            self._finished(job)
        if queue in self.waiters.fetches:
            self._serve_waiters(queue)
        return job.id

    def _parents_status(self, parents: Sequence[str], archived: dict[str, State], *,
                        strict: bool = False) -> tuple[str | None, bool]:
        """(why the job must be canceled: the first parent that ended dead or canceled, as
        the cancel reason; whether any parent is yet to succeed).
        A parent in neither memory nor `archived` has been archived since (it ended, and had
        it failed this job would have been canceled then): it counts as succeeded, unless
        `strict` (at push), where it is an unknown id."""
        waiting = False
        for parent_id in parents:
            parent = self.jobs.get(parent_id)
            state = parent.state if parent is not None else archived.get(parent_id)
            if state is None:
                if strict:
                    raise CommandError(f"no such parent job {parent_id}")
                continue
            if state is DEAD or state is CANCELED:
                return f"parent {parent_id} is {state.value}", waiting
            if state is not SUCCEEDED:
                waiting = True
        return None, waiting

    # ------------------------------------------------------------------ workers

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
            log.debug("job leased", extra=_job_fields(job, worker=worker, waited_ms=waited_ms))

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
            log.debug("job succeeded", extra=_job_fields(job, ran_ms=ran_ms))
        self._finished(job)

    def fail(self, job_id: str, token: str, message: str, errtype: str = "Error",
             trace: str = "", retry_in_ms: int | None = None, noretry: bool = False) -> State:
        """Record a failed attempt; returns the state the job moved to (retrying or dead)."""
        job = self._running(job_id, token)
        self._fail(job, errtype, message, trace, retry_in_ms, noretry)
        return self.jobs[job_id].state

    def _fail(self, job: Job, errtype: str, message: str, trace: str,
              retry_in_ms: int | None, noretry: bool, *, expired: bool = False) -> None:
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
        fields = _job_fields(job, error_type=errtype, error=error["message"][:200])
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

    # ------------------------------------------------------------------ control

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def cancel(self, job_id: str, reason: str = "canceled") -> None:
        self._cancel(self._known(job_id), reason)

    def _cancel(self, job: Job, reason: str, *, cascade: bool = True) -> None:
        next_state(job, CANCEL)  # raises if not allowed
        self._commit_job(job, {"op": "cancel", "id": job.id, "now": self.clock.now_ms(),
                               "reason": reason})
        self.queues[job.queue].canceled += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job canceled", extra=_job_fields(job, reason=reason))
        self._finished(job, cascade=cascade)

    def retry(self, job_id: str) -> None:
        """Run a finished job (succeeded, dead or canceled) again, now."""
        job = self._known(job_id)
        next_state(job, RETRY)
        self._commit_job(job, {"op": "retry", "id": job_id, "now": self.clock.now_ms()})
        self.queues[job.queue].requeued += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job requeued", extra=_job_fields(job))
        self._serve_waiters(job.queue)

    def _known(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise CommandError(f"no such job {job_id}")
        return job

    def _finished(self, job: Job, *, cascade: bool = True) -> None:
        """A job ended: wake JOB.WAIT and JOB.LOGS followers, settle its batch, and release
        (or cancel) the jobs that were pushed AFTER it. Each is looked for before it is
        called: most jobs have none of them, and this runs once per job."""
        self.waiters.job_ended(job)
        if job.batch:
            self.batches.settle(job.batch)
        if cascade and job.id in self._children:
            self._release_children(job)

    def _release_children(self, parent: Job) -> None:
        """Queue the children whose parents have all succeeded; cancel, down the graph, those
        with a parent that ended dead or canceled. A work list, not recursion: a chain may
        be thousands of jobs long."""
        work = [parent.id]
        while work:
            for child_id in self._children.pop(work.pop(), ()):
                child = self.jobs.get(child_id)
                if child is None or child.state is not PENDING:
                    continue
                failed, waiting = self._parents_status(child.parents, {})
                if failed is not None:
                    self._cancel(child, failed, cascade=False)
                    work.append(child.id)
                elif not waiting:
                    self._make_due(child)

    def _make_due(self, job: Job) -> None:
        """A pending job with nothing left to wait for but (maybe) its run-at time."""
        now = self.clock.now_ms()
        if job.run_at_ms > now:
            if job.timer is None:
                job.timer = self.timers.schedule(job.run_at_ms, ("due", job))
            return
        self._commit_job(job, {"op": "due", "id": job.id, "now": now})
        self._serve_waiters(job.queue)

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

    # ------------------------------------------------------------------ queues and DLQ

    def set_limit(self, queue: str, concurrency: int | None = None,
                  rate: tuple[int, int] | None = None) -> QueueLimit | None:
        """Change a queue's QUEUE.LIMIT: `concurrency` (0: none) and `rate` as (jobs, per ms)
        ((0, 0): none); None leaves that limit as it is. Returns the limits now in force.
        Blocked fetchers are served at once, in case the limits loosened."""
        current = self._queue(queue).limit or QueueLimit()
        new = QueueLimit(current.concurrency if concurrency is None else concurrency,
                         *(rate if rate is not None else (current.rate, current.per_ms)))
        if (new.concurrency, new.rate, new.per_ms) != (
                current.concurrency, current.rate, current.per_ms):
            self._commit(new.record(queue))
        self._serve_waiters(queue)
        return self.queues[queue].limit

    def set_paused(self, queue: str, paused: bool) -> None:
        if self._queue(queue).paused != paused:
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
        orphans = [(child_id, parent_id) for parent_id in ids
                   for child_id in self._children.pop(parent_id, ())]
        self._commit({"op": "delete", "ids": ids})
        for batch_id in batches:
            self.batches.settle(batch_id)
        for child_id, parent_id in orphans:
            child = self.jobs.get(child_id)
            if child is not None and child.state is PENDING:
                self._cancel(child, f"parent {parent_id} was deleted")

    # ------------------------------------------------------------------ logs

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

    # ------------------------------------------------------------------ archive

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

    # ------------------------------------------------------------------ time

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
            elif kind == "limit":  # a queue's rate window has room again
                queue = self.queues.get(target)
                if queue is not None and queue.limit is not None:
                    queue.limit.timer = None
                    self._serve_waiters(target)
            elif kind == "fetch-timeout" or kind == "wait-timeout":
                self.waiters.timed_out(target)

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

    def next_wakeup(self) -> int | None:
        """When `tick` has work next, at the latest (see TimerWheel.next_wakeup)."""
        return self.timers.next_wakeup()


def _job_fields(job: Job, **more: Any) -> dict[str, Any]:
    """The structured log fields of a job event: id, queue, attempt, traceparent if any."""
    fields: dict[str, Any] = {"job": job.id, "queue": job.queue, "attempt": job.attempt}
    traceparent = job.meta.get("traceparent") if job.meta else None
    if traceparent:
        fields["traceparent"] = traceparent
    fields.update(more)
    return fields
