"""`AsyncClient`: the same API as `Client`, on `redis.asyncio`.

    client = AsyncClient.from_url("jobcached://localhost:7380")
    job_id = await client.jobs.push("emails", {"to": "ada@example.com"})
    async for job in client.jobs.list(queue="emails"): ...
    async with client.events(queue="emails", timeout=5) as events:
        async for event in events: ...

Commands are built and parsed by `commands.py`, exactly as for the sync client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, cast

import redis
import redis.asyncio as aioredis
import redis.asyncio.connection as aioconnection
import redis.sentinel

from jobcached_client import commands as cmd
from jobcached_client import sentinel
from jobcached_client.client import Client, read_timeout
from jobcached_client.commands import Call, Callback, Duration, JobPage, Moment, R
from jobcached_client.events import AsyncJobEvents
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

#: Connection settings a sync client's pool holds that mean the same for an async one.
PORTABLE_SETTINGS = ("host", "port", "path", "db", "username", "password", "socket_timeout",
                     "socket_connect_timeout", "socket_keepalive", "client_name", "protocol",
                     "encoding", "encoding_errors", "decode_responses", "credential_provider",
                     # TLS (jobcacheds:// or ssl=True): the same certificates and checks
                     "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs",
                     "ssl_ca_data", "ssl_ca_path", "ssl_check_hostname", "ssl_min_version",
                     "ssl_ciphers", "ssl_password")


class AsyncClient(aioredis.Redis):
    """An asyncio redis-py client for jobcached: RESP3 by default, typed job commands."""

    def __init__(self, host: str = "localhost", port: int = DEFAULT_PORT, *,
                 serializer: Serializer | None = None, protocol: int | None = DEFAULT_PROTOCOL,
                 **kwargs: Any) -> None:
        super().__init__(host=host, port=port, protocol=protocol, **kwargs)
        self.serializer: Serializer = serializer or DEFAULT_SERIALIZER
        self.jobs = AsyncJobs(self)
        self.queues = AsyncQueues(self)
        self.dlq = AsyncDeadLetters(self)
        self.batches = AsyncBatches(self)
        self.cron = AsyncCron(self)

    @classmethod
    def from_url(cls, url: str, single_connection_client: bool = False,
                 auto_close_connection_pool: bool | None = None, *,
                 serializer: Serializer | None = None, **kwargs: Any) -> AsyncClient:
        """The URLs `Client.from_url` takes."""
        kwargs.setdefault("protocol", DEFAULT_PROTOCOL)
        target = sentinel_target(url)
        if target is not None:
            client = cls(connection_pool=sentinel.async_pool(target, **kwargs),
                         single_connection_client=single_connection_client)
            client.auto_close_connection_pool = True
        else:
            # redis-py builds `cls(...)` but declares its own class as the result
            client = cast(AsyncClient, super().from_url(
                redis_url(url), single_connection_client=single_connection_client,
                auto_close_connection_pool=auto_close_connection_pool, **kwargs))
        if serializer is not None:
            client.serializer = serializer
        return client

    @classmethod
    def like(cls, client: Client) -> AsyncClient:
        """An async client to the same server, with the same settings, as a sync one."""
        pool = client.connection_pool
        settings = {k: v for k, v in pool.connection_kwargs.items() if k in PORTABLE_SETTINGS}
        if isinstance(pool, redis.sentinel.SentinelConnectionPool):
            for where in ("host", "port"):  # the sentinels name the leader
                settings.pop(where, None)
            made = cls(connection_pool=sentinel.async_pool_like(pool, settings),
                       serializer=client.serializer)
            made.auto_close_connection_pool = True
            return made
        if issubclass(pool.connection_class, redis.UnixDomainSocketConnection):
            connection_class: type = aioconnection.UnixDomainSocketConnection
        elif issubclass(pool.connection_class, redis.SSLConnection):
            connection_class = aioconnection.SSLConnection
        else:
            connection_class = aioconnection.Connection
        async_pool = aioredis.ConnectionPool(connection_class=connection_class, **settings)
        made = cls(connection_pool=async_pool, serializer=client.serializer)
        made.auto_close_connection_pool = True
        return made

    async def run(self, call: Call[R]) -> R:
        """Send one command built by `commands.py` and parse its reply."""
        if call.block_ms is None:
            # redis-py's Redis.execute_command is unannotated (untyped_calls_exclude does not
            # reach it through this subclass)
            return call.parse(
                await self.execute_command(*call.args))  # type: ignore[no-untyped-call]
        return call.parse(await self._execute_blocking(call))

    async def get_or_compute(self, key: Any, fn: Callable[[], Awaitable[Any]],
                             ttl: Duration | None = None, *,
                             lease: Duration | None = None) -> Any:
        """As `Client.get_or_compute`, with `fn` a coroutine function."""
        while True:
            kind, detail = await self.run(cmd.getl(key, lease))
            if kind == "hit":
                return detail
            if kind == "lease":
                value = await fn()
                await self.run(cmd.setl(key, detail, value, ttl))
                return value
            await asyncio.sleep(cmd.lease_wait(detail))

    def events(self, job_id: str | None = None, queue: str | None = None, *,
               timeout: Duration | None = None) -> AsyncJobEvents:
        """As `Client.events`, but subscribed only when entered (`async with`) or first
        iterated: enter it before making the changes it should see."""
        return AsyncJobEvents(self, job_id, queue, timeout)

    async def _execute_blocking(self, call: Call[Any]) -> Any:
        # As Client._execute_blocking: the reply may take longer than socket_timeout.
        pool = self.connection_pool
        conn = self.connection or await pool.get_connection()
        try:
            await conn.send_command(*call.args)
            saved, conn.socket_timeout = conn.socket_timeout, None
            try:
                async with asyncio.timeout(read_timeout(call.block_ms or 0, saved)):
                    return await conn.read_response()
            except TimeoutError:
                raise redis.TimeoutError(f"no reply to {call.args[0]} in time") from None
            finally:
                conn.socket_timeout = saved
        except redis.ResponseError:
            raise
        except BaseException:
            await conn.disconnect()  # a reply may still come: this connection is out of step
            raise
        finally:
            if self.connection is None:
                await pool.release(conn)


class AsyncJobs:
    """JOB.* commands; see `client.Jobs`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def push(self, queue: str, payload: Any, *, type: str | None = None,
                   delay: Duration | None = None, at: Moment | None = None,
                   priority: int | None = None, retries: int | None = None,
                   backoff: tuple[Duration, Duration] | Duration | None = None,
                   timeout: Duration | None = None, key: str | None = None,
                   key_ttl: Duration | None = None,
                   meta: Mapping[str, str] | None = None,
                   after: str | Iterable[str] | None = None, batch: str | None = None,
                   expire: Moment | None = None, replicas: int | None = None,
                   replicas_timeout: Duration | None = None) -> str:
        return await self._client.run(cmd.push(
            self._client.serializer, queue, payload, type=type, delay=delay, at=at,
            priority=priority, retries=retries, backoff=backoff, timeout=timeout, key=key,
            key_ttl=key_ttl, meta=meta, after=after, batch=batch, expire=expire,
            replicas=replicas, replicas_timeout=replicas_timeout))

    async def push_many(self, queue: str, payloads: Iterable[Any], **options: Any) -> list[str]:
        calls = [cmd.push(self._client.serializer, queue, p, **options) for p in payloads]
        async with self._client.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.execute_command(*call.args)
            replies = await pipe.execute()
        return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]

    async def fetch(self, queues: str | Iterable[str], *, count: int = 1,
                    block: Duration | None = None, lease: Duration | None = None,
                    worker: str | None = None) -> list[Job]:
        return await self._client.run(cmd.fetch(self._client.serializer, queues, count=count,
                                                block=block, lease=lease, worker=worker))

    async def ack(self, job: Job | str, *, result: Any = None, token: str | None = None,
                  replicas: int | None = None,
                  replicas_timeout: Duration | None = None) -> None:
        await self._client.run(cmd.ack(self._client.serializer, job, result=result, token=token,
                                       replicas=replicas, replicas_timeout=replicas_timeout))

    async def fail(self, job: Job | str, message: str, *, token: str | None = None,
                   errtype: str | None = None, trace: str | None = None,
                   retry_in: Duration | None = None, noretry: bool = False,
                   replicas: int | None = None,
                   replicas_timeout: Duration | None = None) -> State:
        return await self._client.run(cmd.fail(job, message, token=token, errtype=errtype,
                                               trace=trace, retry_in=retry_in, noretry=noretry,
                                               replicas=replicas,
                                               replicas_timeout=replicas_timeout))

    async def beat(self, job: Job | str, *, token: str | None = None,
                   extend: Duration | None = None) -> datetime | None:
        return await self._client.run(cmd.beat(job, token=token, extend=extend))

    async def cancel(self, job_id: str) -> None:
        await self._client.run(cmd.cancel(job_id))

    async def retry(self, job_id: str) -> None:
        await self._client.run(cmd.retry(job_id))

    async def get(self, job_id: str) -> Job | None:
        return await self._client.run(cmd.get(self._client.serializer, job_id))

    async def wait(self, job_id: str, timeout: Duration | None = None) -> Job | None:
        return await self._client.run(cmd.wait(self._client.serializer, job_id, timeout))

    async def list(self, queue: str | None = None, state: State | str | None = None, *,
                   count: int | None = None) -> AsyncIterator[Job]:
        cursor = "0"
        while True:
            cursor, jobs = await self.page(cursor, queue=queue, state=state, count=count)
            for job in jobs:
                yield job
            if cursor == "0":
                return

    async def page(self, cursor: str = "0", *, queue: str | None = None,
                   state: State | str | None = None,
                   count: int | None = None) -> JobPage:
        return await self._client.run(cmd.list_page(self._client.serializer, cursor,
                                                    queue=queue, state=state, count=count))

    async def log(self, job: Job | str, *lines: str | bytes, token: str | None = None) -> int:
        return await self._client.run(cmd.log(job, lines, token=token))

    async def logs(self, job_id: str, *, start: int = 0, count: int | None = None,
                   block: Duration | None = None) -> LogPage:
        return await self._client.run(cmd.logs(job_id, start=start, count=count, block=block))

    async def follow(self, job_id: str, *, start: int = 0,
                     block: Duration = 5.0) -> AsyncIterator[str]:
        while True:
            page = await self.logs(job_id, start=start, block=block)
            for line in page.lines:
                yield line
            if page.last:
                return
            start = page.next


class AsyncQueues:
    """QUEUE.* commands; see `client.Queues`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> list[str]:
        return await self._client.run(cmd.queue_list())

    async def stats(self, queue: str) -> QueueStats:
        return await self._client.run(cmd.queue_stats(queue))

    async def pause(self, queue: str) -> None:
        await self._client.run(cmd.queue_pause(queue))

    async def resume(self, queue: str) -> None:
        await self._client.run(cmd.queue_resume(queue))

    async def limit(self, queue: str, *, concurrency: int | None = None, rate: int | None = None,
                    per: Duration | None = None) -> dict[str, int]:
        return await self._client.run(cmd.queue_limit(queue, concurrency=concurrency, rate=rate,
                                                      per=per))

    async def purge(self, queue: str) -> int:
        return await self._client.run(cmd.queue_purge(queue))


class AsyncDeadLetters:
    """DLQ.* commands; see `client.DeadLetters`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, queue: str | None = None, count: int | None = None) -> list[Job]:
        return await self._client.run(cmd.dlq_list(self._client.serializer, queue, count))

    async def requeue(self, job_id: str) -> int:
        return await self._client.run(cmd.dlq_requeue(job_id))

    async def requeue_all(self, queue: str | None = None) -> int:
        return await self._client.run(cmd.dlq_requeue_all(queue))

    async def purge(self, queue: str | None = None, older: Duration | None = None) -> int:
        return await self._client.run(cmd.dlq_purge(queue, older))


class AsyncBatches:
    """BATCH.* commands; see `client.Batches`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def new(self, *, on_success: Callback | None = None,
                  on_complete: Callback | None = None) -> str:
        return await self._client.run(cmd.batch_new(self._client.serializer, on_success,
                                                    on_complete))

    async def commit(self, batch_id: str) -> None:
        await self._client.run(cmd.batch_commit(batch_id))

    async def get(self, batch_id: str) -> Batch | None:
        return await self._client.run(cmd.batch_get(batch_id))


class AsyncCron:
    """CRON.* commands; see `client.Cron`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def set(self, name: str, expression: str, queue: str, payload: Any, *,
                  tz: str | None = None, missed: Literal["skip", "once"] | None = None,
                  type: str | None = None, priority: int | None = None,
                  retries: int | None = None,
                  backoff: tuple[Duration, Duration] | Duration | None = None,
                  timeout: Duration | None = None,
                  meta: Mapping[str, str] | None = None) -> None:
        await self._client.run(cmd.cron_set(
            self._client.serializer, name, expression, queue, payload, tz=tz, missed=missed,
            type=type, priority=priority, retries=retries, backoff=backoff, timeout=timeout,
            meta=meta))

    async def delete(self, name: str) -> bool:
        return await self._client.run(cmd.cron_del(name))

    async def get(self, name: str) -> CronEntry | None:
        return await self._client.run(cmd.cron_get(self._client.serializer, name))

    async def list(self) -> list[CronEntry]:
        return await self._client.run(cmd.cron_list(self._client.serializer))

    async def pause(self, name: str) -> None:
        await self._client.run(cmd.cron_pause(name))

    async def resume(self, name: str) -> None:
        await self._client.run(cmd.cron_resume(name))
