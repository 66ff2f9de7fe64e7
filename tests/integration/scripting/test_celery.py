"""A Celery 5 worker with its broker and result backend on jobcached.

Issue 14 found the worker dying at start (`CRITICAL Unrecoverable error`): kombu takes a
redis-py Lock, whose release is EVALSHA. Here a real worker process starts against a real
jobcached process and runs tasks with results, a failing task, countdown and eta, and chords:
the Redis result backend joins a chord's header in `on_chord_part_return` (a script of GET,
SISMEMBER, ZADD, SADD, ZCOUNT, EXPIRE and SET NX EX, then ZRANGE and the cleanup script), so a
wrong reply there leaves the callback never called or called with the wrong results.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from celery import Celery, chord, signature

from tests.conftest import ServerProcess

TASKS = '''
from celery import Celery

app = Celery("tasks", broker="{url}", backend="{url}")


@app.task(name="tasks.add")
def add(x, y):
    return x + y


@app.task(name="tasks.total")
def total(values):
    return sum(values)


@app.task(name="tasks.listed")
def listed(values):
    return list(values)


@app.task(name="tasks.fail")
def fail():
    raise ValueError("task failed on purpose")
'''

#: How long the worker may take to say it is ready (imports, broker connection, lock).
WORKER_READY_SECONDS = 30


@pytest.fixture(scope="module")
def worker(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Celery]:
    """One worker process for the module: starting one costs seconds."""
    tmp_path = tmp_path_factory.mktemp("celery")
    url = f"redis://127.0.0.1:{server.port}/0"
    (tmp_path / "tasks.py").write_text(TASKS.format(url=url))
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool=solo",
             "--loglevel=info", "--without-heartbeat", "--without-gossip",
             "--without-mingle"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while b" ready." not in log_path.read_bytes():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        client = Celery("client", broker=url, backend=url)
        yield client
        client.close()
        proc.terminate()
        proc.wait(20)
    assert b"CRITICAL" not in log_path.read_bytes(), log_path.read_text()


def test_celery_hundred_tasks_with_results_and_a_failure(worker: Celery) -> None:
    results = [worker.send_task("tasks.add", args=(i, i)) for i in range(100)]
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(100)]
    assert all(r.state == "SUCCESS" for r in results)
    failing = worker.send_task("tasks.fail")
    with pytest.raises(ValueError, match="task failed on purpose"):
        failing.get(timeout=20)
    assert failing.state == "FAILURE"
    assert isinstance(failing.result, ValueError)
    assert "task failed on purpose" in failing.traceback


def test_celery_countdown_and_eta(worker: Celery) -> None:
    started = time.monotonic()
    later = worker.send_task("tasks.add", args=(1, 1), countdown=1)
    eta = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    at_eta = worker.send_task("tasks.add", args=(2, 2), eta=eta)
    assert later.get(timeout=20) == 2
    assert at_eta.get(timeout=20) == 4
    assert time.monotonic() - started >= 0.9


def test_celery_chord_callback_gets_every_result_in_header_order(worker: Celery) -> None:
    header = [signature("tasks.add", args=(i, i), app=worker) for i in range(25)]
    result = chord(header)(signature("tasks.listed", app=worker))
    assert result.get(timeout=30) == [2 * i for i in range(25)]
    second = chord([signature("tasks.add", args=(i, 1), app=worker) for i in range(5)])(
        signature("tasks.total", app=worker))
    assert second.get(timeout=30) == sum(i + 1 for i in range(5))


def test_celery_chord_with_a_failing_member_never_runs_its_callback(worker: Celery) -> None:
    """As with redis-server: the member's exception reaches the caller, no callback result."""
    header = [signature("tasks.add", args=(1, 1), app=worker),
              signature("tasks.fail", app=worker)]
    result = chord(header)(signature("tasks.total", app=worker))
    with pytest.raises(ValueError, match="task failed on purpose"):
        result.get(timeout=30)
    assert result.state != "SUCCESS"
