"""Job features against a real server: cron across restarts, dependencies, batches, expiry,
followed logs, and the SQLite archive (including after a restart and when SQLite fails)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import ServerProcess
from tests.integration.test_jobs import as_map


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    """Poll until predicate() is truthy (state changes driven by the server's own clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def run_one(r: redis.Redis, queue: str, *, fail: bool = False) -> bytes:
    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "QUEUES", queue)]
    if fail:
        r.execute_command("JOB.FAIL", job[b"id"], job[b"token"], "boom", "NORETRY")
    else:
        r.execute_command("JOB.ACK", job[b"id"], job[b"token"])
    return job[b"id"]


def jobs_of(r: redis.Redis, queue: str) -> list[dict[bytes, Any]]:
    found, cursor = [], "0"
    while True:
        cursor, page = r.execute_command("JOB.LIST", "QUEUE", queue, "CURSOR", cursor)
        found += [as_map(j) for j in page]
        if cursor in (b"0", 0):
            return found


def slots_of(r: redis.Redis, queue: str) -> list[int]:
    return [int(as_map(j[b"meta"])[b"cron_slot"]) for j in jobs_of(r, queue)]


# ---------------------------------------------------------------- cron

@pytest.mark.parametrize("missed", ["skip", "once"])
def test_cron_fires_once_per_slot_across_restart(start_server: Any, tmp_path: Path,
                                                 missed: str) -> None:
    """An every-second entry: no slot ever fires twice, through a stop, 3 s of downtime and a
    restart; slots missed while down are skipped, or run once."""
    args = ("--cron-missed-grace", "500")
    proc: ServerProcess = start_server(*args)
    r = proc.client()
    assert r.execute_command("CRON.SET", "tick", "* * * * * *", "cronq", "p", "MISSED",
                             missed, "PRIORITY", "2") in (b"OK", True)
    entry = as_map(r.execute_command("CRON.GET", "tick"))
    assert entry[b"expression"] == b"* * * * * *" and entry[b"missed"] == missed.encode()
    wait_for(lambda: len(slots_of(r, "cronq")) >= 2)
    r.close()
    proc.stop()
    stopped_ms = int(time.time() * 1000)
    time.sleep(3)  # slots pass while the server is down
    restarted_ms = int(time.time() * 1000)
    proc = ServerProcess(proc.data_dir, *args).wait_ready()
    try:
        r = proc.client()
        wait_for(lambda: max(slots_of(r, "cronq")) > restarted_ms + 1000)
        slots = slots_of(r, "cronq")
        assert len(slots) == len(set(slots)), "a slot fired twice"
        assert all(slot % 1000 == 0 for slot in slots)
        assert max(slots) > restarted_ms  # firing again after the restart
        # a job pushed more than the grace after its slot can only be a missed slot's
        late = [j for j in jobs_of(r, "cronq")
                if j[b"created"] - int(as_map(j[b"meta"])[b"cron_slot"]) > 500]
        if missed == "once":
            assert late, "no job for the slots missed while down"
            assert all(stopped_ms - 1000 < int(as_map(j[b"meta"])[b"cron_slot"])
                       for j in late)
        else:
            assert late == []
        job = jobs_of(r, "cronq")[-1]
        assert job[b"key"] == b"cron:tick:" + str(slots[-1]).encode() and job[b"priority"] == 2
    finally:
        proc.stop()


def test_cron_commands(server: ServerProcess) -> None:
    r = server.client()
    r.execute_command("CRON.SET", "nightly", "30 2 * * *", "reports", "{}", "TZ", "Europe/Paris",
                      "RETRIES", "3", "META", "team", "ops")
    entry = as_map(r.execute_command("CRON.GET", "nightly"))
    assert entry[b"tz"] == b"Europe/Paris" and entry[b"next"] > time.time() * 1000
    assert as_map(entry[b"meta"]) == {b"team": b"ops"}
    assert [as_map(e)[b"name"] for e in r.execute_command("CRON.LIST")] == [b"nightly"]
    r.execute_command("CRON.PAUSE", "nightly")
    assert as_map(r.execute_command("CRON.GET", "nightly"))[b"paused"] == 1
    r.execute_command("CRON.RESUME", "nightly")
    with pytest.raises(redis.ResponseError, match="invalid cron expression"):
        r.execute_command("CRON.SET", "bad", "99 * * * *", "q", "p")
    with pytest.raises(redis.ResponseError, match="unknown time zone"):
        r.execute_command("CRON.SET", "bad", "@hourly", "q", "p", "TZ", "Mars/Base")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("CRON.SET", "bad", "@hourly", "q", "p", "DELAY", "5")
    with pytest.raises(redis.ResponseError, match="no such cron entry"):
        r.execute_command("CRON.PAUSE", "nope")
    assert r.execute_command("CRON.DEL", "nightly") == 1
    assert r.execute_command("CRON.DEL", "nightly") == 0
    assert r.execute_command("CRON.GET", "nightly") is None
    r.close()


# ---------------------------------------------------------------- dependencies

def test_three_level_chain_and_dead_parent(server: ServerProcess) -> None:
    r = server.client()
    a = r.execute_command("JOB.PUSH", "chain", "a")
    b = r.execute_command("JOB.PUSH", "chain", "b", "AFTER", "1", a)
    c = r.execute_command("JOB.PUSH", "chain", "c", "AFTER", "1", b)
    assert as_map(r.execute_command("JOB.GET", c))[b"after"] == [b]
    assert [run_one(r, "chain") for _ in range(3)] == [a, b, c]
    # a dead parent cancels its descendants, naming the parent
    x = r.execute_command("JOB.PUSH", "chain2", "x", "RETRIES", "0")
    y = r.execute_command("JOB.PUSH", "chain2", "y", "AFTER", "1", x)
    z = r.execute_command("JOB.PUSH", "chain2", "z", "AFTER", "2", x, y)
    run_one(r, "chain2", fail=True)
    for child, parent, state in ((y, x, b"dead"), (z, x, b"dead")):
        got = as_map(r.execute_command("JOB.GET", child))
        assert got[b"state"] == b"canceled"
        assert got[b"reason"] == b"parent " + parent + b" is " + state
    with pytest.raises(redis.ResponseError, match="no such parent job nope"):
        r.execute_command("JOB.PUSH", "chain", "p", "AFTER", "1", "nope")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("JOB.PUSH", "chain", "p", "AFTER", "two", a)
    r.close()


# ---------------------------------------------------------------- batches

def test_batch_of_100_fires_onsuccess_exactly_once(start_server: Any) -> None:
    proc: ServerProcess = start_server()
    r = proc.client()
    batch = r.execute_command("BATCH.NEW", "ONSUCCESS", "batch-done", "all good",
                              "ONCOMPLETE", "batch-ended", "ended")
    for i in range(100):
        r.execute_command("JOB.PUSH", "members", str(i), "BATCH", batch)
    r.execute_command("BATCH.COMMIT", batch)
    for _ in range(100):
        run_one(r, "members")
    got = as_map(r.execute_command("BATCH.GET", batch))
    assert (got[b"total"], got[b"succeeded"], got[b"committed"]) == (100, 100, 1)
    assert got[b"success_fired"] > 0 and got[b"complete_fired"] > 0
    [callback] = jobs_of(r, "batch-done")
    assert callback[b"payload"] == b"all good"
    assert as_map(callback[b"meta"]) == {b"batch": batch, b"callback": b"success"}
    assert len(jobs_of(r, "batch-ended")) == 1
    with pytest.raises(redis.ResponseError, match="committed"):
        r.execute_command("JOB.PUSH", "members", "late", "BATCH", batch)
    r.close()
    proc.stop()
    proc = ServerProcess(proc.data_dir).wait_ready()
    try:
        r = proc.client()
        assert len(jobs_of(r, "batch-done")) == 1
        assert as_map(r.execute_command("BATCH.GET", batch))[b"succeeded"] == 100
        assert r.execute_command("BATCH.GET", "nope") is None
    finally:
        proc.stop()


# ---------------------------------------------------------------- expiry

def test_expire_cancels_a_job_not_started(server: ServerProcess) -> None:
    r = server.client()
    soon = int(time.time() * 1000) + 300
    job_id = r.execute_command("JOB.PUSH", "expiring", "x", "DELAY", "1000", "EXPIRE", soon)
    got = wait_for(lambda: (j := as_map(r.execute_command("JOB.GET", job_id)))[b"state"]
                   == b"canceled" and j)
    assert got[b"reason"] == b"expired" and got[b"expire"] == soon
    with pytest.raises(redis.ResponseError, match="EXPIRE is not in the future"):
        r.execute_command("JOB.PUSH", "expiring", "x", "EXPIRE", "1000")
    r.close()


# ---------------------------------------------------------------- logs

def test_logs_followed_with_block_while_a_worker_writes(server: ServerProcess) -> None:
    r = server.client()
    job_id = r.execute_command("JOB.PUSH", "logged", "x")
    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "QUEUES", "logged")]
    followed: list[bytes] = []

    def follow() -> None:
        reader = server.client()
        position = 0
        while True:
            page = as_map(reader.execute_command("JOB.LOGS", job_id, "FROM", position,
                                                 "BLOCK", 5000))
            followed.extend(page[b"lines"])
            position = page[b"next"]
            if page[b"state"] == b"succeeded" and not page[b"lines"]:
                break
        reader.close()

    reader = threading.Thread(target=follow)
    reader.start()
    expected = []
    for step in range(20):
        line = f"step {step}".encode()
        expected.append(line)
        assert r.execute_command("JOB.LOG", job_id, job[b"token"], line) == step + 1
        time.sleep(0.01)
    r.execute_command("JOB.ACK", job_id, job[b"token"])
    reader.join(10)
    assert followed == expected
    tail = as_map(r.execute_command("JOB.LOGS", job_id, "FROM", "-2"))
    assert tail[b"lines"] == [b"step 18", b"step 19"] and tail[b"next"] == 20
    with pytest.raises(redis.ResponseError, match="is no longer valid"):
        r.execute_command("JOB.LOG", job_id, job[b"token"], "late")
    with pytest.raises(redis.ResponseError, match="no such job"):
        r.execute_command("JOB.LOGS", "nope")
    r.close()


def test_log_bound_drops_oldest_with_marker(start_server: Any) -> None:
    proc: ServerProcess = start_server("--job-log-max-lines", "3")
    r = proc.client()
    job_id = r.execute_command("JOB.PUSH", "q", "x")
    [job] = [as_map(j) for j in r.execute_command("JOB.FETCH", "QUEUES", "q")]
    r.execute_command("JOB.LOG", job_id, job[b"token"], "1", "2", "3", "4", "5")
    page = as_map(r.execute_command("JOB.LOGS", job_id))
    assert page[b"lines"][0].startswith(b"[2 earlier lines dropped")
    assert page[b"lines"][1:] == [b"3", b"4", b"5"]
    r.close()


# ---------------------------------------------------------------- archive

def test_finished_job_readable_from_archive_and_after_restart(start_server: Any) -> None:
    proc: ServerProcess = start_server("--job-hot-retention", "0")
    r = proc.client(protocol=3)
    job_id = r.execute_command("JOB.PUSH", "arch", "payload", "RETRIES", "0")
    [job] = r.execute_command("JOB.FETCH", "QUEUES", "arch")
    r.execute_command("JOB.LOG", job_id, job[b"token"], "line one", "line two")
    r.execute_command("JOB.ACK", job_id, job[b"token"], "RESULT", "42")
    wait_for(lambda: r.info("jobs")["archive_moved"] == 1)
    info = r.info("jobs")
    assert (info["jobs"], info["archive_errors"]) == (0, 0)
    got = r.execute_command("JOB.GET", job_id)
    assert (got[b"state"], got[b"result"], got[b"payload"]) == (b"succeeded", b"42", b"payload")
    assert r.execute_command("JOB.LOGS", job_id)[b"lines"] == [b"line one", b"line two"]
    assert r.execute_command("JOB.WAIT", job_id)[b"state"] == b"succeeded"
    _, page = r.execute_command("JOB.LIST", "QUEUE", "arch")
    assert [j[b"id"] for j in page] == [job_id]
    r.close()
    proc.stop()
    proc = ServerProcess(proc.data_dir, "--job-hot-retention", "0").wait_ready()
    try:
        r = proc.client(protocol=3)
        assert r.execute_command("JOB.GET", job_id)[b"result"] == b"42"
        # a dependency on an archived parent that succeeded: runs at once
        child = r.execute_command("JOB.PUSH", "arch", "child", "AFTER", "1", job_id)
        assert r.execute_command("JOB.GET", child)[b"state"] == b"queued"
        # JOB.RETRY brings an archived job back to run again
        r.execute_command("JOB.RETRY", job_id)
        assert r.execute_command("JOB.GET", job_id)[b"state"] == b"queued"
    finally:
        proc.stop()


def test_dead_jobs_in_the_archive_stay_in_the_dlq(start_server: Any) -> None:
    proc: ServerProcess = start_server("--job-hot-retention", "0")
    r = proc.client()
    dead = [r.execute_command("JOB.PUSH", "dlqa", str(i), "RETRIES", "0") for i in range(3)]
    for _ in dead:
        run_one(r, "dlqa", fail=True)
    wait_for(lambda: r.info("jobs")["archive_moved"] == 3)
    assert [as_map(j)[b"id"] for j in r.execute_command("DLQ.LIST", "QUEUE", "dlqa")] == dead
    assert r.execute_command("DLQ.REQUEUE", dead[0]) == 1
    assert as_map(r.execute_command("JOB.GET", dead[0]))[b"state"] == b"queued"
    assert r.execute_command("DLQ.PURGE", "QUEUE", "dlqa") == 2
    assert r.execute_command("DLQ.LIST", "QUEUE", "dlqa") == []
    assert r.execute_command("JOB.GET", dead[1]) is None
    r.close()


def test_archive_failure_keeps_jobs_in_memory_and_serving(start_server: Any,
                                                          tmp_path: Path) -> None:
    data = tmp_path / "s0"
    (data / "archive.sqlite3").mkdir(parents=True)  # SQLite cannot open a directory
    proc: ServerProcess = start_server("--job-hot-retention", "0")
    assert proc.data_dir == data
    r = proc.client()
    job_id = r.execute_command("JOB.PUSH", "q", "x")
    run_one(r, "q")
    info = wait_for(lambda: (i := r.info("jobs"))["archive_errors"] > 0 and i)
    assert (info["archive_ok"], info["jobs"]) == (0, 1)
    assert as_map(r.execute_command("JOB.GET", job_id))[b"state"] == b"succeeded"
    assert r.execute_command("PING") in (b"PONG", True)
    assert "job archive failed" in proc.log()
    r.close()


def test_finished_counts_include_the_archive(start_server: Any) -> None:
    """INFO jobs and QUEUE.STATS count a queue's finished jobs in memory and in the archive:
    `succeeded` does not drop to 0 when they move there, nor after a restart or purge."""
    proc: ServerProcess = start_server("--job-hot-retention", "0")
    r = proc.client()
    for _ in range(2):
        r.execute_command("JOB.PUSH", "counted", "ok")
        run_one(r, "counted")
    dead = r.execute_command("JOB.PUSH", "counted", "bad", "RETRIES", "0")
    run_one(r, "counted", fail=True)
    wait_for(lambda: r.info("jobs")["archive_moved"] == 3)

    def counts() -> tuple[dict[str, Any], dict[bytes, Any]]:
        line = r.info("jobs")["queue_counted"]
        return line, as_map(r.execute_command("QUEUE.STATS", "counted"))

    line, stats = counts()
    assert (line["succeeded"], line["dead"]) == (2, 1)
    assert (stats[b"succeeded"], stats[b"dead"]) == (2, 1)
    r.close()
    proc.stop()
    proc = ServerProcess(proc.data_dir, "--job-hot-retention", "0").wait_ready()
    try:
        r = proc.client()
        line, stats = counts()
        assert (line["succeeded"], line["dead"]) == (2, 1)
        assert r.execute_command("DLQ.PURGE", "QUEUE", "counted") == 1
        line, stats = counts()
        assert (line["succeeded"], line["dead"], stats[b"dead"]) == (2, 0, 0)
        assert r.execute_command("JOB.GET", dead) is None
    finally:
        proc.stop()
