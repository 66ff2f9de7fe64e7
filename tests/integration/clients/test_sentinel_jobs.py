"""Issue 18's must-show: jobs survive a failover under Sentinel.

Three redis-sentinel processes watch a leader and two followers. Producer processes push jobs
with `REPLICAS 1` (a job counts as acknowledged only once a follower has it) and two
`jobcached-worker` processes run them, all through `jobcached+sentinel://` URLs. The leader
is killed with SIGKILL mid-load together with one worker, as when the machine of a sidecar
dies. Sentinel promotes a follower, producers and the surviving worker follow it, and:

- every acknowledged job ran to completion at least once (workers append a line per run to
  one file), and succeeded on the new leader: none lost;
- the jobs the dead worker was running are handed out again once their lease ran out, and the
  other worker runs them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from jobcached_client import Client, State

from tests.integration.clients.conftest import WorkerProcess
from tests.integration.sentinels import (
    SERVICE,
    Deployment,
    deployment,  # noqa: F401
    wait_for,
)

#: The workers: every run of a job appends "<n> <attempt> <pid>" to runs.txt when it ends;
#: a job of queue `slow` sleeps through its first attempt (the worker dies meanwhile).
TASKS = """
    import os
    import time

    from jobcached_client import Worker

    worker = Worker(os.environ["JOBCACHED_URL"], concurrency=3)

    @worker.task("work")
    @worker.task("slow")
    def run(payload, job):
        if payload.get("slow") and job.attempt == 1:
            time.sleep(120)
        time.sleep(0.01)
        with open(os.path.join(os.environ["WORK_DIR"], "runs.txt"), "a") as runs:
            runs.write(f"{payload['n']} {job.attempt} {os.getpid()}\\n")
        return payload["n"]
"""

#: A producer: pushes until the stop file exists; "<n> <id>" per acknowledged job.
PRODUCER = """
    import sys
    import time
    from pathlib import Path

    import redis
    from jobcached_client import Client

    url, name, directory = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    client = Client.from_url(url, socket_timeout=5)
    with open(directory / f"acked-{name}.txt", "a") as acked:
        i = 0
        while not (directory / "stop").exists():
            n = f"{name}-{i}"
            i += 1
            try:
                job_id = client.jobs.push("work", {"n": n}, key=n, timeout=LEASE,
                                          backoff=(0.01, 0.01), replicas=1,
                                          replicas_timeout=2)
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError) as exc:
                print(n, "not acknowledged:", exc, flush=True)
                time.sleep(0.05)
                continue
            acked.write(f"{n} {job_id}\\n")
            acked.flush()
            time.sleep(0.01)
"""

#: Seconds of each job's lease: how long a dead worker's jobs wait before running again.
LEASE = 3


def _url(group: Deployment) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in group.addresses)
    return f"jobcached+sentinel://{hosts}/{SERVICE}"


def _runs(directory: Path) -> list[tuple[str, int, int]]:
    path = directory / "runs.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(n, int(attempt), int(pid)) for n, attempt, pid in
            (line.split() for line in lines)]


def _acked(directory: Path) -> dict[str, str]:
    acked: dict[str, str] = {}
    for path in directory.glob("acked-*.txt"):
        for line in path.read_text().splitlines():
            n, job_id = line.split()
            acked[n] = job_id
    return acked


def test_acknowledged_jobs_survive_a_failover(
        deployment: Deployment, tmp_path: Path,  # noqa: F811
        worker_process: Callable[..., WorkerProcess]) -> None:
    deployment.wait_watched()
    url = _url(deployment)
    client = Client.from_url(url, socket_timeout=5)
    doomed = worker_process(TASKS, url, "-q", "work", "-q", "slow", "--name", "doomed")
    slow = [client.jobs.push("slow", {"n": f"slow-{i}", "slow": True}, timeout=LEASE,
                             backoff=(0.01, 0.01), replicas=1) for i in range(2)]
    wait_for(lambda: all(client.jobs.get(job_id).state is State.RUNNING for job_id in slow),
             what="the slow jobs running on the worker that will die")
    survivor = worker_process(TASKS, url, "-q", "work", "-q", "slow", "--name", "survivor")
    source = tmp_path / "producer.py"
    source.write_text(textwrap.dedent(PRODUCER).replace("LEASE", str(LEASE)))
    logs = [(tmp_path / f"producer{i}.log").open("wb") for i in range(2)]
    producers = [subprocess.Popen([sys.executable, str(source), url, f"p{i}", str(tmp_path)],
                                  stdout=log, stderr=subprocess.STDOUT)
                 for i, log in enumerate(logs)]
    try:
        wait_for(lambda: len(_acked(tmp_path)) >= 100, what="jobs acknowledged before the kill")
        old = deployment.leader
        old.stop(signal.SIGKILL)
        doomed.proc.send_signal(signal.SIGKILL)
        before_kill = len(_acked(tmp_path))
        new = deployment.wait_settled(deployment.followers)
        wait_for(lambda: len(_acked(tmp_path)) >= before_kill + 100,
                 what="jobs acknowledged by the new leader")
    finally:
        (tmp_path / "stop").touch()
        for producer, log in zip(producers, logs, strict=True):
            producer.wait(30)
            log.close()

    acked = _acked(tmp_path)
    leader = Client(port=new.port, socket_timeout=5)
    waiting = set(acked.values())

    def all_succeeded() -> bool:
        for job_id in list(waiting):
            if leader.jobs.get(job_id).state is State.SUCCEEDED:
                waiting.discard(job_id)
        return not waiting

    wait_for(all_succeeded, seconds=40, what="every acknowledged job succeeded",
             details=lambda: f"still waiting: {sorted(waiting)[:10]}\n"
                             f"{survivor.log()[-3000:]}\n{deployment.logs()}")
    leader.close()
    ran = {n for n, _, _ in _runs(tmp_path)}
    assert set(acked) <= ran, f"acknowledged but never run: {sorted(set(acked) - ran)[:10]}"

    for job_id in slow:
        done = client.jobs.wait(job_id, timeout=30)
        assert done is not None and done.state is State.SUCCEEDED
        assert done.attempt >= 2 and "LeaseExpired" in [e.type for e in done.errors]
    handed_back = [(attempt, pid) for n, attempt, pid in _runs(tmp_path)
                   if n.startswith("slow-")]
    assert {pid for _, pid in handed_back} == {survivor.pid}
    assert min(attempt for attempt, _ in handed_back) >= 2
    assert doomed.wait() == -signal.SIGKILL
    survivor.proc.send_signal(signal.SIGTERM)
    assert survivor.wait() == 0, survivor.log()
    client.close()
