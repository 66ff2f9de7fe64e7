"""Jobs against a real server: lifecycle over the wire, blocking, fencing, crashes, fan-out."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import ServerProcess


def as_map(reply: Any) -> dict[bytes, Any]:
    """A job map from either protocol (RESP2 sends flat pairs)."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def get_jobs(r: redis.Redis, ids: list[bytes]) -> list[dict[bytes, Any]]:
    """JOB.GET of every id, in one pipeline."""
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.execute_command("JOB.GET", job_id)
    return [as_map(j) for j in pipe.execute()]


@pytest.mark.parametrize("protocol", [2, 3])
def test_push_fetch_ack_get(server: ServerProcess, protocol: int) -> None:
    r = server.client(protocol=protocol)
    queue = f"lifecycle{protocol}"
    job_id = r.execute_command("JOB.PUSH", queue, b"payload\x00bytes", "META", "traceparent",
                               "00-abc-def-01", "PRIORITY", "3")
    assert len(job_id) == 26
    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "WORKER", "w1", "QUEUES", queue)]
    assert job[b"id"] == job_id and job[b"payload"] == b"payload\x00bytes"
    assert job[b"attempt"] == 1 and job[b"priority"] == 3
    assert as_map(job[b"meta"]) == {b"traceparent": b"00-abc-def-01"}
    assert r.execute_command("JOB.ACK", job_id, job[b"token"], "RESULT", "42") in (b"OK", True)
    got = as_map(r.execute_command("JOB.GET", job_id))
    assert got[b"state"] == b"succeeded" and got[b"result"] == b"42"
    assert r.execute_command("JOB.GET", "nope") is None
    stats = as_map(r.execute_command("QUEUE.STATS", queue))
    assert stats[b"succeeded"] == 1 and stats[b"processed"] == 1
    r.close()


def test_errors_are_redis_style(server: ServerProcess) -> None:
    r = server.client()
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("JOB.PUSH", "q", "p", "BOGUS", "1")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("JOB.PUSH", "q", "p", "DELAY", "soon")
    with pytest.raises(redis.ResponseError, match="needs QUEUES"):
        r.execute_command("JOB.FETCH", "COUNT", "1")
    job_id = r.execute_command("JOB.PUSH", "errs", "p", "RETRIES", "0")
    with pytest.raises(redis.ResponseError, match=f"job {job_id.decode()} is queued"):
        r.execute_command("JOB.RETRY", job_id)
    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "QUEUES", "errs")]
    with pytest.raises(redis.ResponseError, match=r"^STALE lease .* is no longer valid"):
        r.execute_command("JOB.ACK", job_id, "not-the-token")
    assert r.execute_command("JOB.FAIL", job_id, job[b"token"], "boom", "ERRTYPE",
                             "ValueError", "TRACE", "Traceback: line 1") in (b"dead", "dead")
    dead = as_map(r.execute_command("JOB.GET", job_id))
    assert dead[b"state"] == b"dead"
    error = as_map(dead[b"errors"][0])
    assert error[b"type"] == b"ValueError" and error[b"trace"] == b"Traceback: line 1"
    assert r.execute_command("DLQ.REQUEUE", job_id) == 1
    r.close()


def test_stale_token_is_fenced(start_server: Any) -> None:
    proc: ServerProcess = start_server("--timer-tick", "5")
    r = proc.client()
    job_id = r.execute_command("JOB.PUSH", "q", "p", "TIMEOUT", "200", "BACKOFF", "1", "1")
    [first] = [as_map(j) for j in r.execute_command("JOB.FETCH", "QUEUES", "q")]
    [second] = [as_map(j) for j in r.execute_command("JOB.FETCH", "BLOCK", "5000", "QUEUES", "q")]
    assert second[b"id"] == job_id and second[b"attempt"] == 2
    with pytest.raises(redis.ResponseError) as info:
        r.execute_command("JOB.ACK", job_id, first[b"token"])
    assert str(info.value).startswith("STALE lease")
    assert r.execute_command("JOB.ACK", job_id, second[b"token"]) in (b"OK", True)
    r.close()


def test_blocked_fetch_is_woken_by_a_push(server: ServerProcess) -> None:
    fetcher = server.client()
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(
        fetcher.execute_command("JOB.FETCH", "BLOCK", "10000", "QUEUES", "wake")))
    thread.start()
    pusher = server.client()
    for _ in range(200):  # wait until the fetcher is blocked
        if any(c.get("cmd") == "job.fetch" for c in pusher.client_list()):
            break
        threading.Event().wait(0.01)
    job_id = pusher.execute_command("JOB.PUSH", "wake", "x")
    thread.join(10)
    assert [as_map(j)[b"id"] for j in results[0]] == [job_id]
    assert fetcher.execute_command("JOB.FETCH", "BLOCK", "50", "QUEUES", "wake") == []
    fetcher.close()
    pusher.close()


def test_wait_returns_when_the_job_finishes(server: ServerProcess) -> None:
    r = server.client()
    job_id = r.execute_command("JOB.PUSH", "waitq", "x")
    results: list[Any] = []
    waiter = server.client()
    thread = threading.Thread(target=lambda: results.append(
        waiter.execute_command("JOB.WAIT", job_id, "TIMEOUT", "10000")))
    thread.start()
    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "QUEUES", "waitq")]
    r.execute_command("JOB.ACK", job_id, job[b"token"])
    thread.join(10)
    assert as_map(results[0])[b"state"] == b"succeeded"
    assert waiter.execute_command("JOB.WAIT", job_id) is not None  # already finished
    other = r.execute_command("JOB.PUSH", "waitq", "y")
    assert r.execute_command("JOB.WAIT", other, "TIMEOUT", "50") is None
    r.close()
    waiter.close()


@pytest.mark.parametrize("policy", ["always", "everysec"])
def test_kill_9_loses_no_acknowledged_job(start_server: Any, policy: str) -> None:
    proc: ServerProcess = start_server("--appendfsync", policy)
    r = proc.client()
    pipe = r.pipeline(transaction=False)
    for i in range(10_000):
        pipe.execute_command("JOB.PUSH", "crash", b"payload-%d" % i, "TIMEOUT", "1000",
                             "BACKOFF", "10", "10")
    ids = pipe.execute()
    running = [as_map(j) for j in r.execute_command("JOB.FETCH", "COUNT", "3", "QUEUES",
                                                    "crash")]
    r.close()
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait()
    again = ServerProcess(proc.data_dir, "--appendfsync", policy).wait_ready()
    try:
        r = again.client()
        jobs = get_jobs(r, ids)
        assert [j[b"payload"] for j in jobs] == [b"payload-%d" % i for i in range(10_000)]
        running_ids = {j[b"id"] for j in running}
        # The leases survived the kill (by now they may have run out: the restart can take
        # longer than their 1 s on a busy machine, so the attempt count is what is checked).
        assert {j[b"id"] for j in jobs if j[b"attempt"] == 1} == running_ids
        # The jobs running at the kill are handed out again once their lease runs out.
        seen: set[bytes] = set()
        while len(seen) < 10_000:
            batch = r.execute_command("JOB.FETCH", "COUNT", "1000", "BLOCK", "5000",
                                      "QUEUES", "crash")
            assert batch, f"only {len(seen)} of 10000 jobs came back"
            seen.update(as_map(j)[b"id"] for j in batch)
        assert seen == set(ids)
        r.close()
    finally:
        again.stop()


def test_fifty_workers_get_each_job_exactly_once(start_server: Any) -> None:
    proc: ServerProcess = start_server()
    total = 20_000
    r = proc.client()
    pipe = r.pipeline(transaction=False)
    for i in range(total):
        pipe.execute_command("JOB.PUSH", "fan", str(i))
    ids = set(pipe.execute())
    r.close()

    async def worker(seen: list[bytes]) -> None:
        client = aioredis.Redis(port=proc.port)
        while True:
            batch = await client.execute_command("JOB.FETCH", "COUNT", "20", "BLOCK", "300",
                                                 "QUEUES", "fan")
            if not batch:
                break
            for job in map(as_map, batch):
                seen.append(job[b"id"])
                await client.execute_command("JOB.ACK", job[b"id"], job[b"token"])
        await client.aclose()

    async def main() -> list[list[bytes]]:
        results: list[list[bytes]] = [[] for _ in range(50)]
        await asyncio.gather(*(worker(seen) for seen in results))
        return results

    results = asyncio.run(main())
    delivered = [job_id for seen in results for job_id in seen]
    assert len(delivered) == total and set(delivered) == ids
    assert sum(1 for seen in results if seen) > 1  # the work really was spread


def test_corrupt_wal_refuses_to_start_then_repairs(tmp_path: Path, start_server: Any) -> None:
    proc: ServerProcess = start_server()
    r = proc.client()
    for _ in range(50):
        r.execute_command("JOB.PUSH", "q", "x" * 100)
    r.close()
    assert proc.stop() == 0
    [segment] = sorted((proc.data_dir / "wal").glob("wal-*.log"))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # damage a record in the middle, followed by good ones
    segment.write_bytes(bytes(data))
    done = subprocess.run([sys.executable, "-m", "jobcached", "serve", "--port", "0",
                           "--metrics-port", "0", "--unixsocket", str(tmp_path / "s.sock"),
                           "--dir", str(proc.data_dir)], capture_output=True, timeout=30,
                          check=False)
    assert done.returncode == 1
    message = done.stderr.decode()
    assert segment.name in message and "offset" in message
    check = subprocess.run([sys.executable, "-m", "jobcached", "wal", "check",
                            str(proc.data_dir / "wal")], capture_output=True, timeout=30,
                           check=False)
    assert check.returncode == 1
    assert f"CORRUPT: {segment.name} at offset" in check.stdout.decode()
    repaired = ServerProcess(proc.data_dir, "--repair").wait_ready()
    r = repaired.client()
    assert 0 < len(r.execute_command("JOB.LIST", "COUNT", "100")[1]) < 50
    r.close()
    repaired.stop()


def test_bgrewriteaof_compacts_while_serving_and_survives_kill_9(start_server: Any) -> None:
    """A compaction (forked child) while pushes and acks go on; then kill -9: every job is
    back in the state it had, from the base and the segment after it."""
    proc: ServerProcess = start_server("--appendfsync", "always")
    r = proc.client()
    pipe = r.pipeline(transaction=False)
    for i in range(2_000):
        pipe.execute_command("JOB.PUSH", "compact", b"before-%d" % i)
    ids = pipe.execute()
    done = [as_map(j) for j in r.execute_command("JOB.FETCH", "COUNT", "500", "QUEUES",
                                                 "compact")]
    for job in done:
        r.execute_command("JOB.ACK", job[b"id"], job[b"token"])
    assert r.bgrewriteaof() is True  # redis-py: the status "Background append only ... started"
    ids += [r.execute_command("JOB.PUSH", "compact", b"during-%d" % i) for i in range(200)]
    deadline = time.monotonic() + 30
    while r.info("persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline, "the compaction never finished"
        time.sleep(0.01)
    info = r.info("persistence")
    assert (info["aof_rewrites"], info["aof_last_bgrewrite_status"]) == (1, "ok")
    ids.append(r.execute_command("JOB.PUSH", "compact", b"after"))
    r.close()
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait()
    names = sorted(p.name for p in (proc.data_dir / "wal").iterdir())
    assert [n.rsplit(".", 1)[1] for n in names] == ["base", "log"]
    again = ServerProcess(proc.data_dir).wait_ready()
    try:
        r = again.client()
        jobs = get_jobs(r, ids)
        acked = {j[b"id"] for j in done}
        assert [j[b"payload"] for j in jobs] == (
            [b"before-%d" % i for i in range(2_000)]
            + [b"during-%d" % i for i in range(200)] + [b"after"])
        assert {j[b"id"] for j in jobs if j[b"state"] == b"succeeded"} == acked
        r.close()
    finally:
        again.stop()
