"""Job workflows through Client and AsyncClient against a real server: dependencies (AFTER),
batches, expiry, job logs, cron entries, job events, and `job.log` in Worker handlers.

Each scenario is written once and run with both clients, as in test_client_methods.py.
Background readers (log followers, event streams) are awaited on what they deliver, never on
sleeps.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from jobcached_client import (
    AsyncClient,
    AsyncJobEvents,
    Batch,
    Client,
    CronEntry,
    Job,
    JobContext,
    JobEvent,
    LogPage,
    State,
    Worker,
)

from tests.conftest import ServerProcess
from tests.integration.clients.conftest import aw, collect, running, unique
from tests.integration.clients.test_client_methods import KINDS, run_with

#: How long a test waits for something the server should do at once.
PROMPTLY = 10.0


async def fetch_n(c: Any, queue: str, n: int) -> list[Job]:
    """Exactly n jobs of a queue, waiting for each as long as PROMPTLY seconds."""
    jobs: list[Job] = []
    while len(jobs) < n:
        got = await aw(c.jobs.fetch(queue, count=n - len(jobs), block=PROMPTLY))
        assert got, f"only {len(jobs)} of {n} jobs came"
        jobs += got
    return jobs


async def enter(stack: AsyncExitStack, events: Any) -> Any:
    """An event stream, subscribed, closed with `stack` (sync streams subscribe on creation)."""
    if isinstance(events, AsyncJobEvents):
        return await stack.enter_async_context(events)
    return stack.enter_context(events)


async def take(events: Any, n: int, queue: str | None = None) -> list[JobEvent]:
    """The next n events (of `queue`, when given) of a sync or async stream."""
    got: list[JobEvent] = []
    async for event in _each(events):
        if queue is None or event.queue == queue:
            got.append(event)
            if len(got) == n:
                break
    return got


async def _each(events: Any) -> Any:
    if isinstance(events, AsyncJobEvents):
        async for event in events:
            yield event
    else:
        for event in events:
            yield event


def follow_in_background(c: Any, job_id: str, lines: asyncio.Queue[str]) -> asyncio.Future[Any]:
    """Follow a job's log (in a thread, for the sync client), each line into `lines`."""
    if isinstance(c, AsyncClient):
        async def read() -> None:
            async for line in c.jobs.follow(job_id, block=1):
                lines.put_nowait(line)
        return asyncio.ensure_future(read())
    loop = asyncio.get_running_loop()

    def read_in_thread() -> None:
        for line in c.jobs.follow(job_id, block=1):
            loop.call_soon_threadsafe(lines.put_nowait, line)
    return asyncio.ensure_future(asyncio.to_thread(read_in_thread))


@KINDS
def test_push_after_parents(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue, doomed_queue = unique("after"), unique("doomed")
        parent = await aw(c.jobs.push(queue, "parent"))
        child = await aw(c.jobs.push(queue, "child", after=[parent]))
        waiting = await aw(c.jobs.get(child))
        assert waiting.state is State.PENDING and waiting.after == [parent]
        assert (waiting.batch, waiting.expire, waiting.log_lines) == (None, None, 0)
        [job] = await aw(c.jobs.fetch(queue))
        assert job.id == parent
        await aw(c.jobs.ack(job))
        [job] = await aw(c.jobs.fetch(queue, block=PROMPTLY))  # queued once parent succeeded
        assert job.id == child and job.payload == "child"

        doomed = await aw(c.jobs.push(doomed_queue, "doomed"))
        orphan = await aw(c.jobs.push(doomed_queue, "orphan", after=doomed))  # one id as a str
        await aw(c.jobs.cancel(doomed))
        canceled = await aw(c.jobs.wait(orphan, timeout=PROMPTLY))
        assert canceled.state is State.CANCELED
        assert canceled.reason == f"parent {doomed} is canceled"
        with pytest.raises(redis.ResponseError):
            await aw(c.jobs.push(queue, "x", after=["no-such-job"]))
    run_with(kind, server, scenario)


@KINDS
def test_push_expire(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("expire")
        at = datetime.now(UTC) + timedelta(hours=1)
        later = await aw(c.jobs.push(queue, "later", expire=at))
        assert abs((await aw(c.jobs.get(later))).expire - at) < timedelta(milliseconds=1)
        soon = await aw(c.jobs.push(queue, "soon", expire=time.time() + 0.5))
        expired = await aw(c.jobs.wait(soon, timeout=PROMPTLY))  # nobody fetches it
        assert expired.state is State.CANCELED and expired.reason == "expired"
        with pytest.raises(redis.ResponseError):
            await aw(c.jobs.push(queue, "past", expire=datetime(2020, 1, 1, tzinfo=UTC)))
    run_with(kind, server, scenario)


@KINDS
def test_batches_fire_their_callbacks_once_committed(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue, callbacks = unique("batch"), unique("callbacks")
        batch_id = await aw(c.batches.new(on_success=(callbacks, {"report": 7}),
                                          on_complete=(callbacks, "done")))
        ids = await aw(c.jobs.push_many(queue, [1, 2], batch=batch_id))
        assert (await aw(c.jobs.get(ids[0]))).batch == batch_id
        opened = await aw(c.batches.get(batch_id))
        assert isinstance(opened, Batch) and opened.id == batch_id
        assert (opened.committed, opened.total, opened.counts[State.QUEUED]) == (False, 2, 2)
        assert opened.success_fired is None and opened.complete_fired is None
        assert not opened.ended and opened.created is not None
        for job in await aw(c.jobs.fetch(queue, count=2)):
            await aw(c.jobs.ack(job))
        ran = await aw(c.batches.get(batch_id))
        assert ran.counts[State.SUCCEEDED] == 2 and ran.complete_fired is None  # not committed
        await aw(c.batches.commit(batch_id))
        fired = await fetch_n(c, callbacks, 2)
        assert {j.meta["callback"]: j.payload for j in fired} == \
            {"success": {"report": 7}, "complete": "done"}
        assert {j.meta["batch"] for j in fired} == {batch_id}
        done = await aw(c.batches.get(batch_id))
        assert done.committed and done.ended and done.counts[State.SUCCEEDED] == 2
        assert done.success_fired >= done.created and done.complete_fired >= done.created
        await aw(c.batches.commit(batch_id))  # harmless
        with pytest.raises(redis.ResponseError):
            await aw(c.jobs.push(queue, 3, batch=batch_id))  # committed: closed to new jobs
        assert await aw(c.batches.get("no-such-batch")) is None
    run_with(kind, server, scenario)


@KINDS
def test_log_logs_and_follow(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("logs")
        job_id = await aw(c.jobs.push(queue, "x"))
        quiet = await aw(c.jobs.logs(job_id, block=0.05))  # nothing yet: waits, then empty
        assert quiet == LogPage(0, [], State.QUEUED) and not quiet.last
        [job] = await aw(c.jobs.fetch(queue))
        lines: asyncio.Queue[str] = asyncio.Queue()
        follower = follow_in_background(c, job_id, lines)
        assert await aw(c.jobs.log(job, "step 1")) == 1
        assert await asyncio.wait_for(lines.get(), PROMPTLY) == "step 1"
        assert await aw(c.jobs.log(job.id, "step 2", b"\xffbad", token=job.token)) == 3
        assert await asyncio.wait_for(lines.get(), PROMPTLY) == "step 2"
        assert await asyncio.wait_for(lines.get(), PROMPTLY) == "\ufffdbad"
        await aw(c.jobs.ack(job))
        await asyncio.wait_for(follower, PROMPTLY)  # ends with the job
        assert lines.empty()

        page = await aw(c.jobs.logs(job_id))
        assert page == LogPage(3, ["step 1", "step 2", "\ufffdbad"], State.SUCCEEDED)
        assert not page.last  # lines came: ask once more to know it is over
        assert (await aw(c.jobs.logs(job_id, start=3))).last
        assert (await aw(c.jobs.logs(job_id, start=-1))).lines == ["\ufffdbad"]
        assert await aw(c.jobs.logs(job_id, count=1)) == \
            LogPage(1, ["step 1"], State.SUCCEEDED)
        assert await collect(c.jobs.follow(job_id, start=-2)) == ["step 2", "\ufffdbad"]
        assert (await aw(c.jobs.get(job_id))).log_lines == 3
        with pytest.raises(redis.ResponseError, match="succeeded"):
            await aw(c.jobs.log(job, "too late"))
        with pytest.raises(ValueError, match="at least one line"):
            await aw(c.jobs.log(job))
        with pytest.raises(redis.ResponseError, match="no such job"):
            await aw(c.jobs.logs("no-such-job"))
    run_with(kind, server, scenario)


@KINDS
def test_cron_set_get_list_pause_resume_delete(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        name, queue = unique("nightly"), unique("reports")
        await aw(c.cron.set(name, "0 3 * * *", queue, {"report": "daily"}, tz="Europe/Paris",
                            missed="once", type="report", priority=3, retries=2,
                            backoff=(0.01, 0.1), timeout=timedelta(seconds=30),
                            meta={"team": "ops"}))
        entry = await aw(c.cron.get(name))
        assert isinstance(entry, CronEntry)
        assert (entry.name, entry.expression, entry.tz, entry.queue, entry.missed, entry.type,
                entry.priority, entry.meta, entry.paused) == \
            (name, "0 3 * * *", "Europe/Paris", queue, "once", "report", 3, {"team": "ops"},
             False)
        assert entry.payload == {"report": "daily"}
        assert (entry.retries, entry.backoff, entry.timeout) == (2, (0.01, 0.1), 30.0)
        assert entry.next > datetime.now(UTC)
        assert entry.next.astimezone(ZoneInfo("Europe/Paris")).hour == 3
        assert entry.last_slot is None and entry.last_job is None
        assert name in [e.name for e in await aw(c.cron.list())]
        await aw(c.cron.pause(name))
        paused = await aw(c.cron.get(name))
        assert paused.paused and paused.next is None
        await aw(c.cron.resume(name))
        assert (await aw(c.cron.get(name))).next == entry.next
        assert await aw(c.cron.delete(name)) is True
        assert await aw(c.cron.delete(name)) is False
        assert await aw(c.cron.get(name)) is None
        with pytest.raises(redis.ResponseError, match="no such cron entry"):
            await aw(c.cron.pause(name))
        with pytest.raises(redis.ResponseError, match="invalid cron expression"):
            await aw(c.cron.set(name, "not cron", queue, {}))
    run_with(kind, server, scenario)


@KINDS
def test_cron_entries_push_jobs(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        name, queue = unique("every-second"), unique("ticks")
        await aw(c.cron.set(name, "* * * * * *", queue, "tick"))
        try:
            [job] = await aw(c.jobs.fetch(queue, block=PROMPTLY))
            entry = await aw(c.cron.get(name))
        finally:
            await aw(c.cron.delete(name))
        assert job.payload == "tick" and job.meta["cron"] == name
        assert entry.last_job is not None and entry.last_slot is not None
        assert entry.last_slot >= datetime.fromtimestamp(int(job.meta["cron_slot"]) / 1000, UTC)
    run_with(kind, server, scenario)


@KINDS
def test_events_show_a_jobs_transitions_in_order(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("events")
        async with AsyncExitStack() as stack:
            of_queue = await enter(stack, c.events(queue=queue, timeout=PROMPTLY))
            of_all = await enter(stack, c.events(timeout=PROMPTLY))
            job_id = await aw(c.jobs.push(queue, "x"))
            of_job = await enter(stack, c.events(job_id=job_id, timeout=PROMPTLY))
            [job] = await aw(c.jobs.fetch(queue))
            await aw(c.jobs.ack(job))
            seen = await take(of_queue, 3)
            assert [(e.old, e.new, e.attempt) for e in seen] == [
                (None, State.QUEUED, 0), (State.QUEUED, State.RUNNING, 1),
                (State.RUNNING, State.SUCCEEDED, 1)]
            assert {(e.id, e.queue) for e in seen} == {(job_id, queue)}
            assert seen[0].time <= seen[1].time <= seen[2].time
            assert await take(of_all, 3, queue=queue) == seen
            assert await take(of_job, 2) == seen[1:]  # subscribed after it was queued
            quiet = await enter(stack, c.events(job_id=job_id, timeout=0.05))
            assert await take(quiet, 1) == []  # the job is done: nothing within the timeout
        with pytest.raises(ValueError, match="not both"):
            c.events(job_id=job_id, queue=queue)
    run_with(kind, server, scenario)


@pytest.mark.parametrize("protocol", [2, 3])
@KINDS
def test_new_replies_over_resp2_and_decoded_responses(server: ServerProcess, kind: str,
                                                      protocol: int) -> None:
    async def scenario(c: Any) -> None:
        queue, name = unique("resp"), unique("cron")
        batch_id = await aw(c.batches.new(on_complete=(queue, "done")))
        job_id = await aw(c.jobs.push(queue, {"x": 1}, batch=batch_id))
        async with AsyncExitStack() as stack:
            events = await enter(stack, c.events(job_id=job_id, timeout=PROMPTLY))
            [job] = await aw(c.jobs.fetch(queue))
            assert await aw(c.jobs.log(job, "héllo")) == 1
            await aw(c.jobs.ack(job))
            assert [e.new for e in await take(events, 2)] == [State.RUNNING, State.SUCCEEDED]
        assert await aw(c.jobs.logs(job_id)) == LogPage(1, ["héllo"], State.SUCCEEDED)
        got = await aw(c.jobs.get(job_id))
        assert got.batch == batch_id and got.log_lines == 1 and got.after == []
        batch = await aw(c.batches.get(batch_id))
        assert batch.total == 1 and batch.counts[State.SUCCEEDED] == 1 and not batch.committed
        await aw(c.cron.set(name, "@daily", queue, [1], meta={"m": "v"}))
        [entry] = [e for e in await aw(c.cron.list()) if e.name == name]
        assert entry.payload == [1] and entry.meta == {"m": "v"} and entry.next is not None
        assert await aw(c.cron.delete(name)) is True
    run_with(kind, server, scenario, protocol=protocol, decode_responses=protocol == 2)


def test_worker_handlers_log_lines(client: Client) -> None:
    queue = unique("worker-logs")
    worker = Worker(client, [queue], concurrency=2)

    @worker.task(queue)
    async def build(payload: str, job: JobContext) -> str:
        job.log(f"building {payload}")
        job.log("step 2", "step 3")
        return "built"

    @worker.task("sync_build")
    def sync_build(payload: str, job: JobContext) -> str:
        for i in range(3):
            job.log(f"line {i}")
        return "done"

    with running(worker):
        built = client.jobs.push(queue, "app")
        synced = client.jobs.push(queue, "x", type="sync_build")
        # The lines are sent ahead of each job's ack, so they are there once it succeeded.
        assert client.jobs.wait(built, timeout=PROMPTLY).state is State.SUCCEEDED
        assert client.jobs.wait(synced, timeout=PROMPTLY).state is State.SUCCEEDED
    assert client.jobs.logs(built).lines == ["building app", "step 2", "step 3"]
    assert list(client.jobs.follow(synced)) == ["line 0", "line 1", "line 2"]
    assert worker.processed == 2 and worker.failed == 0
