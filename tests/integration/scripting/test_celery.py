"""A Celery 5 worker with its broker and result backend on jobcached.

Issue 14 found the worker dying at start (`CRITICAL Unrecoverable error`): kombu takes a
redis-py Lock, whose release is EVALSHA. Here a real worker process starts against a real
jobcached process and runs tasks with results, a failing task and a countdown.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from tests.conftest import ServerProcess

TASKS = '''
from celery import Celery

app = Celery("tasks", broker="{url}", backend="{url}")


@app.task(name="tasks.add")
def add(x, y):
    return x + y


@app.task(name="tasks.fail")
def fail():
    raise ValueError("task failed on purpose")
'''

#: How long the worker may take to say it is ready (imports, broker connection, lock).
WORKER_READY_SECONDS = 30


@pytest.fixture
def worker(server: ServerProcess, tmp_path: Path) -> Iterator[Celery]:
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


def test_celery_tasks_with_results_failures_and_countdown(worker: Celery) -> None:
    results = [worker.send_task("tasks.add", args=(i, i)) for i in range(30)]
    assert [r.get(timeout=20) for r in results] == [2 * i for i in range(30)]
    failing = worker.send_task("tasks.fail")
    with pytest.raises(ValueError, match="task failed on purpose"):
        failing.get(timeout=20)
    assert failing.state == "FAILURE"
    started = time.monotonic()
    later = worker.send_task("tasks.add", args=(1, 1), countdown=1)
    assert later.get(timeout=20) == 2
    assert time.monotonic() - started >= 0.9
