"""The job model: what a job is, which states follow which, and how retries are spaced.

Rule 1 (h11's rule for its state machine): everything that decides whether a job may move from
one state to another lives in `TRANSITIONS`, in this file. The engine asks `next_state(job,
event)` and gets either the new state or a `JobStateError` that becomes `-ERR job <id> is
<state>`; it never compares states by hand.

    push ─┬─> pending ──due──> queued ──lease──> running ──ack──> succeeded
          └─> queued               ^                │ ├──fail/expire (retries left)──> retrying
                                   └─────due────────┼─┘                                  │
                                                    └──fail/expire (none left)──> dead    │
    cancel: pending, queued, running, retrying ──> canceled          retrying ──due──> queued
    retry:  succeeded, dead, canceled ──> queued
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from jobcached.errors import CommandError
from jobcached.jobs.records import dump_job

#: Jobs leased without a TIMEOUT get this lease (Faktory's reserve_for default is 30 min; a
#: shorter default notices dead workers sooner, and workers heartbeat anyway).
DEFAULT_LEASE_MS = 60_000
#: RETRIES default, as Sidekiq and Faktory.
DEFAULT_RETRIES = 25
#: How long an idempotency key is remembered by default.
DEFAULT_KEY_TTL_MS = 24 * 3600 * 1000
#: Errors kept per job: the newest ones; older ones are dropped (bounded history).
MAX_ERRORS_PER_JOB = 10
#: Longest error message and trace kept, in bytes; longer ones are cut with a marker.
MAX_ERROR_TEXT_BYTES = 16 * 1024


class State(enum.StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELED = "canceled"


TERMINAL = frozenset({State.SUCCEEDED, State.DEAD, State.CANCELED})


class Event(enum.StrEnum):
    DUE = "due"  # a delay, a backoff or a dependency wait is over
    LEASE = "lease"  # a worker fetched it
    ACK = "ack"
    BEAT = "beat"
    FAIL_RETRY = "fail-retry"  # failed (or lease expired) with retries left
    FAIL_DEAD = "fail-dead"  # failed with no retries left, or NORETRY
    CANCEL = "cancel"
    RETRY = "retry"  # JOB.RETRY / DLQ.REQUEUE: run a finished job again


#: event -> {state the job is in: state it moves to}. The only place that decides this.
TRANSITIONS: dict[Event, dict[State, State]] = {
    Event.DUE: {State.PENDING: State.QUEUED, State.RETRYING: State.QUEUED},
    Event.LEASE: {State.QUEUED: State.RUNNING},
    Event.ACK: {State.RUNNING: State.SUCCEEDED},
    Event.BEAT: {State.RUNNING: State.RUNNING},
    Event.FAIL_RETRY: {State.RUNNING: State.RETRYING},
    Event.FAIL_DEAD: {State.RUNNING: State.DEAD},
    Event.CANCEL: {State.PENDING: State.CANCELED, State.QUEUED: State.CANCELED,
                   State.RUNNING: State.CANCELED, State.RETRYING: State.CANCELED},
    Event.RETRY: {State.SUCCEEDED: State.QUEUED, State.DEAD: State.QUEUED,
                  State.CANCELED: State.QUEUED},
}


class JobStateError(CommandError):
    """The operation is not allowed in the job's current state; nothing changed."""

    def __init__(self, job_id: str, state: State) -> None:
        super().__init__(f"job {job_id} is {state.value}")


def next_state(job: Job, event: Event) -> State:
    """The state `event` moves `job` to, or JobStateError."""
    target = TRANSITIONS[event].get(job.state)
    if target is None:
        raise JobStateError(job.id, job.state)
    return target


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times a job is retried and how long to wait before each retry.

    Without `backoff_ms`: Sidekiq and Faktory's curve, `15 + n^4 + rand(0, 30*(n+1))` seconds
    before retry n (n = 0 for the first retry). With `backoff_ms=(base, cap)`: `base * 2^n`
    capped at `cap`, with full jitter (a uniform draw between 0 and that), which spreads a
    thundering herd of failures best (AWS architecture blog, "Exponential Backoff And Jitter").
    The random source is passed in, so tests and replays are deterministic.
    """

    retries: int = DEFAULT_RETRIES
    backoff_ms: tuple[int, int] | None = None

    def delay_ms(self, retry_number: int, rng: random.Random) -> int:
        n = retry_number
        if self.backoff_ms is None:
            return (15 + n**4 + rng.randint(0, 30 * (n + 1))) * 1000
        base, cap = self.backoff_ms
        ceiling = min(cap, base * 2 ** min(n, 62))
        return rng.randint(0, ceiling)

    def __repr__(self) -> str:
        shape = "sidekiq" if self.backoff_ms is None else f"base={self.backoff_ms[0]}ms " \
                                                         f"cap={self.backoff_ms[1]}ms"
        return f"RetryPolicy(retries={self.retries}, {shape})"


#: The policy of a job pushed without RETRIES or BACKOFF: frozen, so every such job shares it.
DEFAULT_POLICY = RetryPolicy()
#: The META of a job pushed without any: one read-only empty mapping shared by all of them
#: (an empty dict of its own was 64 bytes of every job; a job's META never changes).
NO_META: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True)
class PushOptions:
    """The optional parts of JOB.PUSH (also what cron entries and batch callbacks push)."""

    type: str | None = None
    priority: int = 0
    delay_ms: int | None = None
    at_ms: int | None = None
    retry: RetryPolicy = DEFAULT_POLICY
    timeout_ms: int | None = None
    key: str | None = None
    key_ttl_ms: int = DEFAULT_KEY_TTL_MS
    meta: dict[str, str] = field(default_factory=dict)
    after: list[str] = field(default_factory=list)  # parent job ids
    batch: str | None = None
    expire_ms: int | None = None


class Job:
    """One job. Times are unix milliseconds; 0 means 'not yet'.

    Memory (a million queued jobs is a normal day): the fields every job uses are slots; the
    ones most jobs never set (errors, result, idempotency key, META, AFTER parents, batch,
    EXPIRE, logs, the cancel reason, the retry budget's base, the EXPIRE timer) are class
    attributes holding their defaults, and a job that sets one gets an instance `__dict__`
    for it then. That is 13 slots, 104 bytes, less per job than a slot for each (Python
    creates an object's `__dict__` on its first attribute outside the slots, not before).
    Assigning a default to one of them would create the dict for nothing, so the code that
    builds jobs (`from_record`) assigns only what differs from the default.
    """

    __slots__ = ("__dict__", "attempt", "created_ms", "deadline_ms", "enqueued_ms",
                 "finished_ms", "id", "payload", "priority", "queue", "ready_entries", "retry",
                 "run_at_ms", "started_ms", "state", "timeout_ms", "timer", "token", "type",
                 "worker")

    id: str
    queue: str
    type: str
    payload: bytes
    state: State
    priority: int
    attempt: int  # how many times it has been leased
    retry: RetryPolicy
    timeout_ms: int
    run_at_ms: int
    created_ms: int
    enqueued_ms: int  # when it last became queued (queue lag, wait-time metrics)
    started_ms: int
    finished_ms: int
    token: str
    deadline_ms: int
    worker: str
    # not persisted: where the engine filed it
    ready_entries: int  # its entries in the ready lists
    timer: Any

    # Set by few jobs: class-level defaults (see the class docstring). errors, parents and
    # logs are then the shared empty tuple, not a list of their own, which the garbage
    # collector would track and scan for every job (its full collections pause the loop for
    # time proportional to the tracked objects).
    errors: Sequence[dict[str, Any]] = ()
    result: bytes | None = None
    key: str | None = None
    key_expires_ms: int = 0
    meta: Mapping[str, str] = NO_META
    reason: str = ""  # why it was canceled, if it was
    retry_base: int = 0  # attempts before the last JOB.RETRY / DLQ.REQUEUE: the budget restarts
    parents: Sequence[str] = ()  # AFTER: runs once all of these succeeded
    batch: str = ""  # the batch it belongs to, if any
    expire_ms: int = 0  # EXPIRE: canceled as `expired` if not started by then (0 = never)
    logs: Sequence[bytes] = ()  # JOB.LOG lines still kept (the newest)
    log_base: int = 0  # how many older lines were dropped: logs[0] is line number log_base
    log_bytes: int = 0  # sum of len(line) over logs (not persisted)
    expire_timer: Any = None  # (not persisted)

    def __init__(self, id: str, queue: str, type: str, payload: bytes, state: State, *,
                 priority: int = 0, attempt: int = 0, retry: RetryPolicy = DEFAULT_POLICY,
                 timeout_ms: int = DEFAULT_LEASE_MS, run_at_ms: int = 0, created_ms: int = 0,
                 enqueued_ms: int = 0, started_ms: int = 0, finished_ms: int = 0,
                 errors: Sequence[dict[str, Any]] = (), result: bytes | None = None,
                 key: str | None = None, key_expires_ms: int = 0,
                 meta: Mapping[str, str] = NO_META, token: str = "", deadline_ms: int = 0,
                 worker: str = "", reason: str = "", retry_base: int = 0,
                 parents: Sequence[str] = (), batch: str = "", expire_ms: int = 0,
                 logs: Sequence[bytes] = (), log_base: int = 0) -> None:
        """Every field by name (tests and tools); the engine builds jobs with `from_record`."""
        self.id, self.queue, self.type, self.payload, self.state = id, queue, type, payload, state
        self.priority, self.attempt, self.retry, self.timeout_ms = (priority, attempt, retry,
                                                                    timeout_ms)
        self.run_at_ms, self.created_ms, self.enqueued_ms = run_at_ms, created_ms, enqueued_ms
        self.started_ms, self.finished_ms = started_ms, finished_ms
        self.token, self.deadline_ms, self.worker = token, deadline_ms, worker
        self.ready_entries, self.timer = 0, None
        self._set_rare(errors, result, key, key_expires_ms, meta, reason, retry_base, parents,
                       batch, expire_ms, logs, log_base)

    def _set_rare(self, errors: Sequence[dict[str, Any]], result: bytes | None,
                  key: str | None, key_expires_ms: int, meta: Mapping[str, str], reason: str,
                  retry_base: int, parents: Sequence[str], batch: str, expire_ms: int,
                  logs: Sequence[bytes], log_base: int) -> None:
        """The rarely set fields that differ from their defaults (copies of the containers,
        which the job must not share with its caller)."""
        if errors:
            self.errors = list(errors)
        if result is not None:
            self.result = result
        if key is not None:
            self.key = key
        if key_expires_ms:
            self.key_expires_ms = key_expires_ms
        if meta:
            self.meta = dict(meta)
        if reason:
            self.reason = reason
        if retry_base:
            self.retry_base = retry_base
        if parents:
            self.parents = tuple(parents)
        if batch:
            self.batch = batch
        if expire_ms:
            self.expire_ms = expire_ms
        if logs:
            self.logs = list(logs)
            self.log_bytes = sum(map(len, logs))
        if log_base:
            self.log_base = log_base

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, queue={self.queue!r}, state={self.state.value})"

    @property
    def retries_done(self) -> int:
        """Retries used since the job was last (re)queued by hand: a requeued dead job gets
        its full RETRIES again, while `attempt` keeps counting every run."""
        return max(0, self.attempt - self.retry_base - 1)

    def add_error(self, error: dict[str, Any]) -> None:
        self.errors = [*self.errors, error][-MAX_ERRORS_PER_JOB:]

    def add_log_lines(self, lines: list[bytes], max_lines: int, max_bytes: int) -> None:
        """Append JOB.LOG lines, dropping the oldest past either bound (`log_base` counts
        them, so line numbers stay stable for readers that follow with FROM)."""
        logs = self.logs if isinstance(self.logs, list) else list(self.logs)
        logs.extend(lines)
        self.logs = logs
        self.log_bytes += sum(map(len, lines))
        drop = 0
        while len(logs) - drop > max_lines or (self.log_bytes > max_bytes and drop < len(logs)):
            self.log_bytes -= len(logs[drop])
            drop += 1
        if drop:
            del logs[:drop]
            self.log_base += drop

    def log_page(self, start: int, count: int) -> tuple[int, list[bytes]]:
        """Lines from line number `start` on, at most `count`: (next line number, lines). A
        reader that asks for lines already dropped gets a marker line saying how many."""
        lines: list[bytes] = []
        if start < self.log_base:
            lines.append(f"[{self.log_base - start} earlier lines dropped: the log keeps the "
                         f"newest lines only]".encode())
            start = self.log_base
        taken = self.logs[start - self.log_base:start - self.log_base + count]
        lines.extend(taken)
        return start + len(taken), lines

    def to_record(self) -> list[Any]:
        """Everything durable about the job, in the order of `records.JOB` (the function is
        generated from that declaration). Snapshots, restores and the archive use it; a push
        builds its record with `records.job_record` instead, and the job from that."""
        return dump_job(self)

    @classmethod
    def from_record(cls, r: Sequence[Any]) -> Job:
        """The job `to_record()` described (`records.JOB`'s fields, in its order: the
        round-trip tests check that this unpacking matches it).

        Crash recovery calls this once per job, a million times for a big log, and so does
        every push, so it skips `__init__` (34 arguments) and unpacks the record straight into
        the slots; every slot is set below (tests check it). The default retry policy is one
        dict lookup; the rarely set fields are looked at one by one only when one of them is
        set (`_set_rare`).
        """
        job = _new_object(cls)
        (job.id, job.queue, job.type, job.payload, state, job.priority, job.attempt, retries,
         backoff, job.timeout_ms, job.run_at_ms, job.created_ms, job.enqueued_ms,
         job.started_ms, job.finished_ms, errors, result, key, key_expires, meta,
         job.token, job.deadline_ms, job.worker, reason, retry_base, parents, batch,
         expire, logs, log_base) = r
        job.state = _STATES[state]
        policy = _POLICIES.get((retries, None)) if backoff is None else None
        job.retry = policy or retry_policy(retries, backoff)
        job.ready_entries = 0
        job.timer = None
        if (errors or result is not None or key is not None or meta or reason or parents
                or batch or expire or logs or log_base or retry_base or key_expires):
            job._set_rare(errors, result, key, key_expires, meta, reason, retry_base, parents,
                          batch, expire, logs, log_base)
        return job


_new_object = object.__new__
_STATES = {state.value: state for state in State}
_POLICIES: dict[tuple[int, tuple[int, int] | None], RetryPolicy] = {}


def retry_policy(retries: int, backoff: list[int] | tuple[int, int] | None) -> RetryPolicy:
    """A shared RetryPolicy: jobs mostly use a handful of policies, so replay builds each once."""
    key = (retries, (backoff[0], backoff[1]) if backoff else None)
    policy = _POLICIES.get(key)
    if policy is None:
        if len(_POLICIES) > 10_000:
            _POLICIES.clear()  # many distinct policies: stop caching rather than grow
        policy = _POLICIES[key] = RetryPolicy(*key)
    return policy


def clip_text(text: str, limit: int = MAX_ERROR_TEXT_BYTES) -> str:
    """Bound an error message or trace, saying that it was cut."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore") + f"... [{len(raw) - limit} bytes cut]"


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IdGenerator:
    """ULIDs: 48-bit millisecond time + 80 random bits, Crockford base32, 26 characters.

    Sortable by creation time, URL-safe, and monotonic within one millisecond (the random part
    is incremented, as the ULID spec's monotonic factory does), so ids also order JOB.LIST.

    An increment within a millisecond usually changes only the last two characters (the low
    10 bits), so the other 24 are kept in `_head` and formatted again only when they change:
    a busy server makes many ids per millisecond, and formatting all 26 was about a sixth
    of a push's bytecodes.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._last_ms = -1
        self._last_rand = 0
        self._prefix = ""  # the time part, 10 characters
        self._head = ""  # all but the last 2 characters of the last id

    def resume_after(self, last_id: str) -> None:
        """Continue after an id already in use (after replay), so a restart within the same
        millisecond, or with the clock stepped back, never reissues an id."""
        value = 0
        for char in last_id:
            value = (value << 5) | _CROCKFORD.index(char)
        last_ms, last_rand = value >> 80, value & ((1 << 80) - 1)
        if (last_ms, last_rand) > (self._last_ms, self._last_rand):
            self._last_ms, self._last_rand = last_ms, last_rand
            self._prefix = _base32(last_ms, 5)
            self._head = self._prefix + _base32(last_rand >> 10, 7)

    def new(self, now_ms: int) -> str:
        if now_ms <= self._last_ms:
            rand = self._last_rand = self._last_rand + 1
            if rand & 1023:  # no carry out of the last two characters
                return self._head + _PAIRS[rand & 1023]
        else:
            self._last_ms = now_ms
            rand = self._last_rand = self._rng.getrandbits(79)  # headroom: never wraps
            self._prefix = _base32(now_ms, 5)  # the time part changes once per millisecond
        self._head = self._prefix + _base32(rand >> 10, 7)
        return self._head + _PAIRS[rand & 1023]


#: Every pair of Crockford characters, indexed by 10 bits: half as many steps per id.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


def _base32(value: int, pairs: int) -> str:
    """`value` as 2 * `pairs` Crockford base32 characters, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(10 * pairs - 10, -1, -10)])
