"""Durations are seconds (int or float) or timedeltas, and points in time datetimes or unix
seconds, in every job method of both clients (as in redis-py's blocking calls, asyncio and
RQ): `jobs.wait(id, timeout=2.5)` once raised "must be milliseconds"."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jobcached_client import Client, JobContext, State, Worker

from tests.conftest import ServerProcess
from tests.integration.clients.conftest import aw, running, unique
from tests.integration.clients.test_client_methods import KINDS, run_with

#: Two spellings of 0.3 s (the loop adds an int), and how far a blocking call may overrun them here.
SHORT = [0.3, timedelta(milliseconds=300)]
SLACK_SECONDS = 3.0
#: The server's timers count whole milliseconds from a clock read in whole milliseconds, so a
#: wait may end up to a millisecond before the client's own clock says it is due.
EARLY_SECONDS = 0.002


async def timed(method: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """The value of a client method's call (sync or async) and the seconds it took."""
    start = time.monotonic()
    value = await aw(method(*args, **kwargs))
    return value, time.monotonic() - start


@KINDS
def test_blocking_calls_take_seconds(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("seconds")
        job_id = await aw(c.jobs.push(queue, "x"))
        for timeout in [*SHORT, 1]:
            expected = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
            low, high = expected - EARLY_SECONDS, expected + SLACK_SECONDS
            got, took = await timed(c.jobs.wait, job_id, timeout=timeout)
            assert got is None and low <= took < high, (timeout, took)
            empty, took = await timed(c.jobs.fetch, unique("empty"), block=timeout)
            assert empty == [] and low <= took < high, (timeout, took)
            page, took = await timed(c.jobs.logs, job_id, block=timeout)
            assert page.lines == [] and low <= took < high
        [job] = await aw(c.jobs.fetch(queue, block=2.5))
        await aw(c.jobs.ack(job, result="done"))
        done = await aw(c.jobs.wait(job_id, timeout=2.5))
        assert done.state is State.SUCCEEDED and done.result == "done"
    run_with(kind, server, scenario)


@KINDS
def test_job_durations_and_times_take_seconds(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("later")
        now = datetime.now(UTC)
        cases = {"delay-int": dict(delay=60), "delay-float": dict(delay=90.5),
                 "delay-timedelta": dict(delay=timedelta(minutes=2)),
                 "at-seconds": dict(at=time.time() + 150),
                 "at-datetime": dict(at=now + timedelta(seconds=180))}
        expected = {"delay-int": 60, "delay-float": 90.5, "delay-timedelta": 120,
                    "at-seconds": 150, "at-datetime": 180}
        for name, options in cases.items():
            job = await aw(c.jobs.get(await aw(c.jobs.push(queue, name, **options))))
            wanted = now + timedelta(seconds=expected[name])
            assert abs((job.run_at - wanted).total_seconds()) < SLACK_SECONDS, name
        for timeout, lease_ms in [(30, 30_000), (2.5, 2_500), (timedelta(minutes=1), 60_000)]:
            pushed = await aw(c.jobs.push(unique("lease"), "x", timeout=timeout,
                                          backoff=(0.5, 1.5), key_ttl=1.5))
            assert (await aw(c.jobs.get(pushed))).timeout_ms == lease_ms
        leased = unique("lease")
        await aw(c.jobs.push(leased, "x", retries=2))
        [job] = await aw(c.jobs.fetch(leased, lease=2.5))
        left = (job.deadline - datetime.now(UTC)).total_seconds()
        assert 0 < left <= 2.5
        extended = await aw(c.jobs.beat(job, extend=timedelta(seconds=90)))
        assert 85 < (extended - datetime.now(UTC)).total_seconds() <= 90
        assert await aw(c.jobs.fail(job, "later", retry_in=1.5)) is State.RETRYING
        retry_at = (await aw(c.jobs.get(job.id))).run_at
        assert 0 < (retry_at - datetime.now(UTC)).total_seconds() <= 1.5
        expiring = await aw(c.jobs.push(queue, "x", expire=time.time() + 3600))
        expire = (await aw(c.jobs.get(expiring))).expire
        assert abs((expire - now).total_seconds() - 3600) < SLACK_SECONDS
    run_with(kind, server, scenario)


@KINDS
def test_bad_durations_are_refused_before_sending(server: ServerProcess, kind: str) -> None:
    async def scenario(c: Any) -> None:
        queue = unique("bad")
        with pytest.raises(ValueError, match="seconds >= 0"):
            await aw(c.jobs.push(queue, "x", delay=-1))
        with pytest.raises(TypeError, match="seconds"):
            await aw(c.jobs.wait("id", timeout="5"))
        with pytest.raises(ValueError, match="looks like milliseconds"):
            await aw(c.jobs.push(queue, "x", expire=int(time.time() * 1000)))
        # 0.1 ms is not "forever" (BLOCK 0): it is sent as 1 ms.
        assert await aw(c.jobs.fetch(unique("empty"), block=0.0001)) == []
        assert (await aw(c.queues.stats(queue))).queued == 0  # nothing was pushed
    run_with(kind, server, scenario)


def test_worker_lease_is_seconds(client: Client) -> None:
    """Worker(lease=0.5) leases each job for half a second and renews it while it runs."""
    queue = unique("worker-lease")
    worker = Worker(client, [queue], lease=0.5)
    left: list[float] = []

    @worker.task(queue)
    def slow(payload: str, job: JobContext) -> str:
        assert job.deadline is not None
        left.append((job.deadline - datetime.now(UTC)).total_seconds())
        time.sleep(1.5)  # the work: three leases long, so heartbeats must renew the lease
        return "done"

    with running(worker):
        job_id = client.jobs.push(queue, "x")
        done = client.jobs.wait(job_id, timeout=10)
    assert done.result == "done" and done.attempt == 1
    assert 0 < left[0] <= 0.5
