"""The Worker runtime in this process against a real server: results, failures, cancels,
heartbeats, concurrency."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from jobcached_client import AsyncClient, Client, JobContext, State, Worker

from tests.conftest import ServerProcess
from tests.integration.clients.conftest import eventually, running, unique


def test_results_of_async_and_sync_handlers(client: Client) -> None:
    queue = unique("results")
    worker = Worker(client, [queue], concurrency=4)
    seen: list[Any] = []

    @worker.task(queue)
    async def add(payload: dict[str, int]) -> int:
        return payload["a"] + payload["b"]

    @worker.task("describe")
    def describe(payload: str, job: JobContext) -> dict[str, Any]:
        seen.append(threading.current_thread().name)
        return {"payload": payload, "id": job.id, "queue": job.queue, "type": job.type,
                "attempt": job.attempt, "meta": job.meta, "cancelled": job.cancelled}

    with running(worker):
        summed = client.jobs.push(queue, {"a": 2, "b": 3})
        described = client.jobs.push(queue, "hi", type="describe", meta={"who": "me"})
        assert client.jobs.wait(summed, timeout=10).result == 5
        done = client.jobs.wait(described, timeout=10)
    assert done.state is State.SUCCEEDED and done.worker == worker.name
    assert done.result == {"payload": "hi", "id": described, "queue": queue,
                           "type": "describe", "attempt": 1, "meta": {"who": "me"},
                           "cancelled": False}
    assert seen[0].startswith("jobcached-job")  # sync handlers run in the thread pool
    assert worker.processed == 2 and worker.failed == 0


def test_a_handler_that_raises_is_retried_then_dead_with_its_traceback(client: Client) -> None:
    queue = unique("raises")
    worker = Worker(client, [queue])
    attempts: list[int] = []

    @worker.task(queue)
    def explode(payload: str, job: JobContext) -> None:
        attempts.append(job.attempt)
        raise ValueError(f"bad payload {payload!r}")

    with running(worker):
        job_id = client.jobs.push(queue, "x", retries=2, backoff=(0.01, 0.02))
        dead = client.jobs.wait(job_id, timeout=10)
    assert dead.state is State.DEAD and attempts == [1, 2, 3]
    # What JOB.GET shows, read without the typed client:
    raw = client.execute_command("JOB.GET", job_id)
    errors = raw[b"errors"]
    assert [e[b"attempt"] for e in errors] == [1, 2, 3]
    for error in errors:
        assert error[b"type"] == b"ValueError"
        assert error[b"message"] == b"bad payload 'x'"
        trace = error[b"trace"].decode()
        assert trace.startswith("Traceback (most recent call last):")
        assert "in explode" in trace and 'raise ValueError(f"bad payload' in trace
    assert worker.failed == 3


def test_jobs_without_a_handler_fail_clearly(client: Client) -> None:
    queue = unique("nohandler")
    worker = Worker(client, [queue])
    worker.task(queue)(lambda payload: None)
    with running(worker):
        job_id = client.jobs.push(queue, "x", type="resize_image", retries=0)
        dead = client.jobs.wait(job_id, timeout=10)
    [error] = dead.errors
    assert error.type == "NoHandler"
    assert f"no handler for job type 'resize_image' on worker {worker.name}" in error.message
    assert f"(it handles: {queue})" in error.message


def test_unserializable_results_fail_the_job(client: Client) -> None:
    queue = unique("badresult")
    worker = Worker(client, [queue])
    worker.task(queue)(lambda payload: object())
    with running(worker):
        job_id = client.jobs.push(queue, "x", retries=0)
        dead = client.jobs.wait(job_id, timeout=10)
    assert dead.errors[0].type == "TypeError"
    assert "could not be serialized" in dead.errors[0].message


def test_heartbeats_keep_a_job_longer_than_its_lease(client: Client) -> None:
    queue = unique("long")
    worker = Worker(client, [queue])

    @worker.task(queue)
    async def slow(payload: float) -> str:
        await asyncio.sleep(payload)
        return "done"

    with running(worker):
        job_id = client.jobs.push(queue, 1.2, timeout=0.3, backoff=(0.01, 0.01))
        done = client.jobs.wait(job_id, timeout=10)
    assert done.state is State.SUCCEEDED and done.attempt == 1 and done.errors == []


def test_cancel_cancels_an_async_handler(client: Client) -> None:
    queue = unique("cancel-async")
    worker = Worker(client, [queue])
    started, stopped = threading.Event(), threading.Event()

    @worker.task(queue)
    async def wait_forever(payload: Any, job: JobContext) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise

    with running(worker):
        job_id = client.jobs.push(queue, "x", timeout=0.3)
        assert started.wait(10)
        client.jobs.cancel(job_id)
        assert stopped.wait(5), "the handler was not cancelled"
        started.clear()
        after = client.jobs.push(queue, "y", timeout=0.3)  # the worker goes on
        assert started.wait(10)
        client.jobs.cancel(after)
    assert client.jobs.get(job_id).state is State.CANCELED
    assert worker.failed == 0


def test_cancel_sets_the_event_of_a_sync_handler(client: Client) -> None:
    queue = unique("cancel-sync")
    worker = Worker(client, [queue])
    started = threading.Event()
    outcome: list[str] = []

    @worker.task(queue)
    def poll(payload: Any, job: JobContext) -> None:
        started.set()
        outcome.append("cancelled" if job.cancel_event.wait(30) else "timed out")

    with running(worker):
        job_id = client.jobs.push(queue, "x", timeout=0.3)
        assert started.wait(10)
        client.jobs.cancel(job_id)
        eventually(lambda: outcome, 5, "the handler to return")
    assert outcome == ["cancelled"]
    assert client.jobs.get(job_id).state is State.CANCELED


def test_if_job_cancelled_is_false_until_the_job_is_canceled(client: Client) -> None:
    """`if job.cancelled:` is the obvious spelling; when it was an always-truthy Event, a
    handler checking it stopped at once and its unfinished work was acked as succeeded."""
    queue = unique("cancel-check")
    worker = Worker(client, [queue])
    started = threading.Event()
    steps: dict[str, int] = {}

    @worker.task(queue)
    def work(payload: int, job: JobContext) -> str:
        for step in range(payload):
            if job.cancelled:
                steps[job.id] = step
                return "stopped early"
            started.set()
            time.sleep(0.01)
        return "all done"

    with running(worker):
        finished = client.jobs.push(queue, 3)
        assert client.jobs.wait(finished, timeout=10).result == "all done"
        started.clear()
        # 30 s of steps unless canceled; a short lease, so that a heartbeat soon tells
        canceled = client.jobs.push(queue, 3000, timeout=0.3)
        assert started.wait(10), "the handler stopped before doing any work"
        client.jobs.cancel(canceled)
        eventually(lambda: canceled in steps, 10, "the handler to notice the cancel")
    assert steps[canceled] > 0
    job = client.jobs.get(canceled)
    assert job.state is State.CANCELED and job.result is None
    assert worker.processed == 1


def test_the_final_failure_is_logged_as_permanent(client: Client,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The worker said only "failed" (the server: "job dead"); the last attempt's line must
    say the job failed for good and where it went, the others that it will be retried."""
    queue = unique("logged")
    worker = Worker(client, [queue])

    @worker.task(queue)
    def explode(payload: str) -> None:
        raise ValueError("no luck")

    caplog.set_level(logging.INFO, logger="jobcached_client.worker")
    with running(worker):
        job_id = client.jobs.push(queue, "x", retries=1, backoff=(0.01, 0.01))
        assert client.jobs.wait(job_id, timeout=10).state is State.DEAD

        def lines() -> list[str]:
            return [r.getMessage() for r in caplog.records if job_id in r.getMessage()]
        eventually(lambda: len(lines()) == 2, 10, "both failures to be logged")
    assert lines() == [
        f"job {job_id} ({queue}) attempt 1 failed; it will be retried: ValueError: no luck",
        f"job {job_id} ({queue}) failed permanently after 2 attempts; moved to the "
        f"dead-letter queue (DLQ.LIST, DLQ.REQUEUE): ValueError: no luck"]
    final = [r for r in caplog.records if "permanently" in r.getMessage()]
    assert [r.levelno for r in final] == [logging.WARNING]


def test_concurrency_bounds_running_jobs(client: Client) -> None:
    queue = unique("concurrency")
    worker = Worker(client, [queue], concurrency=3)
    lock = threading.Lock()
    now = [0]
    peak = [0]

    @worker.task(queue)
    def busy(payload: int) -> int:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.2)
        with lock:
            now[0] -= 1
        return payload

    with running(worker):
        ids = client.jobs.push_many(queue, range(9))
        results = [client.jobs.wait(i, timeout=10).result for i in ids]
    assert results == list(range(9)) and peak[0] == 3


def test_a_worker_takes_a_url(server: ServerProcess, client: Client) -> None:
    queue = unique("url")
    worker = Worker(f"jobcached://127.0.0.1:{server.port}")  # queues: the registered types

    @worker.task(queue)
    def echo(payload: str) -> str:
        return payload.upper()

    with running(worker):
        job_id = client.jobs.push(queue, "hello")
        assert client.jobs.wait(job_id, timeout=10).result == "HELLO"


def test_a_worker_serves_inside_an_application_loop(server: ServerProcess) -> None:
    queue = unique("embedded")

    async def main() -> None:
        aclient = AsyncClient(port=server.port)
        worker = Worker(aclient, [queue])
        worker.task(queue)(lambda payload: payload * 2)
        serving = asyncio.create_task(worker.serve())
        job_id = await aclient.jobs.push(queue, 21)
        assert (await aclient.jobs.wait(job_id, timeout=10)).result == 42
        worker.stop()
        await serving
        assert await aclient.ping() is True  # the worker leaves a client it was given open
        await aclient.aclose()
    asyncio.run(main())


def test_stop_hands_back_what_does_not_finish_within_grace(client: Client) -> None:
    queue = unique("grace")
    worker = Worker(client, [queue], grace=0.2)
    started = threading.Event()

    @worker.task(queue)
    async def stuck(payload: Any) -> None:
        started.set()
        await asyncio.sleep(60)

    with running(worker):
        job_id = client.jobs.push(queue, "x", backoff=(60, 60))
        assert started.wait(10)
    # RETRYIN 0: ready for another worker at once (the next timer tick), not after a backoff
    job = eventually(lambda: (j := client.jobs.get(job_id)).state is State.QUEUED and j, 2,
                     "the job to be queued again")
    assert job.errors[-1].type == "WorkerShutdown"
