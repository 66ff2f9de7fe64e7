"""QUEUE.LIMIT against a real server: 20 workers under CONCURRENCY 3, a RATE window, and limits
that survive a restart."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import redis
from jobcached_client import AsyncClient, Client

from tests.conftest import ServerProcess


def as_dict(reply: Any) -> dict[bytes, Any]:
    """A map reply, however redis-py parsed it (a dict, or RESP2's flat array)."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def limits(r: redis.Redis, queue: str) -> dict[bytes, Any]:
    return as_dict(r.execute_command("QUEUE.LIMIT", queue))


def test_concurrency_3_with_20_workers(server: ServerProcess) -> None:
    client = Client(port=server.port)
    assert client.queues.limit("limited", concurrency=3) == {
        "concurrency": 3, "rate": 0, "rate_per_ms": 0}
    jobs = 60
    client.jobs.push_many("limited", [i for i in range(jobs)])
    lock = threading.Lock()
    running, peak, done = 0, 0, 0

    def worker() -> None:
        nonlocal running, peak, done
        c = Client(port=server.port)
        try:
            while True:
                fetched = c.jobs.fetch("limited", block=0.3)
                if not fetched:
                    return
                with lock:
                    running += 1
                    peak = max(peak, running)
                time.sleep(0.01)
                with lock:
                    running -= 1
                    done += 1
                c.jobs.ack(fetched[0])
        finally:
            c.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    stats_running = []
    while any(t.is_alive() for t in threads):
        stats_running.append(client.queues.stats("limited").running)
        time.sleep(0.005)
    for t in threads:
        t.join()
    assert done == jobs
    assert 1 < peak <= 3  # never exceeded (and the workers did run side by side)
    assert max(stats_running) <= 3
    stats = client.queues.stats("limited")
    assert (stats.succeeded, stats.concurrency) == (jobs, 3)
    client.close()


def test_rate_holds_over_a_window_and_wakes_blocked_fetchers(server: ServerProcess) -> None:
    r = server.client()
    r.execute_command("QUEUE.LIMIT", "rated", "RATE", 3, "PER", 400)
    for i in range(10):
        r.execute_command("JOB.PUSH", "rated", i)
    started = time.monotonic()
    first = r.execute_command("JOB.FETCH", "COUNT", 10, "QUEUES", "rated")
    assert len(first) == 3
    assert r.execute_command("JOB.FETCH", "COUNT", 10, "QUEUES", "rated") == []
    blocked = r.execute_command("JOB.FETCH", "COUNT", 10, "BLOCK", 5000, "QUEUES", "rated")
    waited = time.monotonic() - started
    assert len(blocked) == 3
    assert 0.35 <= waited < 3.0  # served when the window moved on, not at the timeout
    stats = as_dict(r.execute_command("QUEUE.STATS", "rated"))
    assert (stats[b"running"], stats[b"rate"], stats[b"rate_per_ms"]) == (6, 3, 400)


def test_options_and_errors(server: ServerProcess) -> None:
    r = server.client()
    assert limits(r, "opts") == {b"concurrency": 0, b"rate": 0, b"rate_per_ms": 0}
    r.execute_command("QUEUE.LIMIT", "opts", "CONCURRENCY", 2, "RATE", 5, "PER", 1000)
    r.execute_command("QUEUE.LIMIT", "opts", "CONCURRENCY", "NONE")
    assert limits(r, "opts") == {b"concurrency": 0, b"rate": 5, b"rate_per_ms": 1000}
    r.execute_command("QUEUE.LIMIT", "opts", "RATE", "none")
    assert limits(r, "opts") == {b"concurrency": 0, b"rate": 0, b"rate_per_ms": 0}
    for args, error in [(("CONCURRENCY", -1), "CONCURRENCY must not be negative"),
                        (("RATE", 5, "PER", 0), "PER must be positive"),
                        (("RATE", 5), "syntax error"), (("BOGUS",), "syntax error")]:
        with pytest.raises(redis.ResponseError) as raised:
            r.execute_command("QUEUE.LIMIT", "opts", *args)
        assert str(raised.value) == error


def test_async_client_limit(server: ServerProcess) -> None:
    async def main() -> dict[str, int]:
        client = AsyncClient(port=server.port)
        try:
            await client.queues.limit("async-q", rate=5, per=timedelta(seconds=2))
            return await client.queues.limit("async-q", concurrency=1)
        finally:
            await client.aclose()

    assert asyncio.run(main()) == {"concurrency": 1, "rate": 5, "rate_per_ms": 2000}


def test_limits_survive_a_restart(start_server: Any) -> None:
    first: ServerProcess = start_server()
    r = first.client()
    r.execute_command("QUEUE.LIMIT", "durable", "CONCURRENCY", 4, "RATE", 7, "PER", 60000)
    r.close()
    first.proc.send_signal(signal.SIGKILL)  # the reply came once durable: no clean stop needed
    first.proc.wait()
    again = ServerProcess(first.data_dir).wait_ready()
    try:
        assert limits(again.client(), "durable") == {
            b"concurrency": 4, b"rate": 7, b"rate_per_ms": 60000}
    finally:
        again.stop()
