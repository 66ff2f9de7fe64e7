"""The job, log, queue, dead-letter, batch and cron commands, each defined once for both
clients (sans-I/O).

A builder turns a Python call into a `Call`: the command's arguments, the function that turns
the server's reply into a Python value, and, for blocking commands, how long the server may
take. `Client` (sync) and `AsyncClient` only send `call.args`, read one reply and apply
`call.parse`; the wire syntax lives here alone (see protocol/SPEC.md, sections Jobs, Queues,
Dead letters, Cron and Batches). Job events, being pub/sub, are in `events.py`.

Durations are seconds (int or float) or `datetime.timedelta`, as in redis-py's blocking calls,
asyncio and RQ; points in time are `datetime` or unix seconds (what `time.time()` returns), as
redis-py's `exat`. The wire takes milliseconds: `ms` and `unix_ms` convert.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from jobcached_client.model import (
    Batch,
    CronEntry,
    Job,
    LogPage,
    QueueStats,
    State,
    as_map,
    is_ok,
    jobs_from,
    moment,
    text,
    to_ms,
)
from jobcached_client.serializers import Serializer, encode
from jobcached_client.tracing import producer_meta

#: A length of time: seconds (int or float) or a timedelta.
Duration = int | float | timedelta
#: A point in time: a datetime (naive means local time) or unix seconds.
Moment = int | float | datetime
#: One JOB.LIST page: (the next cursor, "0" after the last page; the jobs).
JobPage = tuple[str, list[Job]]
#: Unix seconds beyond this (year 5138) are surely milliseconds passed by mistake: refused.
MAX_UNIX_SECONDS = 10**11


#: what a command's reply parses into
R = TypeVar("R")


@dataclass(frozen=True)
class Call(Generic[R]):
    """One command to send and how to read its reply (an `R`)."""

    args: tuple[Any, ...]
    parse: Callable[[Any], R]
    #: None: an ordinary command. Otherwise the server may hold the reply this many ms
    #: (0 = forever), so the client must not give up after its usual socket timeout.
    block_ms: int | None = None


def ms(value: Duration, what: str) -> int:
    """A duration for the wire, in milliseconds. A positive duration never becomes 0 (which
    means "forever" to BLOCK and TIMEOUT): 0.0001 s is sent as 1 ms."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{what} must be seconds (int or float) or a timedelta, not {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} must be seconds >= 0 (int or float) or a timedelta, "
                         f"not {value!r}")
    millis = round(seconds * 1000)
    return 1 if millis == 0 and seconds > 0 else millis


def unix_ms(value: Moment, what: str) -> int:
    """A point in time for the wire: a datetime, or unix seconds, as unix milliseconds."""
    if isinstance(value, datetime):
        return to_ms(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and \
            value > MAX_UNIX_SECONDS:
        raise ValueError(f"{what}={value!r} looks like milliseconds: give unix seconds "
                         f"(as time.time() returns) or a datetime")
    return ms(value, what)


def lease_of(job: Job | str, token: str | None) -> tuple[str, str]:
    """The (id, token) pair that identifies one lease: from a fetched Job, or given."""
    if isinstance(job, Job):
        token = token or job.token
        job = job.id
    if not token:
        raise ValueError("a lease token is needed: pass a fetched Job, or token=")
    return job, token


def _none(reply: Any) -> None:
    if not is_ok(reply):
        raise ValueError(f"unexpected reply {reply!r}")


# --- jobs --------------------------------------------------------------------------------


def policy(type: str | None = None, priority: int | None = None, retries: int | None = None,
           backoff: tuple[Duration, Duration] | Duration | None = None,
           timeout: Duration | None = None) -> list[Any]:
    """The options JOB.PUSH and CRON.SET share: what a job is and how its attempts go."""
    args: list[Any] = []
    if type is not None:
        args += ["TYPE", type]
    if priority is not None:
        args += ["PRIORITY", int(priority)]
    if retries is not None:
        args += ["RETRIES", int(retries)]
    if backoff is not None:
        base, cap = backoff if isinstance(backoff, tuple) else (backoff, None)
        args += ["BACKOFF", ms(base, "backoff base")]
        if cap is not None:
            args.append(ms(cap, "backoff max"))
    if timeout is not None:
        args += ["TIMEOUT", ms(timeout, "timeout")]
    return args


#: The server's wait when REPLICAS comes without TIMEOUT (ms): how long a reply may take.
REPLICAS_DEFAULT_TIMEOUT_MS = 1000


def replicas_args(replicas: int | None,
                  replicas_timeout: Duration | None) -> tuple[list[Any], int | None]:
    """`REPLICAS n [TIMEOUT ms]` (the reply waits until n followers have the change), and how
    long the server may then hold the reply (None: no option, an ordinary command)."""
    if replicas is None:
        if replicas_timeout is not None:
            raise ValueError("replicas_timeout needs replicas")
        return [], None
    args: list[Any] = ["REPLICAS", int(replicas)]
    wait_ms = REPLICAS_DEFAULT_TIMEOUT_MS
    if replicas_timeout is not None:
        wait_ms = ms(replicas_timeout, "replicas_timeout")
        args += ["TIMEOUT", wait_ms]
    return args, wait_ms


def meta_args(meta: Mapping[str, str]) -> list[Any]:
    return [arg for name, value in meta.items() for arg in ("META", name, value)]


def push(serializer: Serializer, queue: str, payload: Any, *, type: str | None = None,
         delay: Duration | None = None, at: Moment | None = None, priority: int | None = None,
         retries: int | None = None, backoff: tuple[Duration, Duration] | Duration | None = None,
         timeout: Duration | None = None, key: str | None = None,
         key_ttl: Duration | None = None, meta: Mapping[str, str] | None = None,
         after: str | Iterable[str] | None = None, batch: str | None = None,
         expire: Moment | None = None, replicas: int | None = None,
         replicas_timeout: Duration | None = None) -> Call[str]:
    """JOB.PUSH queue payload [TYPE ...] [PRIORITY ...] [DELAY ms | AT unix-ms] [RETRIES ...]
    [BACKOFF base-ms [max-ms]] [TIMEOUT ms] [KEY ...] [KEYTTL ms] [META field value ...]
    [AFTER count id ...] [BATCH batch-id] [EXPIRE unix-ms] [REPLICAS n [TIMEOUT ms]]"""
    args: list[Any] = ["JOB.PUSH", queue, encode(serializer, payload),
                       *policy(type, priority, retries, backoff, timeout)]
    if delay is not None and at is not None:
        raise ValueError("give delay or at, not both")
    if delay is not None:
        args += ["DELAY", ms(delay, "delay")]
    if at is not None:
        args += ["AT", unix_ms(at, "at")]
    if key is not None:
        args += ["KEY", key]
    if key_ttl is not None:
        args += ["KEYTTL", ms(key_ttl, "key_ttl")]
    parents = [after] if isinstance(after, str) else list(after or ())
    if parents:  # the server refuses AFTER 0: no parents means no AFTER
        args += ["AFTER", len(parents), *parents]
    if batch is not None:
        args += ["BATCH", batch]
    if expire is not None:
        args += ["EXPIRE", unix_ms(expire, "expire")]
    # The producer's trace continues in the worker: its span context rides along in META
    # (when OpenTelemetry is installed and the caller did not set those keys itself).
    args += meta_args({**producer_meta(), **(meta or {})})
    sync, wait_ms = replicas_args(replicas, replicas_timeout)
    return Call((*args, *sync), text, wait_ms)


def fetch(serializer: Serializer, queues: str | Iterable[str], *, count: int = 1,
          block: Duration | None = None, lease: Duration | None = None,
          worker: str | None = None) -> Call[list[Job]]:
    """JOB.FETCH [COUNT n] [BLOCK ms] [LEASE ms] [WORKER id] QUEUES queue [queue ...]"""
    names = [queues] if isinstance(queues, str) else list(queues)
    if not names:
        raise ValueError("fetch needs at least one queue")
    args: list[Any] = ["JOB.FETCH", "COUNT", int(count)]
    block_ms = None
    if block is not None:
        block_ms = ms(block, "block")
        args += ["BLOCK", block_ms]
    if lease is not None:
        args += ["LEASE", ms(lease, "lease")]
    if worker:
        args += ["WORKER", worker]
    args += ["QUEUES", *names]
    return Call(tuple(args), lambda reply: jobs_from(reply, serializer), block_ms)


def ack(serializer: Serializer, job: Job | str, *, result: Any = None,
        token: str | None = None, replicas: int | None = None,
        replicas_timeout: Duration | None = None) -> Call[None]:
    """JOB.ACK id token [RESULT result] [REPLICAS n [TIMEOUT ms]]; a None result is not
    stored."""
    args: list[Any] = ["JOB.ACK", *lease_of(job, token)]
    if result is not None:
        args += ["RESULT", encode(serializer, result)]
    sync, wait_ms = replicas_args(replicas, replicas_timeout)
    return Call((*args, *sync), _none, wait_ms)


def fail(job: Job | str, message: str, *, token: str | None = None,
         errtype: str | None = None, trace: str | None = None,
         retry_in: Duration | None = None, noretry: bool = False,
         replicas: int | None = None, replicas_timeout: Duration | None = None) -> Call[State]:
    """JOB.FAIL id token message [ERRTYPE type] [TRACE trace] [RETRYIN ms | NORETRY]
    [REPLICAS n [TIMEOUT ms]]"""
    args: list[Any] = ["JOB.FAIL", *lease_of(job, token), message or "failed"]
    if errtype:
        args += ["ERRTYPE", errtype]
    if trace:
        args += ["TRACE", trace]
    if retry_in is not None and noretry:
        raise ValueError("give retry_in or noretry, not both")
    if retry_in is not None:
        args += ["RETRYIN", ms(retry_in, "retry_in")]
    if noretry:
        args.append("NORETRY")
    sync, wait_ms = replicas_args(replicas, replicas_timeout)
    return Call((*args, *sync), lambda reply: State(text(reply)), wait_ms)


def beat(job: Job | str, *, token: str | None = None,
         extend: Duration | None = None) -> Call[datetime | None]:
    """JOB.BEAT id token [EXTEND ms]: the new deadline, or None when the job was canceled."""
    args: list[Any] = ["JOB.BEAT", *lease_of(job, token)]
    if extend is not None:
        args += ["EXTEND", ms(extend, "extend")]
    return Call(tuple(args), lambda reply: None if text(reply) == "canceled" else moment(reply))


def cancel(job_id: str) -> Call[None]:
    return Call(("JOB.CANCEL", job_id), _none)


def retry(job_id: str) -> Call[None]:
    return Call(("JOB.RETRY", job_id), _none)


def get(serializer: Serializer, job_id: str) -> Call[Job | None]:
    return Call(("JOB.GET", job_id),
                lambda reply: None if reply is None else Job.from_reply(reply, serializer))


def wait(serializer: Serializer, job_id: str, timeout: Duration | None = None) -> Call[Job | None]:
    """JOB.WAIT id [TIMEOUT ms]: the finished job, or None on timeout (None or 0 = wait
    forever)."""
    timeout_ms = 0 if timeout is None else ms(timeout, "timeout")
    args: tuple[Any, ...] = ("JOB.WAIT", job_id)
    if timeout_ms:
        args += ("TIMEOUT", timeout_ms)
    return Call(args, lambda reply: None if reply is None else Job.from_reply(reply, serializer),
                timeout_ms)


def list_page(serializer: Serializer, cursor: str = "0", *, queue: str | None = None,
              state: State | str | None = None,
              count: int | None = None) -> Call[JobPage]:
    """JOB.LIST [QUEUE q] [STATE s] [CURSOR c] [COUNT n]: (next cursor, jobs); "0" = done."""
    args: list[Any] = ["JOB.LIST", "CURSOR", cursor]
    if queue is not None:
        args += ["QUEUE", queue]
    if state is not None:
        args += ["STATE", State(state).value]
    if count is not None:
        args += ["COUNT", int(count)]
    return Call(tuple(args), lambda reply: (text(reply[0]), jobs_from(reply[1], serializer)))


# --- job logs ----------------------------------------------------------------------------


def log(job: Job | str, lines: Sequence[str | bytes], *, token: str | None = None) -> Call[int]:
    """JOB.LOG id token line [line ...]: the number the next line will get."""
    if not lines:
        raise ValueError("log needs at least one line")
    return Call(("JOB.LOG", *lease_of(job, token), *lines), int)


def logs(job_id: str, *, start: int = 0, count: int | None = None,
         block: Duration | None = None) -> Call[LogPage]:
    """JOB.LOGS id [FROM n] [COUNT n] [BLOCK ms]: a `LogPage`; a negative start counts back
    from the end of the log."""
    args: list[Any] = ["JOB.LOGS", job_id]
    if start:
        args += ["FROM", int(start)]
    if count is not None:
        args += ["COUNT", int(count)]
    block_ms = None
    if block is not None:
        block_ms = ms(block, "block")
        args += ["BLOCK", block_ms]
    return Call(tuple(args), LogPage.from_reply, block_ms)


# --- queues ------------------------------------------------------------------------------


def queue_list() -> Call[list[str]]:
    return Call(("QUEUE.LIST",), lambda reply: [text(name) for name in reply])


def queue_stats(queue: str) -> Call[QueueStats]:
    return Call(("QUEUE.STATS", queue), QueueStats.from_reply)


def queue_pause(queue: str) -> Call[None]:
    return Call(("QUEUE.PAUSE", queue), _none)


def queue_resume(queue: str) -> Call[None]:
    return Call(("QUEUE.RESUME", queue), _none)


def queue_limit(queue: str, *, concurrency: int | None = None, rate: int | None = None,
                per: Duration | None = None) -> Call[dict[str, int]]:
    """QUEUE.LIMIT: 0 removes a limit, None leaves it as it is; `rate` jobs per `per`."""
    args: list[Any] = ["QUEUE.LIMIT", queue]
    if concurrency is not None:
        args += ["CONCURRENCY", concurrency]
    if rate is not None:
        if rate and per is None:
            raise ValueError("a rate needs `per`, the window it counts over")
        args += ["RATE", "NONE"] if not rate else ["RATE", rate, "PER", ms(per or 0, "per")]
    return Call(tuple(args), lambda reply: {k: int(v) for k, v in as_map(reply).items()})


def queue_purge(queue: str) -> Call[int]:
    return Call(("QUEUE.PURGE", queue), int)


# --- fill leases (GETL / SETL) ----------------------------------------------------------

#: How long a reader told to wait sleeps before it reads again, at most (seconds).
LEASE_POLL_SECONDS = 0.02


def getl(key: Any, lease: Duration | None = None) -> Call[tuple[str, Any]]:
    """GETL: ("hit", value), ("lease", token) or ("wait", seconds the lease has left)."""
    args: tuple[Any, ...] = ("GETL", key) if lease is None else ("GETL", key, "TTL",
                                                                   ms(lease, "lease"))

    def parse(reply: Any) -> tuple[str, Any]:
        if not isinstance(reply, list):
            return "hit", reply
        kind, detail = text(reply[0]), reply[1]
        return kind, detail if kind == "lease" else int(detail) / 1000

    return Call(args, parse)


def setl(key: Any, token: bytes, value: Any, ttl: Duration | None = None) -> Call[bool]:
    """SETL: True if the value was stored, False if the lease was no longer valid."""
    args: tuple[Any, ...] = ("SETL", key, token, value)
    if ttl is not None:
        args += ("PX", ms(ttl, "ttl"))
    return Call(args, lambda reply: reply is not None)


def lease_wait(seconds_left: float) -> float:
    """How long a reader told to wait sleeps before reading again."""
    return max(0.001, min(LEASE_POLL_SECONDS, seconds_left))


# --- dead letters ------------------------------------------------------------------------


def dlq_list(serializer: Serializer, queue: str | None = None,
             count: int | None = None) -> Call[list[Job]]:
    args: list[Any] = ["DLQ.LIST"]
    if queue is not None:
        args += ["QUEUE", queue]
    if count is not None:
        args += ["COUNT", int(count)]
    return Call(tuple(args), lambda reply: jobs_from(reply, serializer))


def dlq_requeue(job_id: str) -> Call[int]:
    return Call(("DLQ.REQUEUE", job_id), int)


def dlq_requeue_all(queue: str | None = None) -> Call[int]:
    args: tuple[Any, ...] = ("DLQ.REQUEUE", "ALL")
    if queue is not None:
        args += ("QUEUE", queue)
    return Call(args, int)


def dlq_purge(queue: str | None = None, older: Duration | None = None) -> Call[int]:
    args: list[Any] = ["DLQ.PURGE"]
    if queue is not None:
        args += ["QUEUE", queue]
    if older is not None:
        args += ["OLDER", ms(older, "older")]
    return Call(tuple(args), int)


# --- batches -----------------------------------------------------------------------------

#: A batch callback: the job (queue, payload) pushed when the batch succeeds or completes.
Callback = tuple[str, Any]


def batch_new(serializer: Serializer, on_success: Callback | None = None,
              on_complete: Callback | None = None) -> Call[str]:
    """BATCH.NEW [ONSUCCESS queue payload] [ONCOMPLETE queue payload]: the batch id."""
    args: list[Any] = ["BATCH.NEW"]
    for option, callback in (("ONSUCCESS", on_success), ("ONCOMPLETE", on_complete)):
        if callback is not None:
            queue, payload = callback
            args += [option, queue, encode(serializer, payload)]
    return Call(tuple(args), text)


def batch_commit(batch_id: str) -> Call[None]:
    return Call(("BATCH.COMMIT", batch_id), _none)


def batch_get(batch_id: str) -> Call[Batch | None]:
    return Call(("BATCH.GET", batch_id),
                lambda reply: None if reply is None else Batch.from_reply(reply))


# --- cron --------------------------------------------------------------------------------


def cron_set(serializer: Serializer, name: str, expression: str, queue: str, payload: Any, *,
             tz: str | None = None, missed: Literal["skip", "once"] | None = None,
             type: str | None = None, priority: int | None = None, retries: int | None = None,
             backoff: tuple[Duration, Duration] | Duration | None = None,
             timeout: Duration | None = None, meta: Mapping[str, str] | None = None) -> Call[None]:
    """CRON.SET name expression queue payload [TZ zone] [MISSED skip|once] [TYPE ...]
    [PRIORITY ...] [RETRIES ...] [BACKOFF base-ms [max-ms]] [TIMEOUT ms] [META field value ...]

    No producer trace context in META here, unlike `push`: the jobs are pushed later by the
    server, not as part of the caller's work."""
    args: list[Any] = ["CRON.SET", name, expression, queue, encode(serializer, payload),
                       *policy(type, priority, retries, backoff, timeout)]
    if tz is not None:
        args += ["TZ", tz]
    if missed is not None:
        args += ["MISSED", missed]
    args += meta_args(meta or {})
    return Call(tuple(args), _none)


def cron_del(name: str) -> Call[bool]:
    return Call(("CRON.DEL", name), bool)


def cron_get(serializer: Serializer, name: str) -> Call[CronEntry | None]:
    return Call(("CRON.GET", name),
                lambda reply: None if reply is None else CronEntry.from_reply(reply, serializer))


def cron_list(serializer: Serializer) -> Call[list[CronEntry]]:
    return Call(("CRON.LIST",), lambda reply: [CronEntry.from_reply(r, serializer)
                                               for r in reply])


def cron_pause(name: str) -> Call[None]:
    return Call(("CRON.PAUSE", name), _none)


def cron_resume(name: str) -> Call[None]:
    return Call(("CRON.RESUME", name), _none)
