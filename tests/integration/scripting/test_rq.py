"""RQ 2/3 queues, workers, results, retries and its scheduler on jobcached, unchanged.

RQ keeps a job in a hash, its queue in a list, its registries in sorted sets, and (since 1.12)
each run's result as a stream entry written with XADD inside MULTI; its scheduler takes a lock
with SET NX EX and moves due jobs from a sorted set. The worker here is RQ's own: a
`SimpleWorker` in the test process for the bulk runs (no fork per job) and `rq worker
--with-scheduler` as a real process for the scheduled jobs.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue, Retry, SimpleWorker, get_current_job
from rq.job import Job, JobStatus
from rq.results import Result

from tests.conftest import ServerProcess

#: How long a scheduled job may take to be run by the worker process (start-up included).
SCHEDULED_RUN_SECONDS = 30


def add(x: int, y: int) -> int:
    return x + y


def fail_counting() -> None:
    """Count the run in the job's own Redis, then fail: the retries are counted from outside."""
    job = get_current_job()
    assert job is not None
    job.connection.incr(f"runs:{job.id}")
    raise ValueError("job failed on purpose")


@pytest.fixture
def connection(server: ServerProcess) -> Iterator[redis.Redis]:
    client = server.client()
    client.flushall()
    yield client
    client.close()


def run_burst(queue: Queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")


def test_rq_two_hundred_jobs_with_results_read_back(connection: redis.Redis) -> None:
    queue = Queue("bulk", connection=connection)
    jobs = [queue.enqueue(add, i, i) for i in range(200)]
    assert queue.count == 200
    run_burst(queue)
    assert queue.count == 0
    assert [job.return_value() for job in jobs] == [2 * i for i in range(200)]
    latest = jobs[7].latest_result()
    assert latest is not None and latest.type == Result.Type.SUCCESSFUL
    assert latest.return_value == 14
    assert [r.type for r in jobs[7].results()] == [Result.Type.SUCCESSFUL]
    fetched = Job.fetch(jobs[9].id, connection=connection)
    assert fetched.get_status() == JobStatus.FINISHED and fetched.return_value() == 18
    assert queue.finished_job_registry.count == 200


def test_rq_failing_job_keeps_its_exception(connection: redis.Redis) -> None:
    queue = Queue("failing", connection=connection)
    job = queue.enqueue(fail_counting)
    run_burst(queue)
    job.refresh()
    assert job.is_failed
    # (job.exc_info is deprecated in RQ 2: the traceback is the failed result's exc_string.)
    latest = job.latest_result()
    assert latest is not None and latest.type == Result.Type.FAILED
    assert "ValueError: job failed on purpose" in (latest.exc_string or "")
    assert job.id in queue.failed_job_registry.get_job_ids()
    assert connection.get(f"runs:{job.id}") == b"1"


def test_rq_retry_runs_the_job_again_then_fails_it(connection: redis.Redis) -> None:
    queue = Queue("retrying", connection=connection)
    job = queue.enqueue(fail_counting, retry=Retry(max=2))
    assert job.retries_left == 2
    run_burst(queue)
    job.refresh()
    assert connection.get(f"runs:{job.id}") == b"3"
    assert job.retries_left == 0
    assert job.is_failed
    latest = job.latest_result()
    assert latest is not None and latest.type == Result.Type.FAILED


def test_rq_scheduler_runs_enqueue_in_and_enqueue_at_jobs(
        server: ServerProcess, connection: redis.Redis, tmp_path: Path) -> None:
    queue = Queue("scheduled", connection=connection)
    started = time.monotonic()
    later = queue.enqueue_in(datetime.timedelta(seconds=1), add, 20, 1)
    at = queue.enqueue_at(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1),
                          add, 20, 2)
    assert later.get_status() == JobStatus.SCHEDULED
    assert set(queue.scheduled_job_registry.get_job_ids()) == {later.id, at.id}
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "--with-scheduler", "--url",
             f"redis://127.0.0.1:{server.port}/0", "--worker-class", "rq.SimpleWorker",
             "scheduled"], cwd=Path(__file__).parents[3], stdout=log,
            stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + SCHEDULED_RUN_SECONDS
            while not (later.is_finished and at.is_finished):
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
                later.refresh()
                at.refresh()
        finally:
            proc.terminate()
            proc.wait(20)
    assert time.monotonic() - started >= 0.9
    assert (later.return_value(), at.return_value()) == (21, 22)
    assert queue.scheduled_job_registry.count == 0
    assert b"Traceback" not in log_path.read_bytes(), log_path.read_text()
