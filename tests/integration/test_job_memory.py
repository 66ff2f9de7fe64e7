"""Jobs count against `maxmemory`, against a real server (issue: `--maxmemory 200mb` accepted
30 jobs of 16 MB with `used_memory` 0). Scaled down here: 20 MB and 2 MB payloads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.conftest import RawClient, ServerProcess

MB = 1024**2
PAYLOAD = b"p" * (2 * MB)
OOM = "command not allowed when used memory > 'maxmemory'."
OOM_PATTERN = "used memory > 'maxmemory'"


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def push_until_oom(r: redis.Redis, queue: str, limit: int = 30) -> int:
    """Push 2 MB jobs until the server says OOM; how many it accepted."""
    for accepted in range(limit):
        try:
            r.execute_command("JOB.PUSH", queue, PAYLOAD)
        except redis.ResponseError as exc:
            assert str(exc) == OOM
            return accepted
    pytest.fail(f"{limit} jobs of 2 MB accepted under --maxmemory 20mb")


def test_job_push_is_refused_past_maxmemory_and_info_shows_job_memory(
        start_server: Any) -> None:
    server: ServerProcess = start_server("--maxmemory", "20mb")
    r = server.client()
    accepted = push_until_oom(r, "big")
    assert 8 <= accepted <= 10  # 10 payloads of 2 MB are 20 MB: refused at or before that
    memory = r.info("memory")
    assert memory["used_memory_jobs"] >= accepted * len(PAYLOAD)
    assert memory["used_memory"] == memory["used_memory_cache"] + memory["used_memory_jobs"]
    assert memory["used_memory"] > memory["maxmemory"] - len(PAYLOAD)
    assert r.info("jobs")["used_memory_jobs"] == memory["used_memory_jobs"]
    RawClient(server.port).transcript(
        b"JOB.PUSH big x\r\n", b"-OOM command not allowed when used memory > 'maxmemory'.\r\n")
    with pytest.raises(redis.ResponseError, match=OOM_PATTERN):
        r.set("k", "v")  # the cache is refused as well: it has nothing to evict
    # Work already in memory still finishes: fetch and ack are not refused.
    [job] = r.execute_command("JOB.FETCH", "QUEUES", "big")
    assert r.execute_command("JOB.ACK", job[b"id"], job[b"token"], "RESULT", "done") == b"OK"
    # Purging gives the memory back, and pushes are accepted again.
    assert r.execute_command("QUEUE.PURGE", "big") == accepted - 1
    assert len(PAYLOAD) < r.info("memory")["used_memory_jobs"] < 2 * len(PAYLOAD)  # the acked
    assert r.execute_command("JOB.PUSH", "big", PAYLOAD)


def test_job_memory_survives_a_restart(start_server: Any) -> None:
    server: ServerProcess = start_server("--maxmemory", "20mb")
    r = server.client()
    accepted = push_until_oom(r, "q")
    before = r.info("memory")["used_memory_jobs"]
    server.stop()
    again = ServerProcess(server.data_dir, "--maxmemory", "20mb").wait_ready()
    try:
        r = again.client()
        assert r.info("memory")["used_memory_jobs"] == before  # replay rebuilt the figure
        with pytest.raises(redis.ResponseError, match=OOM_PATTERN):
            r.execute_command("JOB.PUSH", "q", PAYLOAD)
        assert accepted
    finally:
        again.stop()


def test_the_cache_evicts_to_make_room_for_jobs(start_server: Any) -> None:
    server: ServerProcess = start_server("--maxmemory", "20mb", "--maxmemory-policy",
                                         "allkeys-lru")
    r = server.client()
    value = b"v" * (100 * 1024)
    for i in range(150):  # 15 MB: most of maxmemory, no eviction yet
        r.set(f"key:{i}", value)
    assert r.info("memory")["used_memory_cache"] > 14 * MB
    assert r.info("stats")["evicted_keys"] == 0
    for _ in range(4):  # 8 MB of jobs, never evicted: the cache must give way
        r.execute_command("JOB.PUSH", "jobs", PAYLOAD)
    r.set("one-more", value)
    memory = r.info("memory")
    assert r.info("stats")["evicted_keys"] > 0
    assert memory["used_memory_jobs"] >= 4 * len(PAYLOAD)
    assert memory["used_memory"] <= memory["maxmemory"] + len(value) + len(PAYLOAD)
    assert memory["used_memory_cache"] <= memory["maxmemory"] - memory["used_memory_jobs"] \
        + len(value) + 1024


def test_job_memory_goes_down_when_jobs_move_to_the_archive(start_server: Any) -> None:
    server: ServerProcess = start_server("--maxmemory", "20mb", "--job-hot-retention", "0")
    r = server.client()
    for _ in range(3):
        r.execute_command("JOB.PUSH", "arch", PAYLOAD)
    assert r.info("memory")["used_memory_jobs"] >= 3 * len(PAYLOAD)
    for job in r.execute_command("JOB.FETCH", "COUNT", "3", "QUEUES", "arch"):
        r.execute_command("JOB.ACK", job[b"id"], job[b"token"])
    wait_for(lambda: r.info("jobs")["archive_moved"] == 3)
    assert r.info("memory")["used_memory_jobs"] == 0
