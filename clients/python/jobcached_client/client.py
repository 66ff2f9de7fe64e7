"""`Client`: redis-py's `Redis` plus typed job, queue, dead-letter, batch and cron commands.

Every redis-py method works unchanged (`client.set("k", "v")`, `client.get("k")`,
`client.pipeline()`), because `Client` *is* a `redis.Redis`. The job commands live in
namespaces named after their command families, the way redis-py groups module commands
(`r.json().get(...)`): `client.jobs` (JOB.*), `client.queues` (QUEUE.*), `client.dlq`
(DLQ.*), `client.batches` (BATCH.*) and `client.cron` (CRON.*). They cannot sit on the client
itself, because `get` and `wait` already are redis-py's GET and WAIT there.
`client.events(...)` streams job state changes (see events.py).

    client = Client.from_url("jobcached://localhost:7380")
    job_id = client.jobs.push("emails", {"to": "ada@example.com"})
    client.jobs.wait(job_id, timeout=5).result

Arguments and replies are built and parsed in `commands.py`, shared with `AsyncClient`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal, cast

import redis

from jobcached_client import commands as cmd
from jobcached_client import sentinel
from jobcached_client.commands import Call, Callback, Duration, JobPage, Moment, R
from jobcached_client.events import JobEvents
from jobcached_client.model import (
    DEFAULT_SERIALIZER,
    Batch,
    CronEntry,
    Job,
    LogPage,
    QueueStats,
    State,
)
from jobcached_client.serializers import Serializer
from jobcached_client.urls import DEFAULT_PORT, DEFAULT_PROTOCOL, redis_url, sentinel_target

#: A client that never sees the server answer a blocking command gives up this long after
#: the server should have answered, when the connection has no socket timeout of its own.
BLOCKING_MARGIN_SECONDS = 5.0


def read_timeout(block_ms: int, socket_timeout: float | None) -> float | None:
    """How long to wait for a blocking command's reply (None: as long as it takes)."""
    if block_ms == 0:
        return None
    return block_ms / 1000 + (socket_timeout or BLOCKING_MARGIN_SECONDS)


class Client(redis.Redis):
    """A redis-py client for jobcached: RESP3 by default, port 7380, typed job commands."""

    def __init__(self, host: str = "localhost", port: int = DEFAULT_PORT, *,
                 serializer: Serializer | None = None, protocol: int | None = DEFAULT_PROTOCOL,
                 **kwargs: Any) -> None:
        super().__init__(host=host, port=port, protocol=protocol, **kwargs)
        self.serializer: Serializer = serializer or DEFAULT_SERIALIZER
        self.jobs = Jobs(self)
        self.queues = Queues(self)
        self.dlq = DeadLetters(self)
        self.batches = Batches(self)
        self.cron = Cron(self)

    @classmethod
    def from_url(cls, url: str, *, serializer: Serializer | None = None,
                 **kwargs: Any) -> Client:
        """`jobcached://[:password@]host[:port]`, `jobcached+unix:///path`, `unix:///path`,
        `jobcached+sentinel://host:port[,host:port...]/service[/db]` (the leader Sentinel
        names, followed across failovers: sentinel.py), or any URL redis-py takes. Keyword
        arguments go to the connection pool."""
        kwargs.setdefault("protocol", DEFAULT_PROTOCOL)
        target = sentinel_target(url)
        if target is not None:
            client = cls(connection_pool=sentinel.sync_pool(target, **kwargs))
            client.auto_close_connection_pool = True
        else:
            # redis-py builds `cls(...)` but declares its own class as the result
            client = cast(Client, super().from_url(redis_url(url), **kwargs))
        if serializer is not None:
            client.serializer = serializer
        return client

    def run(self, call: Call[R]) -> R:
        """Send one command built by `commands.py` and parse its reply."""
        if call.block_ms is None:
            # redis-py's Redis.execute_command is unannotated (untyped_calls_exclude does not
            # reach it through this subclass)
            return call.parse(self.execute_command(*call.args))  # type: ignore[no-untyped-call]
        return call.parse(self._execute_blocking(call))

    def get_or_compute(self, key: Any, fn: Callable[[], Any], ttl: Duration | None = None, *,
                       lease: Duration | None = None) -> Any:
        """The cached value of `key`, or `fn()` stored there (for `ttl` seconds) by exactly
        one of the callers that missed at once (GETL / SETL leases, against stampedes).

        The caller that gets the lease computes; the others wait and read again until the
        value is there or the lease runs out (after `lease` seconds, default the server's
        lease-ttl), when one of them gets the next lease. The value stored is what `fn`
        returned, as redis-py encodes it (bytes, str, int or float); a hit returns it as the
        server holds it (bytes, unless the client decodes responses). If a write or delete of
        the key invalidated the lease meanwhile, the computed value is returned but not
        stored: it may already be stale."""
        while True:
            kind, detail = self.run(cmd.getl(key, lease))
            if kind == "hit":
                return detail
            if kind == "lease":
                value = fn()
                self.run(cmd.setl(key, detail, value, ttl))
                return value
            time.sleep(cmd.lease_wait(detail))

    def events(self, job_id: str | None = None, queue: str | None = None, *,
               timeout: Duration | None = None) -> JobEvents:
        """The state changes of one job, of one queue's jobs, or (neither given) of every job,
        from now on; iteration ends after `timeout` seconds without one (None: never). Subscribed
        when this returns; use it as a context manager, or `close()` it."""
        return JobEvents(self, job_id, queue, timeout)

    def _execute_blocking(self, call: Call[Any]) -> Any:
        # redis-py reads every reply within socket_timeout (5 s by default); a blocking
        # command may legitimately take longer, so wait for its first byte separately.
        pool = self.connection_pool
        conn = self.connection or pool.get_connection()
        try:
            conn.send_command(*call.args)
            # None waits for ever: redis-py hands it to the socket's timeout, though it
            # annotates `timeout` as a float
            wait = read_timeout(call.block_ms or 0, conn.socket_timeout)
            if not conn.can_read(timeout=wait):  # type: ignore[arg-type]
                raise redis.TimeoutError(f"no reply to {call.args[0]} in time")
            return conn.read_response()
        except redis.ResponseError:
            raise
        except BaseException:
            conn.disconnect()  # a reply may still come: this connection is out of step
            raise
        finally:
            if self.connection is None:
                pool.release(conn)


class Jobs:
    """JOB.* commands: `client.jobs.push(...)`, `fetch`, `ack`, `fail`, `beat`, ..."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def push(self, queue: str, payload: Any, *, type: str | None = None,
             delay: Duration | None = None, at: Moment | None = None,
             priority: int | None = None, retries: int | None = None,
             backoff: tuple[Duration, Duration] | Duration | None = None,
             timeout: Duration | None = None, key: str | None = None,
             key_ttl: Duration | None = None, meta: Mapping[str, str] | None = None,
             after: str | Iterable[str] | None = None, batch: str | None = None,
             expire: Moment | None = None, replicas: int | None = None,
             replicas_timeout: Duration | None = None) -> str:
        """Create a job; its id. `type` defaults to the queue's name.

        Durations (`delay`, `backoff` base and max, `timeout` of a lease, `key_ttl`) are
        seconds or timedeltas; `at` and `expire` are datetimes or unix seconds.

        `after`: parent ids; the job waits until they have all succeeded (and is canceled if
        one ends otherwise). `batch`: an open batch's id. `expire`: cancel the job unless it
        has started by then. `replicas`: return only once that many followers have the job,
        waiting up to `replicas_timeout` seconds (the server's default: 1 s); a
        `redis.ResponseError` starting with `NOREPL` otherwise (the job is kept unless too
        few followers were connected: pass `key` to retry safely)."""
        return self._client.run(cmd.push(
            self._client.serializer, queue, payload, type=type, delay=delay, at=at,
            priority=priority, retries=retries, backoff=backoff, timeout=timeout, key=key,
            key_ttl=key_ttl, meta=meta, after=after, batch=batch, expire=expire,
            replicas=replicas, replicas_timeout=replicas_timeout))

    def push_many(self, queue: str, payloads: Iterable[Any], **options: Any) -> list[str]:
        """Push many jobs with the same options in one round trip (a pipeline)."""
        calls = [cmd.push(self._client.serializer, queue, p, **options) for p in payloads]
        with self._client.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.execute_command(*call.args)
            return [call.parse(reply) for call, reply in zip(calls, pipe.execute(), strict=True)]

    def fetch(self, queues: str | Iterable[str], *, count: int = 1,
              block: Duration | None = None, lease: Duration | None = None,
              worker: str | None = None) -> list[Job]:
        """Lease up to `count` jobs; with `block` (seconds, 0 = forever) wait for
        one; `lease` (seconds) overrides the job's own timeout."""
        return self._client.run(cmd.fetch(self._client.serializer, queues, count=count,
                                          block=block, lease=lease, worker=worker))

    def ack(self, job: Job | str, *, result: Any = None, token: str | None = None,
            replicas: int | None = None, replicas_timeout: Duration | None = None) -> None:
        """Complete a fetched job, storing `result` (serialized) unless it is None.
        `replicas`, `replicas_timeout`: as `push`'s."""
        self._client.run(cmd.ack(self._client.serializer, job, result=result, token=token,
                                 replicas=replicas, replicas_timeout=replicas_timeout))

    def fail(self, job: Job | str, message: str, *, token: str | None = None,
             errtype: str | None = None, trace: str | None = None,
             retry_in: Duration | None = None, noretry: bool = False,
             replicas: int | None = None, replicas_timeout: Duration | None = None) -> State:
        """Report a failed attempt; the state the job moved to (retrying or dead).
        `retry_in` (seconds) overrides the job's backoff for this retry. `replicas`,
        `replicas_timeout`: as `push`'s."""
        return self._client.run(cmd.fail(job, message, token=token, errtype=errtype,
                                         trace=trace, retry_in=retry_in, noretry=noretry,
                                         replicas=replicas, replicas_timeout=replicas_timeout))

    def beat(self, job: Job | str, *, token: str | None = None,
             extend: Duration | None = None) -> datetime | None:
        """Renew a lease: the new deadline (datetime), or None if the job was canceled.
        The lease then ends `extend` seconds from now (default: the job's timeout)."""
        return self._client.run(cmd.beat(job, token=token, extend=extend))

    def cancel(self, job_id: str) -> None:
        self._client.run(cmd.cancel(job_id))

    def retry(self, job_id: str) -> None:
        """Run a finished (succeeded, dead or canceled) job again now."""
        self._client.run(cmd.retry(job_id))

    def get(self, job_id: str) -> Job | None:
        return self._client.run(cmd.get(self._client.serializer, job_id))

    def wait(self, job_id: str, timeout: Duration | None = None) -> Job | None:
        """Block until the job is finished (None: forever); None if `timeout`
        seconds passed (0 also waits forever)."""
        return self._client.run(cmd.wait(self._client.serializer, job_id, timeout))

    def list(self, queue: str | None = None, state: State | str | None = None, *,
             count: int | None = None) -> Iterator[Job]:
        """Every job (of a queue, in a state), in creation order, `count` per round trip."""
        cursor = "0"
        while True:
            cursor, jobs = self.page(cursor, queue=queue, state=state, count=count)
            yield from jobs
            if cursor == "0":
                return

    def page(self, cursor: str = "0", *, queue: str | None = None,
             state: State | str | None = None,
             count: int | None = None) -> JobPage:
        """One JOB.LIST page: (next cursor, jobs); the cursor is "0" after the last page."""
        return self._client.run(cmd.list_page(self._client.serializer, cursor, queue=queue,
                                              state=state, count=count))

    def log(self, job: Job | str, *lines: str | bytes, token: str | None = None) -> int:
        """Append lines (one argument, one line) to the log of a job you are running; the
        number the next line will get. Needs the lease: a fetched Job, or token=."""
        return self._client.run(cmd.log(job, lines, token=token))

    def logs(self, job_id: str, *, start: int = 0, count: int | None = None,
             block: Duration | None = None) -> LogPage:
        """Lines of a job's log from line `start` (negative: from the end), at most `count`
        (1000 by default). With `block` (seconds, 0 = forever), wait for lines when there are
        none yet and the job has not finished. Lines are str; bytes that are not UTF-8 read as
        U+FFFD."""
        return self._client.run(cmd.logs(job_id, start=start, count=count, block=block))

    def follow(self, job_id: str, *, start: int = 0, block: Duration = 5.0) -> Iterator[str]:
        """A job's log lines as they are logged, until the job has finished (`tail -f`).
        Each request waits up to `block` seconds for new lines, then asks again."""
        while True:
            page = self.logs(job_id, start=start, block=block)
            yield from page.lines
            if page.last:
                return
            start = page.next


class Queues:
    """QUEUE.* commands."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[str]:
        """The names of all queues that have held a job, sorted."""
        return self._client.run(cmd.queue_list())

    def stats(self, queue: str) -> QueueStats:
        return self._client.run(cmd.queue_stats(queue))

    def pause(self, queue: str) -> None:
        self._client.run(cmd.queue_pause(queue))

    def resume(self, queue: str) -> None:
        self._client.run(cmd.queue_resume(queue))

    def limit(self, queue: str, *, concurrency: int | None = None, rate: int | None = None,
              per: Duration | None = None) -> dict[str, int]:
        """Throttle a queue (QUEUE.LIMIT): at most `concurrency` of its jobs running at once,
        at most `rate` leased per `per` (seconds or timedelta); 0 removes a limit, None leaves
        it. Returns the limits in force: concurrency, rate, rate_per_ms (0: none)."""
        return self._client.run(cmd.queue_limit(queue, concurrency=concurrency, rate=rate, per=per))

    def purge(self, queue: str) -> int:
        """Delete the jobs waiting to run; how many."""
        return self._client.run(cmd.queue_purge(queue))


class DeadLetters:
    """DLQ.* commands."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, queue: str | None = None, count: int | None = None) -> list[Job]:
        """Dead jobs, oldest first (at most `count`, 100 by default)."""
        return self._client.run(cmd.dlq_list(self._client.serializer, queue, count))

    def requeue(self, job_id: str) -> int:
        """Queue one dead job again: 1, or 0 if it is not dead."""
        return self._client.run(cmd.dlq_requeue(job_id))

    def requeue_all(self, queue: str | None = None) -> int:
        return self._client.run(cmd.dlq_requeue_all(queue))

    def purge(self, queue: str | None = None, older: Duration | None = None) -> int:
        """Delete dead jobs (of a queue, dead for more than `older` seconds); how
        many."""
        return self._client.run(cmd.dlq_purge(queue, older))


class Batches:
    """BATCH.* commands: jobs grouped so that one job runs once they have all ended."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def new(self, *, on_success: Callback | None = None,
            on_complete: Callback | None = None) -> str:
        """Open a batch; its id. Push its jobs with `batch=id`, then `commit` it. Callbacks
        are (queue, payload): pushed once every member succeeded, or ended, respectively."""
        return self._client.run(cmd.batch_new(self._client.serializer, on_success,
                                              on_complete))

    def commit(self, batch_id: str) -> None:
        """Close the batch to new jobs: its callbacks can fire from now on."""
        self._client.run(cmd.batch_commit(batch_id))

    def get(self, batch_id: str) -> Batch | None:
        return self._client.run(cmd.batch_get(batch_id))


class Cron:
    """CRON.* commands: jobs pushed by the server on a schedule."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def set(self, name: str, expression: str, queue: str, payload: Any, *,
            tz: str | None = None, missed: Literal["skip", "once"] | None = None,
            type: str | None = None, priority: int | None = None, retries: int | None = None,
            backoff: tuple[Duration, Duration] | Duration | None = None,
            timeout: Duration | None = None, meta: Mapping[str, str] | None = None) -> None:
        """Create or replace the entry `name`: push a job on every slot of `expression`
        (5 fields, 6 with seconds first, or @daily...) in time zone `tz` (UTC by default)."""
        self._client.run(cmd.cron_set(
            self._client.serializer, name, expression, queue, payload, tz=tz, missed=missed,
            type=type, priority=priority, retries=retries, backoff=backoff, timeout=timeout,
            meta=meta))

    def delete(self, name: str) -> bool:
        """Delete an entry (not the jobs it pushed); whether it existed."""
        return self._client.run(cmd.cron_del(name))

    def get(self, name: str) -> CronEntry | None:
        return self._client.run(cmd.cron_get(self._client.serializer, name))

    def list(self) -> list[CronEntry]:
        """Every entry, by name."""
        return self._client.run(cmd.cron_list(self._client.serializer))

    def pause(self, name: str) -> None:
        """Stop firing the entry; slots that pass meanwhile are not owed later."""
        self._client.run(cmd.cron_pause(name))

    def resume(self, name: str) -> None:
        self._client.run(cmd.cron_resume(name))
