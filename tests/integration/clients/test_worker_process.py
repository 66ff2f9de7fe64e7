"""`jobcached-worker` processes: crashes, graceful shutdown, hand-back after the grace period."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobcached_client import Client, State

from tests.conftest import ServerProcess
from tests.integration.clients.conftest import WorkerProcess, eventually, script

#: A worker module: each attempt leaves a marker file named after the attempt and the pid;
#: payload {"sleep": s} makes the first attempt take that long.
TASKS = """
    import os
    import time
    from pathlib import Path

    from jobcached_client import Client, Worker

    client = Client.from_url(os.environ["JOBCACHED_URL"])
    worker = Worker(client, queues=["work"], concurrency=1, grace={grace})

    @worker.task("work")
    def work(payload, job):
        marker = Path(os.environ["WORK_DIR"]) / f"attempt-{{job.attempt}}-{{os.getpid()}}"
        marker.write_text("started")
        if job.attempt == 1:
            time.sleep(payload["sleep"])
        marker.write_text("finished")
        return {{"pid": os.getpid(), "attempt": job.attempt}}
"""


def markers(directory: Path) -> list[Path]:
    return sorted(directory.glob("attempt-*"))


def test_a_worker_killed_mid_job_loses_nothing(server: ServerProcess, tmp_path: Path,
                                               worker_process: Callable[..., WorkerProcess]
                                               ) -> None:
    url = f"jobcached://127.0.0.1:{server.port}"
    client = Client.from_url(url)
    client.queues.purge("work")
    job_id = client.jobs.push("work", {"sleep": 60}, timeout=1, backoff=(0.01, 0.01))
    first = worker_process(TASKS.format(grace=5), url)
    eventually(lambda: markers(tmp_path), 20, "the first attempt to start")
    assert client.jobs.get(job_id).state is State.RUNNING
    first.proc.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    second = worker_process(TASKS.format(grace=5), url)
    done = client.jobs.wait(job_id, timeout=20)
    assert done is not None and done.state is State.SUCCEEDED, second.log()
    assert done.result == {"pid": second.pid, "attempt": 2}
    assert [e.type for e in done.errors] == ["LeaseExpired"]
    assert [m.name for m in markers(tmp_path)] == [f"attempt-1-{first.pid}",
                                                   f"attempt-2-{second.pid}"]
    second.proc.send_signal(signal.SIGTERM)
    assert second.wait() == 0
    client.close()


def test_sigterm_lets_the_running_job_finish(server: ServerProcess, tmp_path: Path,
                                             worker_process: Callable[..., WorkerProcess]
                                             ) -> None:
    url = f"jobcached://127.0.0.1:{server.port}"
    client = Client.from_url(url)
    client.queues.purge("work")
    running_id = client.jobs.push("work", {"sleep": 1.5})
    proc = worker_process(TASKS.format(grace=30), url)
    eventually(lambda: markers(tmp_path), 20, "the job to start")
    waiting_id = client.jobs.push("work", {"sleep": 0})  # concurrency 1: stays queued
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.log()
    done = client.jobs.get(running_id)
    assert done.state is State.SUCCEEDED and done.attempt == 1 and done.errors == []
    assert done.result == {"pid": proc.pid, "attempt": 1}
    assert client.jobs.get(waiting_id).state is State.QUEUED
    assert "stopped (1 acked, 0 failed)" in proc.log()
    client.close()


def test_after_the_grace_period_jobs_go_back_at_once(server: ServerProcess, tmp_path: Path,
                                                     worker_process: Callable[..., WorkerProcess]
                                                     ) -> None:
    url = f"jobcached://127.0.0.1:{server.port}"
    client = Client.from_url(url)
    client.queues.purge("work")
    job_id = client.jobs.push("work", {"sleep": 60}, backoff=(60, 60))
    first = worker_process(TASKS.format(grace=0.5), url)
    eventually(lambda: markers(tmp_path), 20, "the job to start")
    first.proc.send_signal(signal.SIGTERM)
    assert first.wait(10) == 0, first.log()  # its handler thread was still sleeping
    handed_back = eventually(  # RETRYIN 0 (the next timer tick), not the job's 60 s backoff
        lambda: (j := client.jobs.get(job_id)).state is State.QUEUED and j, 2, "a requeue")
    assert handed_back.errors[-1].type == "WorkerShutdown"
    second = worker_process(TASKS.format(grace=5), url)
    done = client.jobs.wait(job_id, timeout=20)
    assert done.state is State.SUCCEEDED and done.result == {"pid": second.pid, "attempt": 2}
    second.proc.send_signal(signal.SIGINT)
    assert second.wait() == 0
    client.close()


def test_the_entry_point_explains_a_bad_target(tmp_path: Path) -> None:
    (tmp_path / "notaworker.py").write_text("worker = 42\n")
    for target, message in [("notaworker:worker", "is a int, not a Worker"),
                            ("notaworker:missing", "has no attribute missing"),
                            ("nosuchmodule:worker", "cannot import nosuchmodule"),
                            ("noattribute", "expected module:attribute")]:
        done = subprocess.run([script("jobcached-worker"), target], cwd=tmp_path,
                              capture_output=True, timeout=30, check=False)
        assert done.returncode == 2 and message in done.stderr.decode(), done.stderr


def test_the_entry_point_overrides_settings(server: ServerProcess, tmp_path: Path,
                                            worker_process: Callable[..., WorkerProcess]
                                            ) -> None:
    url = f"jobcached://127.0.0.1:{server.port}"
    client: Any = Client.from_url(url)
    job_id = client.jobs.push("other", {"sleep": 0}, type="work")
    proc = worker_process(TASKS.format(grace=5), url, "--queue", "other", "--name", "w-test",
                          "--concurrency", "2", "--grace", "1")
    done = client.jobs.wait(job_id, timeout=20)
    assert done.state is State.SUCCEEDED and done.worker == "w-test"
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "fetching from other (concurrency 2)" in proc.log()
    client.close()


def test_the_readme_example_runs_as_written(server: ServerProcess, tmp_path: Path,
                                            worker_process: Callable[..., WorkerProcess]
                                            ) -> None:
    readme = (Path(__file__).parents[3] / "clients" / "python" / "README.md").read_text()
    blocks = readme.split("```python\n")
    tasks, producer = (block.split("```")[0] for block in blocks[1:3])
    assert "worker = Worker(client)" in tasks and "client.jobs.wait" in producer
    here = f"localhost:{server.port}"  # the README's server is on the default port
    proc = worker_process(tasks.replace("localhost:7380", here), "unused")
    (tmp_path / "producer.py").write_text(producer)
    done = subprocess.run([sys.executable, "producer.py"], cwd=tmp_path, capture_output=True,
                          timeout=30, check=False)
    assert done.stdout == b"sent to ada@example.com\n", done.stderr.decode() + proc.log()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 0
