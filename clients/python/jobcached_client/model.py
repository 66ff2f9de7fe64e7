"""What the job commands return, as Python values: `Job`, `JobError`, `QueueStats`, `State`,
`LogPage`, `Batch`, `CronEntry` and `JobEvent`.

The server sends jobs as maps (RESP3) or flat key/value arrays (RESP2), with bytes or, under
`decode_responses=True`, str. The parsers here accept all four shapes, so the typed API works
whatever protocol the connection speaks. Times are unix milliseconds on the wire and aware UTC
`datetime`s here; a time the job has not reached yet (0 on the wire) is None.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from jobcached_client.serializers import JSONSerializer, Serializer

DEFAULT_SERIALIZER = JSONSerializer()


class State(enum.StrEnum):
    """A job's state, as the server names it (see the server's transition table)."""

    PENDING = "pending"  # waiting for DELAY / AT
    QUEUED = "queued"  # ready to be fetched
    RUNNING = "running"  # leased to a worker
    RETRYING = "retrying"  # failed, waiting for its backoff
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # retries exhausted (or NORETRY): in the dead-letter queue
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in (State.SUCCEEDED, State.DEAD, State.CANCELED)


def text(value: Any) -> str:
    """A reply value as str (bytes are UTF-8; undecodable bytes survive as surrogates)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def raw(value: Any) -> bytes | None:
    """A reply value as bytes, whether the connection decodes responses or not."""
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def as_map(reply: Any) -> dict[str, Any]:
    """A map reply (RESP3 dict, or RESP2 flat pairs) with str keys."""
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2],
                                                             strict=True)
    return {k.decode() if type(k) is bytes else k: v for k, v in pairs}


def moment(ms: Any) -> datetime | None:
    """A unix-ms time from the wire; 0 means "not yet"."""
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC) if ms else None


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _seconds_pair(reply: Any) -> tuple[float, float] | None:
    """A (base, max) backoff from the wire's milliseconds; None when the server has none."""
    if not reply:
        return None
    base, cap = (int(v) / 1000 for v in reply)
    return base, cap


def is_ok(reply: Any) -> bool:
    """An `OK` status in any of redis-py's shapes (b"OK", "OK", True)."""
    return reply is True or text(reply) == "OK"


@dataclass(frozen=True)
class JobError:
    """One failed attempt, newest last in `Job.errors`."""

    type: str
    message: str
    trace: str
    time: datetime | None
    attempt: int

    @classmethod
    def from_reply(cls, reply: Any) -> JobError:
        m = as_map(reply)
        return cls(text(m.get("type")), text(m.get("message")), text(m.get("trace")),
                   moment(m.get("time")), int(m.get("attempt") or 0))


@dataclass(eq=False)
class Job:
    """A job as JOB.FETCH (with `token`) or JOB.GET / JOB.WAIT / JOB.LIST (everything) show it.

    `payload` and `result` are decoded with the client's serializer on first access;
    `raw_payload` and `raw_result` are the bytes the server holds.
    """

    id: str
    queue: str
    type: str
    state: State
    raw_payload: bytes
    attempt: int
    priority: int
    meta: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # the lease, for ack / fail / beat (fetched jobs only)
    deadline: datetime | None = None  # when the lease runs out unless renewed
    raw_result: bytes | None = None
    retries: int | None = None
    timeout_ms: int | None = None
    run_at: datetime | None = None
    created: datetime | None = None
    enqueued: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    worker: str | None = None
    key: str | None = None
    reason: str | None = None
    errors: list[JobError] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # the parents it waits for (AFTER)
    batch: str | None = None
    expire: datetime | None = None  # canceled as `expired` unless started by then
    log_lines: int = 0  # lines logged so far (JOB.LOG), also those dropped for space
    serializer: Serializer = field(default=DEFAULT_SERIALIZER, repr=False)

    @cached_property
    def payload(self) -> Any:
        return self.serializer.loads(self.raw_payload)

    @cached_property
    def result(self) -> Any:
        return None if self.raw_result is None else self.serializer.loads(self.raw_result)

    @classmethod
    def from_reply(cls, reply: Any, serializer: Serializer) -> Job:
        m = as_map(reply)
        meta = as_map(m.get("meta") or {})
        job = cls(
            id=text(m["id"]), queue=text(m["queue"]), type=text(m["type"]),
            state=State(text(m["state"])) if "state" in m else State.RUNNING,
            raw_payload=raw(m["payload"]) or b"", attempt=int(m["attempt"]),
            priority=int(m["priority"]), meta={k: text(v) for k, v in meta.items()},
            token=text(m["token"]) if "token" in m else None,
            deadline=moment(m.get("deadline")), serializer=serializer)
        if "state" in m:  # a full JOB.GET map
            job.raw_result = raw(m.get("result"))
            job.retries = int(m["retries"])
            job.timeout_ms = int(m["timeout"])
            job.run_at, job.created = moment(m.get("run_at")), moment(m.get("created"))
            job.enqueued, job.started = moment(m.get("enqueued")), moment(m.get("started"))
            job.finished = moment(m.get("finished"))
            job.worker = text(m.get("worker")) or None
            job.key = text(m["key"]) if m.get("key") is not None else None
            job.reason = text(m.get("reason")) or None
            job.errors = [JobError.from_reply(e) for e in m.get("errors") or []]
            job.after = [text(parent) for parent in m.get("after") or []]
            job.batch = text(m.get("batch")) or None
            job.expire = moment(m.get("expire"))
            job.log_lines = int(m.get("log_lines") or 0)
        return job


def jobs_from(replies: Iterable[Any], serializer: Serializer) -> list[Job]:
    return [Job.from_reply(r, serializer) for r in replies]


@dataclass(frozen=True)
class QueueStats:
    """QUEUE.STATS: jobs per state, the queue's lag, totals, and whether it is paused."""

    pending: int = 0
    queued: int = 0
    running: int = 0
    retrying: int = 0
    succeeded: int = 0
    dead: int = 0
    canceled: int = 0
    oldest_queued_age_ms: int = 0
    processed: int = 0
    failed: int = 0
    paused: bool = False
    #: QUEUE.LIMIT's limits (0: none)
    concurrency: int = 0
    rate: int = 0
    rate_per_ms: int = 0

    @property
    def waiting(self) -> int:
        """Jobs not yet run to completion nor running: pending, queued and retrying."""
        return self.pending + self.queued + self.retrying

    @classmethod
    def from_reply(cls, reply: Any) -> QueueStats:
        m = as_map(reply)
        known = {f.name for f in fields(cls)}  # newer servers may send more
        values: dict[str, Any] = {k: int(v) for k, v in m.items() if k in known}
        values["paused"] = bool(values.get("paused", 0))
        return cls(**values)


def log_line(value: Any) -> str:
    """A log line as str. Logs are read by people, so bytes that are not UTF-8 become U+FFFD
    instead of failing the whole page."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@dataclass(frozen=True)
class LogPage:
    """JOB.LOGS: some lines of a job's log, where to read on, and the job's state."""

    next: int  # the `start` to ask for the lines after these
    lines: list[str]
    state: State

    @property
    def last(self) -> bool:
        """Nothing more will come: the job has finished and this page was empty."""
        return self.state.finished and not self.lines

    @classmethod
    def from_reply(cls, reply: Any) -> LogPage:
        m = as_map(reply)
        return cls(int(m["next"]), [log_line(line) for line in m["lines"]],
                   State(text(m["state"])))


@dataclass(frozen=True)
class Batch:
    """BATCH.GET: a batch's members per state and when its callbacks were pushed."""

    id: str
    created: datetime | None
    committed: bool
    total: int
    counts: dict[State, int]  # every State, 0 when no member is in it
    success_fired: datetime | None = None  # when the ONSUCCESS job was pushed
    complete_fired: datetime | None = None  # when the ONCOMPLETE job was pushed

    @property
    def ended(self) -> bool:
        """Committed and every member finished: what ONCOMPLETE waits for."""
        ended = sum(n for state, n in self.counts.items() if state.finished)
        return self.committed and ended == self.total

    @classmethod
    def from_reply(cls, reply: Any) -> Batch:
        m = as_map(reply)
        return cls(id=text(m["id"]), created=moment(m.get("created")),
                   committed=bool(int(m["committed"])), total=int(m["total"]),
                   counts={state: int(m.get(state.value) or 0) for state in State},
                   success_fired=moment(m.get("success_fired")),
                   complete_fired=moment(m.get("complete_fired")))


@dataclass(eq=False)
class CronEntry:
    """CRON.GET / CRON.LIST: a recurring job and when it fires next.

    `payload` is decoded with the client's serializer on first access.
    """

    name: str
    expression: str
    tz: str
    queue: str
    raw_payload: bytes
    missed: str  # "skip" or "once": what happens to slots missed while the server was down
    paused: bool
    next: datetime | None  # the next slot; None while paused
    last_slot: datetime | None
    last_job: str | None  # the id of the job the last slot pushed
    type: str
    priority: int
    retries: int | None = None
    # Seconds, as CRON.SET's arguments take them (the wire's milliseconds / 1000).
    backoff: tuple[float, float] | None = None  # (base, max); None: Sidekiq's curve
    timeout: float | None = None  # the lease; None: the server's job-default-timeout
    meta: dict[str, str] = field(default_factory=dict)
    serializer: Serializer = field(default=DEFAULT_SERIALIZER, repr=False)

    @cached_property
    def payload(self) -> Any:
        return self.serializer.loads(self.raw_payload)

    @classmethod
    def from_reply(cls, reply: Any, serializer: Serializer) -> CronEntry:
        m = as_map(reply)
        meta = as_map(m.get("meta") or {})
        return cls(name=text(m["name"]), expression=text(m["expression"]), tz=text(m["tz"]),
                   queue=text(m["queue"]), raw_payload=raw(m["payload"]) or b"",
                   missed=text(m["missed"]), paused=bool(int(m["paused"])),
                   next=moment(m.get("next")), last_slot=moment(m.get("last_slot")),
                   last_job=text(m.get("last_job")) or None, type=text(m["type"]),
                   priority=int(m["priority"]),
                   retries=None if m.get("retries") is None else int(m["retries"]),
                   backoff=_seconds_pair(m.get("backoff")),
                   timeout=None if m.get("timeout") is None else int(m["timeout"]) / 1000,
                   meta={k: text(v) for k, v in meta.items()}, serializer=serializer)


@dataclass(frozen=True)
class JobEvent:
    """One job state change, as published on `__job__:<id>` and `__queue__:<queue>`."""

    id: str
    queue: str
    old: State | None  # None: the job was just created
    new: State
    attempt: int
    time: datetime
    reason: str = ""  # why it was canceled: "expired", "parent <id> is dead", ...

    @classmethod
    def from_message(cls, data: bytes | str) -> JobEvent:
        event = json.loads(data)
        old = event["from"]
        return cls(id=event["id"], queue=event["queue"],
                   old=State(old) if old is not None else None, new=State(event["to"]),
                   attempt=int(event["attempt"]),
                   time=datetime.fromtimestamp(event["time"] / 1000, tz=UTC),
                   reason=event.get("reason", ""))
