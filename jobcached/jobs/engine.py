"""The job engine: push, fetch, ack, fail, beat, cancel, retry — driven by calls and a clock.

Theory of operation
-------------------
Every change is made in two steps. A public method validates the request against the current
state (raising `CommandError` subclasses, changing nothing), takes every decision that involves
time or chance (ids, lease tokens, deadlines, backoff jitter) and writes them into a *record*, a
plain dict with absolute times. `_commit(record)` then encodes the record (`encode_record`),
applies it with `_apply` and hands the encoded body to `propagate` (the write-ahead log, and later
replication); `_commit_job(job, record)` does the same for a record about a job the caller holds,
going straight to `_apply_to_job`, which `_apply` dispatches to. Encoding comes first, so a record
that cannot be logged raises before it changes anything: the engine only ever holds state that
its log can rebuild. Crash recovery calls `replay`, which runs the very same `_apply` on the
records read back from the log, so replay reproduces the state by construction, and a record
never depends on when it is replayed. A record that names a job the log never added (a log
damaged or written by a buggy version) is skipped, counted in `skipped_records` and reported
once, rather than stopping the server from starting. The one record that is not a dict is a
new job's: the array `["put", *Job.to_record()]` (see `put_record`), because puts are most
of any log and an array decodes about a third faster than a map.

Time-driven work (a delay or backoff ending, a lease expiring, a blocked fetch or wait timing
out) sits in a hierarchical timer wheel; `tick(now_ms)` fires what is due and returns nothing
but records and deliveries. Blocked clients are plain callbacks (`deliver`), so the engine needs
no event loop: the command layer turns them into replies.

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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jobcached.clock import Clock
from jobcached.errors import CommandError, StaleLeaseError
from jobcached.jobs import purge as purges
from jobcached.jobs.batches import BatchTable
from jobcached.jobs.cron import MISSED_GRACE_MS, CronTable
from jobcached.jobs.keys import IdempotencyKeys
from jobcached.jobs.memory import bytes_size, error_added, job_bytes, log_size
from jobcached.jobs.model import (
    TERMINAL,
    Event,
    IdGenerator,
    Job,
    PushOptions,
    State,
    clip_text,
    next_state,
    pushed_record,
    queued_record,
)
from jobcached.jobs.ready import ReadyQueue, observe_ms
from jobcached.jobs.records import encode_record
from jobcached.jobs.timerwheel import TimerWheel

Record = dict[str, Any]
PUT = "put"


def put_record(job_record: list[Any]) -> list[Any]:
    """The log record that adds (or replaces) a job: its tag, then `Job.to_record()`."""
    return [PUT, *job_record]

log = logging.getLogger("jobcached.jobs")

#: JOB.LIST looks at no more than this many jobs per call times COUNT (bounded work, like SCAN).
LIST_SCAN_FACTOR = 10
#: Deleted ids are swept out of the id list once there are this many and they are half of it
#: (a window at a time, see purge.sweep_ids).
ID_SWEEP_MIN = 1000
#: JOB.LOG defaults (config job-log-max-lines / job-log-max-bytes): the newest lines are kept.
DEFAULT_LOG_MAX_LINES = 10_000
DEFAULT_LOG_MAX_BYTES = 1024**2
#: The states as module names. On Python 3.11 every `State.X` goes through EnumType.__getattr__
#: (about 70 ns, against 10 for a global), and each job operation tests states several times.
PENDING, QUEUED, RUNNING, RETRYING = State.PENDING, State.QUEUED, State.RUNNING, State.RETRYING
SUCCEEDED, DEAD, CANCELED = State.SUCCEEDED, State.DEAD, State.CANCELED
#: The events likewise (`Event.LEASE` costs about 120 ns, a module name 6): every job moves
#: at least twice.
DUE, LEASE, ACK, BEAT = Event.DUE, Event.LEASE, Event.ACK, Event.BEAT
FAIL_RETRY, FAIL_DEAD, CANCEL, RETRY = (Event.FAIL_RETRY, Event.FAIL_DEAD, Event.CANCEL,
                                        Event.RETRY)
#: States in which a job waits to run (EXPIRE cancels it if it is still in one of them).
WAITING = frozenset({PENDING, QUEUED, RETRYING})
#: Record ops about one existing job (its id in "id"), applied by `_apply_to_job`.
_JOB_OPS = frozenset({"lease", "ack", "due", "beat", "fail", "cancel", "retry", "log"})


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


class JobEngine:
    """All jobs and queues; see the module docstring."""

    def __init__(self, clock: Clock, *, rng: random.Random | None = None,
                 propagate: Callable[[bytes], None] | None = None,
                 default_lease_ms: int = 60_000, tick_ms: int = 10,
                 log_max_lines: int = DEFAULT_LOG_MAX_LINES,
                 log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
                 cron_grace_ms: int = MISSED_GRACE_MS) -> None:
        self.clock = clock
        self.log_max_lines = log_max_lines
        self.log_max_bytes = log_max_bytes
        self.rng = rng or random.Random()
        #: gets each record's encoded body, after the record was applied
        self.propagate = propagate or (lambda body: None)
        #: records replay skipped because they name a job the log never added
        self.skipped_records = 0
        self.default_lease_ms = default_lease_ms
        self.ids = IdGenerator(self.rng)
        self.jobs: dict[str, Job] = {}  # id -> Job
        #: every id in creation order, which is id order (the generator never goes back, not
        #: even across restarts), so JOB.LIST seeks a cursor with bisect; deleted ids are
        #: skipped and swept out now and then (purge.sweep_ids)
        self._ids: list[str] = []
        self._deleted_ids = 0
        self._sweep_at = 0  # where the next sweep of deleted ids starts (purge.sweep_ids)
        self.queues: dict[str, ReadyQueue] = {}
        self.keys = IdempotencyKeys()
        #: estimated bytes of the jobs in memory, kept by the apply path (jobs/memory.py)
        self.used_memory = 0
        self.timers: TimerWheel[tuple[str, Any]] = TimerWheel(start_ms=clock.now_ms(),
                                                              tick_ms=tick_ms)
        self._fetch_waiters: dict[str, deque[FetchWaiter]] = {}
        self._done_waiters: dict[str, list[JobWaiter]] = {}
        self._log_waiters: dict[str, list[JobWaiter]] = {}
        #: FetchWaiters and JobWaiters still active: clients blocked in JOB.FETCH, JOB.WAIT
        #: or JOB.LOGS (INFO clients' blocked_clients counts them with BLPOP's and the like)
        self.blocked = 0
        self.batches = BatchTable(clock, self.ids.new, self._commit, self.push)
        self.crons = CronTable(clock, self.timers, self._commit, self.push, cron_grace_ms)
        #: parent id -> ids of jobs pushed AFTER it (may hold stale ids: checked when used)
        self._children: dict[str, list[str]] = {}
        #: (finished_ms, id) of jobs as they end, oldest first: what the archive takes next
        self._finished_order: deque[tuple[int, str]] = deque()
        #: called as on_transition(job, old_state_or_None, new_state, now_ms) after every live
        #: state change (a push is None -> its first state); never during replay. The app wires
        #: it to pub/sub (status events); the engine knows nothing about who listens.
        self.on_transition: Callable[[Job, State | None, State, int], None] | None = None

    # ------------------------------------------------------------------ records

    def _commit(self, record: Record) -> None:
        """Apply and log a record that moves no job through its lifecycle (queues, batches,
        cron, deletes, restores); a record about one job's state goes through `_commit_job`,
        which tells `on_transition`."""
        body = _encoded(record)
        self._apply(record)
        self.propagate(body)

    def _commit_job(self, job: Job, record: Record) -> None:
        """`_commit` for a record about `job`, which the caller already holds: no lookup by id
        and none of `_apply`'s tests for other kinds of record (every job's lease and ack
        come this way)."""
        body = _encoded(record)
        old = job.state
        self._apply_to_job(record["op"], job, record)
        self.propagate(body)
        hook = self.on_transition
        if hook is not None and job.state is not old:
            hook(job, old, job.state, record["now"])

    def replay(self, records: Iterable[Record | Sequence[Any]]) -> int:
        """Rebuild state from logged records (crash recovery); returns how many were applied.

        Puts, most of any log, are arrays (see `put_record`) that go straight to
        `_apply_put`; every other record is a dict for `_apply` (which also reads the
        `{"op": "put", "job": ...}` puts of logs written before puts were arrays)."""
        count = 0
        apply, apply_put, from_record = self._apply, self._apply_put, Job.from_record
        for record in records:
            if type(record) is not dict:
                apply_put(from_record(record[1:]))
            else:
                record = self._known_part(record)
                if record is not None:
                    apply(record)
            count += 1
        if self._ids:
            self.ids.resume_after(self._ids[-1])
        return count

    def _known_part(self, record: Record) -> Record | None:
        """What of a replayed record is about jobs in memory (see `replay`): the record
        itself, a delete or archive without the ids the log never added, or None."""
        op, jobs = record.get("op"), self.jobs
        if op in _JOB_OPS:
            if record.get("id") in jobs:
                return record
            self._skip(record, 1)
            return None
        if op == "delete" or op == "archive":
            known = [job_id for job_id in record["ids"] if job_id in jobs]
            if len(known) < len(record["ids"]):
                self._skip(record, len(record["ids"]) - len(known))
                return {**record, "ids": known}
        return record

    def _skip(self, record: Record, jobs: int) -> None:
        """Count what replay cannot apply; the first such record is logged, the rest counted
        (INFO persistence `wal_skipped_records`)."""
        first = self.skipped_records == 0
        self.skipped_records += jobs
        if first:
            log.error("replay skipped a record about a job the log never added; later ones "
                      "are only counted", extra={"op": record.get("op"), "id": record.get("id")})

    def snapshot(self) -> Iterator[Record | list[Any]]:
        """Records that rebuild the current state from nothing (for WAL compaction)."""
        yield from self.batches.snapshot()  # before their members: a put counts into it
        yield from self.crons.snapshot()
        for job in self.jobs.values():
            yield put_record(job.to_record())
        for queue in self.queues.values():
            if queue.paused:
                yield {"op": "pause", "queue": queue.name}
        yield from self.keys.snapshot(self.clock.now_ms())

    def _apply(self, r: Record) -> None:
        op = r["op"]
        if op in _JOB_OPS:
            self._apply_to_job(op, self.jobs[r["id"]], r)
        elif op in ("pause", "resume"):
            self._queue(r["queue"]).paused = op == "pause"
        elif op == "delete":
            for job_id in r["ids"]:
                self._forget(self.jobs[job_id])
        elif op == "archive":
            for job_id in r["ids"]:
                self._forget(self.jobs[job_id], archived=True)
        elif op == "restore":
            self._apply_put(Job.from_record(r["job"]), restored=True)
        elif op == PUT:  # a put as logs wrote it before puts were arrays (see `replay`)
            self._apply_put(Job.from_record(r["job"]))
        elif op == "keys":  # archived jobs' idempotency keys, from a snapshot
            self.keys.apply_snapshot(r["keys"])
        elif op.startswith("batch"):
            self.batches.apply(op, r)
        elif op.startswith("cron"):
            self.crons.apply(op, r)
        else:
            raise ValueError(f"unknown job record op {op!r}")

    def _apply_to_job(self, op: str, job: Job, r: Record) -> None:
        """The records about one job, the lifecycle's own (lease, ack, due) first."""
        if op == "lease":
            self._move(job, LEASE, r["now"])
            job.attempt += 1
            job.started_ms = r["now"]
            job.token = r["token"]
            job.deadline_ms = r["deadline"]
            job.worker = r["worker"]
            job.timer = self.timers.schedule(job.deadline_ms, ("lease", job))
        elif op == "ack":
            self._move(job, ACK, r["now"])
            job.result = result = r["result"]
            if result is not None:  # and none before: JOB.RETRY clears a job's result
                self.used_memory += bytes_size(result)
            self.queues[job.queue].processed += 1
        elif op == "due":
            self._move(job, DUE, r["now"])
        elif op == "beat":
            self._move(job, BEAT, r["now"])
            job.deadline_ms = r["deadline"]
            job.timer = self.timers.schedule(job.deadline_ms, ("lease", job))
        elif op == "fail":
            self.used_memory += error_added(job, r["error"])
            job.add_error(r["error"])
            self.queues[job.queue].failed += 1
            if r["retry_at"] is None:
                self._move(job, FAIL_DEAD, r["now"])
            else:
                self._move(job, FAIL_RETRY, r["now"])
                job.run_at_ms = r["retry_at"]
                job.timer = self.timers.schedule(job.run_at_ms, ("due", job))
        elif op == "cancel":
            self._move(job, CANCEL, r["now"])
            job.reason = r["reason"]
        elif op == "retry":
            self._move(job, RETRY, r["now"])
            job.retry_base = job.attempt
            self.used_memory -= bytes_size(job.result)
            job.result = None
            job.finished_ms = 0
            job.reason = ""
            job.expire_ms = 0  # run again by hand: an EXPIRE that passed no longer applies
        else:  # "log"
            before = log_size(job)
            job.add_log_lines(r["lines"], self.log_max_lines, self.log_max_bytes)
            self.used_memory += log_size(job) - before

    def _apply_put(self, job: Job, *, restored: bool = False) -> None:
        """Add (or replace) a job: pushed, from a snapshot, or `restored` from the archive.

        Replay runs this for every job in the log, so it looks each thing up once; the
        common case (a new, queued job with no batch, key, parents or EXPIRE) is a handful of
        dict and list operations."""
        job_id, state = job.id, job.state
        old = self.jobs.get(job_id)
        if old is not None:
            self._forget(old)
        ids = self._ids
        if not ids or job_id > ids[-1]:
            ids.append(job_id)
        else:  # a snapshot's job met again, or ids from an older clock: keep the list sorted
            index = bisect.bisect_left(ids, job_id)
            if index == len(ids) or ids[index] != job_id:
                ids.insert(index, job_id)
            elif old is not None:
                self._deleted_ids -= 1  # _forget counted it, but the id is alive again
        self.jobs[job_id] = job
        self.used_memory += job_bytes(job)
        queue = self.queues.get(job.queue) or self._queue(job.queue)  # no call if it exists
        # Share the queue's own name string: a replayed million jobs need not each hold a copy
        # of it (and of the type, which is usually the queue name too).
        if job.type == job.queue:
            job.type = queue.name
        job.queue = queue.name
        queue.file(job, state)
        if job.batch:
            self.batches.count(job, None, state, archived=restored)
        if job.key:
            self.keys.added(job)
        if state is QUEUED:
            queue.push(job)
        elif state is PENDING or state is RETRYING:
            # also while it waits for parents: `tick` checks them when the timer fires
            job.timer = self.timers.schedule(job.run_at_ms, ("due", job))
        elif state is RUNNING:
            job.timer = self.timers.schedule(job.deadline_ms, ("lease", job))
        elif state in TERMINAL:
            self._finished_order.append((job.finished_ms, job_id))
        if job.parents and state is PENDING:
            for parent in job.parents:
                self._children.setdefault(parent, []).append(job_id)
        if job.expire_ms and state in WAITING:
            job.expire_timer = self.timers.schedule(job.expire_ms, ("expire", job))

    def _move(self, job: Job, event: Event, now_ms: int) -> None:
        """The one place a job changes state (after model.next_state allowed it)."""
        new = next_state(job, event)
        old = job.state
        if job.timer is not None:
            self.timers.cancel(job.timer)
            job.timer = None
        queue = self.queues[job.queue]  # made by the job's put: every job's queue exists
        queue.refile(job, old, new)
        if job.batch:
            self.batches.count(job, old, new)
        job.state = new
        if old is RUNNING and new is not RUNNING:
            job.token = ""
            job.deadline_ms = 0
        if new is QUEUED:
            job.enqueued_ms = now_ms
            queue.push(job)
        if job.expire_timer is not None and new not in WAITING:
            self.timers.cancel(job.expire_timer)  # it started (or ended): EXPIRE is moot
            job.expire_timer = None
        if new in TERMINAL:
            job.finished_ms = now_ms
            self._finished_order.append((now_ms, job.id))

    def _forget(self, job: Job, *, archived: bool = False) -> None:
        """Drop a job from memory: deleted (purged), or moved to the archive, where a batch
        still counts it."""
        for timer in (job.timer, job.expire_timer):
            if timer is not None:
                self.timers.cancel(timer)
        job.timer = job.expire_timer = None  # the handles point back at the job: break cycles
        self.queues[job.queue].unfile(job, job.state)
        self.used_memory -= job_bytes(job)
        if job.batch:
            self.batches.count(job, job.state, None, archived=archived)
        job.state = CANCELED  # any stale ready entry is now skipped
        del self.jobs[job.id]
        self._deleted_ids += 1
        if self._deleted_ids > ID_SWEEP_MIN and self._deleted_ids * 2 > len(self._ids):
            removed, self._sweep_at = purges.sweep_ids(self._ids, self.jobs, self._sweep_at)
            self._deleted_ids -= removed
        if job.key:
            self.keys.removed(job, archived=archived)

    def _queue(self, name: str) -> ReadyQueue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = ReadyQueue(name)
        return queue

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
        record is built first and the job from it (`queued_record`), skipping every option."""
        now = self.clock.now_ms()
        if opts is None:
            record = queued_record(self.ids.new(now), queue, payload, self.default_lease_ms, now)
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
        record = pushed_record(self.ids.new(now), queue, payload, opts, state=state,
                               timeout_ms=opts.timeout_ms or self.default_lease_ms,
                               run_at_ms=run_at, now_ms=now, canceled_by=failed_parent or "")
        return self._put_new(Job.from_record(record), record, now), True

    def _put_new(self, job: Job, record: list[Any], now: int) -> str:
        """Add a job just pushed, whose record is `record`, and log it; returns its id. The job
        object itself is applied (replay builds the same object from the record)."""
        body = _encoded(put_record(record))
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
        if queue in self._fetch_waiters:
            self._serve_waiters(queue)
        return job.id

    def _parents_status(self, parents: list[str], archived: dict[str, State], *,
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
            while len(jobs) < count:
                job = queue.pop()
                if job is None:
                    break
                if job.expire_ms and job.expire_ms <= now:
                    self._cancel(job, "expired")  # its EXPIRE timer has not fired yet
                    continue
                self._lease(job, lease_ms, worker, now)
                jobs.append(job)
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

    def wait_for_jobs(self, queues: list[str], count: int, lease_ms: int | None, worker: str,
                      block_ms: int, deliver: Callable[[list[Job]], None]) -> FetchWaiter:
        """Register a blocked fetch (after `fetch` found nothing); `deliver` gets the jobs, or
        [] on timeout. Blocked fetches are served first come, first served."""
        waiter = FetchWaiter(queues, count, lease_ms, worker, deliver)
        self.blocked += 1
        for name in queues:
            self._fetch_waiters.setdefault(name, deque()).append(waiter)
        if block_ms > 0:
            waiter.timer = self.timers.schedule(self.clock.now_ms() + block_ms,
                                                ("fetch-timeout", waiter))
        return waiter

    def cancel_wait(self, waiter: FetchWaiter | JobWaiter) -> None:
        """Forget a blocked fetch or wait (its client went away, or it is being served)."""
        if waiter.active:
            self.blocked -= 1
        waiter.active = False
        if waiter.timer is not None:
            self.timers.cancel(waiter.timer)

    def _serve_waiters(self, queue_name: str) -> None:
        waiters = self._fetch_waiters.get(queue_name)
        while waiters:
            waiter = waiters[0]
            if not waiter.active:
                waiters.popleft()
                continue
            jobs = self.fetch([queue_name], waiter.count, waiter.lease_ms, waiter.worker)
            if not jobs:
                return
            waiters.popleft()
            self.cancel_wait(waiter)
            waiter.deliver(jobs)
        if waiters is not None and not waiters:
            del self._fetch_waiters[queue_name]

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
        error = {"type": errtype, "message": clip_text(message), "trace": clip_text(trace),
                 "time": now, "attempt": job.attempt}
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

    def wait_done(self, job_id: str, timeout_ms: int,
                  deliver: Callable[[Job | None], None]) -> JobWaiter:
        """Call `deliver(job)` when the job finishes, or `deliver(None)` after timeout_ms
        (0 = no timeout). The caller checks first whether it already finished."""
        return self._wait(self._done_waiters, job_id, timeout_ms, deliver)

    def _wait(self, waiters: dict[str, list[JobWaiter]], job_id: str, timeout_ms: int,
              deliver: Callable[[Job | None], None]) -> JobWaiter:
        """Register a JobWaiter in `waiters` (JOB.WAIT's or JOB.LOGS's), timing out after
        timeout_ms (0 = never)."""
        waiter = JobWaiter(job_id, deliver)
        self.blocked += 1
        waiters.setdefault(job_id, []).append(waiter)
        if timeout_ms > 0:
            waiter.timer = self.timers.schedule(self.clock.now_ms() + timeout_ms,
                                                ("wait-timeout", waiter))
        return waiter

    def _finished(self, job: Job, *, cascade: bool = True) -> None:
        """A job ended: wake JOB.WAIT and JOB.LOGS followers, settle its batch, and release
        (or cancel) the jobs that were pushed AFTER it. Each is looked for before it is
        called: most jobs have none of them, and this runs once per job."""
        job_id = job.id
        if job_id in self._done_waiters:
            self._wake(self._done_waiters, job)
        if job_id in self._log_waiters:
            self._wake(self._log_waiters, job)
        if job.batch:
            self.batches.settle(job.batch)
        if cascade and job_id in self._children:
            self._release_children(job)

    def _wake(self, waiters: dict[str, list[Any]], job: Job) -> None:
        for waiter in waiters.pop(job.id, ()):
            if waiter.active:
                self.cancel_wait(waiter)
                waiter.deliver(job)

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
        self._wake(self._log_waiters, job)
        return job.log_base + len(job.logs)

    def wait_logs(self, job_id: str, timeout_ms: int,
                  deliver: Callable[[Job | None], None]) -> JobWaiter:
        """Call `deliver(job)` when the job logs more lines or ends, `deliver(None)` after
        timeout_ms (0 = no timeout)."""
        return self._wait(self._log_waiters, job_id, timeout_ms, deliver)

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
            elif kind == "fetch-timeout":
                if target.active:
                    self.cancel_wait(target)
                    target.deliver([])
            elif kind == "wait-timeout" and target.active:
                self.cancel_wait(target)
                target.deliver(None)

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


def _encoded(record: Record | list[Any]) -> bytes:
    """A record's log body, or a CommandError (nothing has changed yet) if it has a value
    the log cannot hold (arguments are validated before this: it is the last line)."""
    try:
        return encode_record(record)
    except (TypeError, ValueError, OverflowError) as exc:  # UnicodeEncodeError is a ValueError
        raise CommandError(f"the change cannot be logged, so it was not made ({exc})") from exc


def _job_fields(job: Job, **more: Any) -> dict[str, Any]:
    """The structured log fields of a job event: id, queue, attempt, traceparent if any."""
    fields: dict[str, Any] = {"job": job.id, "queue": job.queue, "attempt": job.attempt}
    traceparent = job.meta.get("traceparent") if job.meta else None
    if traceparent:
        fields["traceparent"] = traceparent
    fields.update(more)
    return fields
