"""Every Client and AsyncClient method against a real server.

Each scenario is written once and run with both clients: `aw()` awaits what the async client
returns and passes the sync client's values through.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from jobcached_client import AsyncClient, Client, Job, QueueStats, State

from tests.conftest import ServerProcess
from tests.integration.clients.conftest import aw, collect, unique

Scenario = Callable[[Any], Awaitable[None]]


def run_with(kind: str, server: ServerProcess, scenario: Scenario, **kwargs: Any) -> None:
    """Run `scenario(client)` with a sync or an async client to `server`."""
    async def main() -> None:
        if kind == "sync":
            client: Any = Client(port=server.port, **kwargs)
            try:
                await scenario(client)
            finally:
                client.close()
        else:
            client = AsyncClient(port=server.port, **kwargs)
            try:
                await scenario(client)
            finally:
                await client.aclose()
    asyncio.run(main())


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_cache_commands_are_redis_py_and_resp3_is_the_default(server: ServerProcess,
                                                               kind: str) -> None:
    async def scenario(c: Any) -> None:
        key = unique("cache")
        assert await aw(c.set(key, "v", px=60_000)) is True
        assert await aw(c.get(key)) == b"v"
        assert await aw(c.incr(key + ":n")) == 1
        assert await aw(c.mget([key, key + ":missing"])) == [b"v", None]
        assert await aw(c.delete(key, key + ":n")) == 2
        assert c.connection_pool.connection_kwargs["protocol"] == 3
        hello = await aw(c.execute_command("HELLO"))
        assert hello[b"proto"] == 3
    run_with(kind, server, scenario)


@KINDS
def test_push_fetch_beat_ack_get_wait(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("roundtrip")
        job_id = await aw(c.jobs.push(queue, {"to": "ada", "n": [1, 2]}, type="email",
                                      priority=5, retries=3, backoff=(0.01, 0.1),
                                      timeout=timedelta(seconds=30), key=unique("k"),
                                      key_ttl=60, meta={"traceparent": "00-ab-cd-01"}))
        assert isinstance(job_id, str) and len(job_id) == 26
        queued = await aw(c.jobs.get(job_id))
        assert isinstance(queued, Job) and queued.state is State.QUEUED
        assert (queued.type, queued.priority, queued.retries, queued.timeout_ms) == \
            ("email", 5, 3, 30_000)
        assert queued.meta == {"traceparent": "00-ab-cd-01"} and queued.key is not None
        assert queued.payload == {"to": "ada", "n": [1, 2]} and queued.attempt == 0
        [job] = await aw(c.jobs.fetch([queue], worker="w-1"))
        assert job.id == job_id and job.state is State.RUNNING and job.token
        assert job.payload == {"to": "ada", "n": [1, 2]} and job.attempt == 1
        assert job.meta == {"traceparent": "00-ab-cd-01"}
        assert job.deadline is not None and job.deadline > datetime.now(UTC)
        deadline = await aw(c.jobs.beat(job, extend=120))
        assert deadline > job.deadline
        await aw(c.jobs.ack(job, result={"sent": True}))
        done = await aw(c.jobs.wait(job_id, timeout=1))
        assert done.state is State.SUCCEEDED and done.result == {"sent": True}
        assert done.worker == "w-1" and done.finished >= done.started >= done.created
        assert (await aw(c.jobs.get(job_id))).raw_result == b'{"sent":true}'
        assert await aw(c.jobs.get("no-such-job")) is None
    run_with(kind, server, scenario)


@KINDS
def test_delay_at_and_idempotency_keys(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("later")
        delayed = await aw(c.jobs.push(queue, 1, delay=timedelta(hours=1)))
        at = await aw(c.jobs.push(queue, 2, at=datetime.now(UTC) + timedelta(hours=1)))
        for job_id in (delayed, at):
            job = await aw(c.jobs.get(job_id))
            assert job.state is State.PENDING and job.run_at > datetime.now(UTC)
        assert await aw(c.jobs.fetch(queue)) == []
        key = unique("once")
        first = await aw(c.jobs.push(queue, "same", key=key))
        assert await aw(c.jobs.push(queue, "same", key=key)) == first
        with pytest.raises(redis.ResponseError, match="NOTUNIQUE"):
            await aw(c.jobs.push(queue, "different", key=key))
        with pytest.raises(ValueError, match="not both"):
            await aw(c.jobs.push(queue, 1, delay=1, at=1))
        ids = await aw(c.jobs.push_many(queue, [10, 11, 12], priority=1))
        assert len(set(ids)) == 3
        fetched = await aw(c.jobs.fetch(queue, count=10))
        assert [j.payload for j in fetched] == [10, 11, 12, "same"]  # priority first
    run_with(kind, server, scenario)


@KINDS
def test_fail_retry_dead_and_retry(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("failing")
        job_id = await aw(c.jobs.push(queue, "x", retries=1, backoff=(0.01, 0.01)))
        [job] = await aw(c.jobs.fetch(queue))
        state = await aw(c.jobs.fail(job, "first", errtype="IOError", trace="line 1"))
        assert state is State.RETRYING
        [again] = await aw(c.jobs.fetch(queue, block=5))
        assert again.id == job_id and again.attempt == 2
        assert await aw(c.jobs.fail(again.id, "last", token=again.token, noretry=True)) \
            is State.DEAD
        dead = await aw(c.jobs.get(job_id))
        assert dead.state is State.DEAD
        assert [(e.type, e.message, e.trace, e.attempt) for e in dead.errors] == \
            [("IOError", "first", "line 1", 1), ("Error", "last", "", 2)]
        await aw(c.jobs.retry(job_id))
        assert (await aw(c.jobs.get(job_id))).state is State.QUEUED
        [third] = await aw(c.jobs.fetch(queue))
        assert third.attempt == 3  # attempts count on after a retry ...
        assert await aw(c.jobs.fail(third, "again")) is State.RETRYING  # ... retries restart
        later = await aw(c.jobs.push(queue, "y", retries=5))
        [job] = await aw(c.jobs.fetch(queue))
        assert await aw(c.jobs.fail(job, "later", retry_in=timedelta(hours=1))) \
            is State.RETRYING
        assert (await aw(c.jobs.get(later))).run_at > datetime.now(UTC) + timedelta(minutes=59)
        with pytest.raises(ValueError, match="token"):
            await aw(c.jobs.ack(job_id))
    run_with(kind, server, scenario)


@KINDS
def test_cancel_stale_and_beat_canceled(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("cancel")
        job_id = await aw(c.jobs.push(queue, "x"))
        [job] = await aw(c.jobs.fetch(queue))
        with pytest.raises(redis.ResponseError, match=r"^STALE"):
            await aw(c.jobs.ack(job_id, token="not-the-token"))
        await aw(c.jobs.cancel(job_id))
        assert await aw(c.jobs.beat(job)) is None  # the worker learns it was canceled
        with pytest.raises(redis.ResponseError, match="is canceled"):
            await aw(c.jobs.ack(job))
        assert (await aw(c.jobs.get(job_id))).state is State.CANCELED
        with pytest.raises(redis.ResponseError, match="is canceled"):
            await aw(c.jobs.cancel(job_id))
    run_with(kind, server, scenario)


@KINDS
def test_blocking_calls_outlive_the_socket_timeout(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("blocking")
        job_id = await aw(c.jobs.push(queue, "x"))
        assert await aw(c.jobs.wait(job_id, timeout=1.2)) is None  # socket_timeout is 0.5 s
        [job] = await aw(c.jobs.fetch(queue, block=1.2))
        assert await aw(c.jobs.fetch(queue, block=1.2)) == []
        await aw(c.jobs.ack(job))
        assert (await aw(c.jobs.wait(job_id))).state is State.SUCCEEDED
        assert await aw(c.ping()) is True  # the connections are still in step
    run_with(kind, server, scenario, socket_timeout=0.5)


@KINDS
def test_list_pages_through_jobs(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("listed")
        ids = [await aw(c.jobs.push(queue, i)) for i in range(5)]
        listed = await collect(c.jobs.list(queue=queue, count=2))
        assert [j.id for j in listed] == ids and [j.payload for j in listed] == list(range(5))
        cursor, page = await aw(c.jobs.page(queue=queue, count=2))
        assert len(page) <= 2 and cursor != "0"
        [job] = await aw(c.jobs.fetch(queue))
        running = await collect(c.jobs.list(queue=queue, state=State.RUNNING))
        assert [j.id for j in running] == [job.id]
        assert [j.id for j in await collect(c.jobs.list(queue=queue, state="queued"))] == \
            ids[1:]
    run_with(kind, server, scenario)


@KINDS
def test_queue_commands(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("queue")
        for i in range(3):
            await aw(c.jobs.push(queue, i))
        assert queue in await aw(c.queues.list())
        stats = await aw(c.queues.stats(queue))
        assert isinstance(stats, QueueStats) and stats.queued == 3 and stats.waiting == 3
        assert stats.paused is False
        await aw(c.queues.pause(queue))
        assert (await aw(c.queues.stats(queue))).paused is True
        assert await aw(c.jobs.fetch(queue)) == []
        await aw(c.queues.resume(queue))
        [job] = await aw(c.jobs.fetch(queue))
        assert await aw(c.queues.purge(queue)) == 2
        after = await aw(c.queues.stats(queue))
        assert (after.queued, after.running) == (0, 1)
        await aw(c.jobs.ack(job))
        assert (await aw(c.queues.stats(queue))).processed == 1
    run_with(kind, server, scenario)


@KINDS
def test_dead_letter_commands(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("dlq")

        async def make_dead(n: int) -> list[str]:
            ids = [await aw(c.jobs.push(queue, i, retries=0)) for i in range(n)]
            for job in await aw(c.jobs.fetch(queue, count=n)):
                assert await aw(c.jobs.fail(job, "boom")) is State.DEAD
            return ids

        ids = await make_dead(3)
        dead = await aw(c.dlq.list(queue))
        assert [j.id for j in dead] == ids and all(j.state is State.DEAD for j in dead)
        assert len(await aw(c.dlq.list(queue, count=1))) == 1
        assert await aw(c.dlq.requeue(ids[0])) == 1
        assert await aw(c.dlq.requeue(ids[0])) == 0  # no longer dead
        assert await aw(c.dlq.requeue_all(queue)) == 2
        assert (await aw(c.queues.stats(queue))).queued == 3
        await aw(c.queues.purge(queue))
        await make_dead(2)
        assert await aw(c.dlq.purge(queue, older=timedelta(hours=1))) == 0
        assert await aw(c.dlq.purge(queue)) == 2
        assert await aw(c.dlq.list(queue)) == []
    run_with(kind, server, scenario)


@KINDS
def test_payloads_bytes_and_pluggable_serializers(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("bytes")
        raw_id = await aw(c.jobs.push(queue, b"\x00\xffbinary"))
        [job] = await aw(c.jobs.fetch(queue))
        assert job.payload == b"\x00\xffbinary" and job.raw_payload == b"\x00\xffbinary"
        await aw(c.jobs.ack(job, result=b"\x01raw result"))
        assert (await aw(c.jobs.get(raw_id))).result == b"\x01raw result"
        # Jobs pushed by other tools with payloads that are not JSON still arrive, as bytes.
        await aw(c.execute_command("JOB.PUSH", queue, "plain text"))
        [other] = await aw(c.jobs.fetch(queue))
        assert other.payload == b"plain text"
        c.serializer = pickle  # any object with dumps and loads
        pickled = await aw(c.jobs.push(queue, {"a", "set"}))
        [job] = await aw(c.jobs.fetch(queue))
        assert job.payload == {"a", "set"}
        await aw(c.jobs.ack(job, result=(1, datetime(2024, 1, 2, tzinfo=UTC))))
        assert (await aw(c.jobs.get(pickled))).result == (1, datetime(2024, 1, 2, tzinfo=UTC))
    run_with(kind, server, scenario)


@pytest.mark.parametrize("protocol", [2, 3])
@KINDS
def test_typed_api_over_resp2_and_decoded_responses(server: ServerProcess, kind: str,
                                                    protocol: int) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("resp")
        job_id = await aw(c.jobs.push(queue, {"x": 1}, meta={"m": "v"}, retries=0))
        [job] = await aw(c.jobs.fetch(queue))
        assert job.payload == {"x": 1} and job.meta == {"m": "v"}
        assert await aw(c.jobs.beat(job)) is not None
        assert await aw(c.jobs.fail(job, "no")) is State.DEAD
        got = await aw(c.jobs.get(job_id))
        assert got.state is State.DEAD and got.errors[0].message == "no"
        assert (await aw(c.queues.stats(queue))).dead == 1
        await aw(c.dlq.requeue(job_id))
        [job] = await aw(c.jobs.fetch(queue))
        await aw(c.jobs.ack(job, result=[1, 2]))
        assert (await aw(c.jobs.wait(job_id))).result == [1, 2]
    run_with(kind, server, scenario, protocol=protocol, decode_responses=protocol == 2)


@KINDS
def test_from_url_with_password_and_unix_socket(start_server: Any, tmp_path: Any,
                                                kind: str) -> None:
    sock = tmp_path / "jc.sock"
    proc: ServerProcess = start_server("--requirepass", "s3cret", "--unixsocket", str(sock))
    urls = [f"jobcached://:s3cret@127.0.0.1:{proc.port}",
            f"jobcached+unix://{sock}?password=s3cret",
            f"jobcached+unix://:s3cret@{sock}",
            f"unix://{sock}?password=s3cret",
            f"redis://:s3cret@localhost:{proc.port}/0"]
    make = Client if kind == "sync" else AsyncClient

    async def main() -> None:
        for url in urls:
            c: Any = make.from_url(url)
            try:
                job_id = await aw(c.jobs.push("url", url))
                assert (await aw(c.jobs.get(job_id))).payload == url
                assert c.connection_pool.connection_kwargs["protocol"] == 3
            finally:
                await aw(c.aclose() if kind == "async" else c.close())
        c = make.from_url(f"jobcached://127.0.0.1:{proc.port}")
        try:
            with pytest.raises(redis.AuthenticationError):
                await aw(c.ping())
        finally:
            await aw(c.aclose() if kind == "async" else c.close())
    asyncio.run(main())


def test_jobcached_urls_default_to_port_7380() -> None:
    from jobcached_client.urls import redis_url

    assert redis_url("jobcached://cache.internal") == "redis://cache.internal:7380"
    assert redis_url("jobcached://") == "redis://localhost:7380"
    assert redis_url("jobcached://:pw@h:1234/0") == "redis://:pw@h:1234/0"
    assert redis_url("jobcached://:pw@") == "redis://:pw@localhost:7380"
    assert redis_url("jobcached+unix:///run/jc.sock") == "unix:///run/jc.sock"
    assert redis_url("unix:///run/jc.sock") == "unix:///run/jc.sock"


def test_async_client_like_a_sync_one(server: ServerProcess) -> None:
    sync = Client(port=server.port, serializer=pickle)

    async def main() -> None:
        twin = AsyncClient.like(sync)
        try:
            assert twin.serializer is pickle
            assert twin.connection_pool.connection_kwargs["port"] == server.port
            job_id = await twin.jobs.push(unique("twin"), {1, 2})
            assert (await twin.jobs.get(job_id)).payload == {1, 2}
        finally:
            await twin.aclose()
    asyncio.run(main())
    sync.close()


def test_jobcached_url_path_selects_the_cache_database_and_jobs_ignore_it(
        server: ServerProcess) -> None:
    """`jobcached://host/N` works in database N, as `redis://host/N` does; jobs are one
    namespace, so a job pushed from database 3 is seen from database 0."""
    in_three = Client.from_url(f"jobcached://127.0.0.1:{server.port}/3")
    in_zero = Client.from_url(f"jobcached://127.0.0.1:{server.port}")
    try:
        in_three.set("url-db", "three")
        assert in_zero.get("url-db") is None
        assert int(in_three.client_info()["db"]) == 3
        queue = unique("dbq")
        job_id = in_three.jobs.push(queue, {"n": 1})
        assert in_zero.jobs.get(job_id).payload == {"n": 1}
    finally:
        in_three.close()
        in_zero.close()
