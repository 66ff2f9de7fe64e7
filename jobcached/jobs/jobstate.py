"""The jobs in memory, and the one path that changes them: records, applied live and at replay.

Every change to jobs, queues, batches and cron entries is a *record*: a plain dict with
absolute times, which the engine's operations (`jobs/engine.py` and the modules it names) build
after they have validated a request and taken every decision involving time or chance.
`_commit(record)` encodes the record (`encode_record`), applies it with `_apply` and hands the
encoded body to the `sink` the engine was built with (the server's effect log: the write-ahead
log, and later replication); `_commit_job(job, record)` does the same for a record
about a job the caller holds, going straight to `_apply_to_job`, which `_apply` dispatches to.
Encoding comes first, so a record that cannot be logged raises before it changes anything: the
state only ever holds what its log can rebuild. Crash recovery calls `replay`, which runs the
very same `_apply` on the records read back from the log, so replay reproduces the state by
construction, and a record never depends on when it is replayed. A record that names a job the
log never added (a log damaged or written by a buggy version) is skipped, counted in
`skipped_records` and reported once, rather than stopping the server from starting. The one
record that is not a dict is a new job's: the array `["put", version, *Job.to_record()]` (see
`records.put_record`), because puts are most of any log. How records are written and read, and
how old versions are upgraded, is `jobs/records.py`'s business.

The apply path also keeps what is derived from the jobs: the per-queue index and counts
(`ReadyQueue`), the timers of delays, leases and EXPIREs, the estimated memory, batch counts,
idempotency keys, the AFTER graph and the order in which jobs ended (for the archive). It never
bumps activity counters or logs lifecycle events: replay would count history twice.
"""

from __future__ import annotations

import bisect
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from jobcached.clock import Clock
from jobcached.errors import CommandError
from jobcached.jobs import purge as purges
from jobcached.jobs.keys import IdempotencyKeys
from jobcached.jobs.limits import QueueLimit
from jobcached.jobs.memory import bytes_size, error_added, job_bytes, log_size
from jobcached.jobs.model import TERMINAL, Event, IdGenerator, Job, State, next_state
from jobcached.jobs.ready import ReadyQueue
from jobcached.jobs.records import encode_record
from jobcached.jobs.timerwheel import TimerWheel

if TYPE_CHECKING:
    from jobcached.jobs.batches import BatchTable
    from jobcached.jobs.cron import CronTable
    from jobcached.jobs.waiting import Waiters

Record = dict[str, Any]

log = logging.getLogger("jobcached.jobs")

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


def encoded(record: Record | list[Any]) -> bytes:
    """A record's log body, or a CommandError (nothing has changed yet) if it has a value
    the log cannot hold (arguments are validated before this: it is the last line)."""
    try:
        return encode_record(record)
    except (TypeError, ValueError, OverflowError) as exc:  # UnicodeEncodeError is a ValueError
        raise CommandError(f"the change cannot be logged, so it was not made ({exc})") from exc


def job_fields(job: Job, **more: Any) -> dict[str, Any]:
    """The structured log fields of a job lifecycle event, which the engine's operations log
    (never the apply path): id, queue, attempt, and the W3C traceparent from META if any."""
    fields: dict[str, Any] = {"job": job.id, "queue": job.queue, "attempt": job.attempt}
    traceparent = job.meta.get("traceparent") if job.meta else None
    if traceparent:
        fields["traceparent"] = traceparent
    fields.update(more)
    return fields


class JobState:
    """The jobs, their queues and what derives from them; see the module docstring. The
    engine's parts subclass it with the operations (`jobs/engine.py`); `batches`, `crons` and
    `waiters` are the engine's to set."""

    batches: BatchTable
    crons: CronTable
    waiters: Waiters

    def __init__(self, clock: Clock, rng: random.Random | None,
                 sink: Callable[[bytes], None] | None, tick_ms: int,
                 log_max_lines: int, log_max_bytes: int) -> None:
        self.clock = clock
        self.log_max_lines = log_max_lines
        self.log_max_bytes = log_max_bytes
        self.rng = rng or random.Random()
        #: gets each applied record's encoded body; the server's effect log
        self.sink = sink or (lambda body: None)
        #: records replay skipped because they name a job the log never added
        self.skipped_records = 0
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
        #: parent id -> ids of jobs pushed AFTER it (may hold stale ids: checked when used)
        self._children: dict[str, list[str]] = {}
        #: (finished_ms, id) of jobs as they end, oldest first: what the archive takes next
        self._finished_order: deque[tuple[int, str]] = deque()
        #: called as on_transition(job, old_state_or_None, new_state, now_ms) after every live
        #: state change (a push is None -> its first state); never during replay. The app wires
        #: it to pub/sub (status events); the engine knows nothing about who listens.
        self.on_transition: Callable[[Job, State | None, State, int], None] | None = None
        #: called with a queue's name when one of its running jobs stops running and the
        #: queue has a QUEUE.LIMIT (a concurrency slot may have freed); never during replay
        self.on_slot_freed: Callable[[str], None] | None = None

    def _commit(self, record: Record) -> None:
        """Apply and log a record that moves no job through its lifecycle (queues, batches,
        cron, deletes, restores); a record about one job's state goes through `_commit_job`,
        which tells `on_transition`."""
        body = encoded(record)
        self._apply(record)
        self.sink(body)

    def _commit_job(self, job: Job, record: Record) -> None:
        """`_commit` for a record about `job`, which the caller already holds: no lookup by id
        and none of `_apply`'s tests for other kinds of record (every job's lease and ack
        come this way)."""
        body = encoded(record)
        old = job.state
        self._apply_to_job(record["op"], job, record)
        self.sink(body)
        hook = self.on_transition
        if hook is not None and job.state is not old:
            hook(job, old, job.state, record["now"])
        if (old is RUNNING and job.state is not RUNNING and self.on_slot_freed is not None
                and self.queues[job.queue].limit is not None):
            self.on_slot_freed(job.queue)

    def replay(self, records: Iterable[Record | Sequence[Any]]) -> int:
        """Rebuild state from logged records (crash recovery); returns how many were applied.

        Puts, most of any log, are arrays (`["put", version, *job fields]`, see
        `records.put_record`) that go straight to `_apply_put`; every other record is a dict
        for `_apply`. Records read from disk come through `records.decode_record`, which has
        upgraded them to the current version."""
        count = 0
        apply, apply_put, from_record = self._apply, self._apply_put, Job.from_record
        for record in records:
            if not isinstance(record, dict):
                apply_put(from_record(record[2:]))
            else:
                known = self._known_part(record)
                if known is not None:
                    apply(known)
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

    def _apply(self, r: Record) -> None:
        op = r["op"]
        if op in _JOB_OPS:
            self._apply_to_job(op, self.jobs[r["id"]], r)
        elif op in ("pause", "resume"):
            self._queue(r["queue"]).paused = op == "pause"
        elif op == "limit":
            self._apply_limit(r)
        elif op == "counters":
            queue = self._queue(r["queue"])
            queue.processed, queue.failed = r["processed"], r["failed"]
        elif op == "delete":
            for job_id in r["ids"]:
                self._forget(self.jobs[job_id])
        elif op == "archive":
            for job_id in r["ids"]:
                self._forget(self.jobs[job_id], archived=True)
        elif op == "restore":
            self._apply_put(Job.from_record(r["job"]), restored=True)
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
            result = r["result"]
            if result is not None:  # and none before: JOB.RETRY clears a job's result
                job.result = result  # only then: see Job's docstring on rare fields
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
            job.finished_ms = 0
            # the rare fields go back to their defaults only if they left them (Job's docstring)
            if job.result is not None:
                self.used_memory -= bytes_size(job.result)
                job.result = None
            if job.reason:
                job.reason = ""
            if job.expire_ms:
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

    def _apply_limit(self, r: Record) -> None:
        """Set a queue's QUEUE.LIMIT; the rate window of leases made so far carries over."""
        queue = self._queue(r["queue"])
        limit = QueueLimit(r["concurrency"], r["rate"], r["per_ms"])
        old = queue.limit
        if old is not None:
            limit.window = old.window
            if old.timer is not None:
                self.timers.cancel(old.timer)
        queue.limit = None if limit.empty else limit

    def _forget(self, job: Job, *, archived: bool = False) -> None:
        """Drop a job from memory: deleted (purged), or moved to the archive, where a batch
        still counts it."""
        for timer in (job.timer, job.expire_timer):
            if timer is not None:
                self.timers.cancel(timer)
        job.timer = None  # the handles point back at the job: break cycles
        if job.expire_timer is not None:
            job.expire_timer = None
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
