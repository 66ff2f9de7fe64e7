"""Hostile bytes in job commands, against a real server: a change that cannot be logged is
refused before it happens, everyone else goes on being served, and a restart replays to the
same state (issue: a non-UTF-8 TYPE once created a job it could not log, stranded every lease
of its queue and stopped the server from starting again)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import hiredis
import pytest
import redis

from jobcached.jobs.records import encode_record
from jobcached.persistence.wal import Wal
from tests.conftest import RawClient, ServerProcess, free_port
from tests.integration.test_jobs import as_map

BAD = b"x\xffy"

#: every way a non-UTF-8 name or field reaches the job engine
REFUSED = [
    ("queue", ["JOB.PUSH", BAD, "payload"]),
    ("TYPE", ["JOB.PUSH", "emails", "payload", "TYPE", BAD]),
    ("META field", ["JOB.PUSH", "emails", "payload", "META", BAD, "v"]),
    ("META value", ["JOB.PUSH", "emails", "payload", "META", "k", BAD]),
    ("KEY", ["JOB.PUSH", "emails", "payload", "KEY", BAD]),
    ("cron name", ["CRON.SET", BAD, "* * * * *", "emails", "payload"]),
    ("cron queue", ["CRON.SET", "nightly", "* * * * *", BAD, "payload"]),
    ("paused queue", ["QUEUE.PAUSE", BAD]),
    ("fetched queue", ["JOB.FETCH", "QUEUES", BAD]),
    ("batch callback queue", ["BATCH.NEW", "ONSUCCESS", BAD, "payload"]),
]


class MetricsServer(ServerProcess):
    def __init__(self, data_dir: Path, *args: str) -> None:
        self.metrics_port = free_port()
        super().__init__(data_dir, "--metrics-port", str(self.metrics_port), *args)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()


def everything_answers(server: MetricsServer, client: redis.Redis) -> dict[str, object]:
    """What a restart must reproduce, read through every view that once failed."""
    client.info()
    client.info("jobs")
    assert "jobcached_jobs" in server.metrics()
    jobs = client.execute_command("JOB.LIST", "COUNT", "1000")
    return {"jobs": jobs, "queues": client.execute_command("QUEUE.LIST"),
            "cron": client.execute_command("CRON.LIST")}


@pytest.mark.parametrize(("what", "argv"), REFUSED, ids=[what for what, _ in REFUSED])
def test_a_non_utf8_name_is_refused_and_changes_nothing(tmp_path: Path, what: str,
                                                        argv: list[object]) -> None:
    server = MetricsServer(tmp_path).wait_ready()
    try:
        client = server.client()
        good = client.execute_command("JOB.PUSH", "emails", "ok")
        before = everything_answers(server, client)
        with pytest.raises(redis.ResponseError, match="must be UTF-8 text"):
            client.execute_command(*argv)
        assert everything_answers(server, client) == before
        [job] = client.execute_command("JOB.FETCH", "COUNT", "10", "QUEUES", "emails")
        assert as_map(job)[b"id"] == good
        leased = everything_answers(server, client)
    finally:
        server.stop()
    again = MetricsServer(tmp_path).wait_ready()
    try:
        assert everything_answers(again, again.client()) == leased
    finally:
        again.stop()


def read_reply(raw: RawClient) -> object:
    """One whole reply from a raw socket, parsed."""
    reader = hiredis.Reader()
    while (reply := reader.gets()) is False:
        reader.feed(raw.sock.recv(65536))
    return reply


def test_the_reproduction_from_the_issue_over_a_raw_socket(tmp_path: Path) -> None:
    """`printf 'JOB.PUSH emails x TYPE "\\xff"...' | nc`: inline commands decode the escape."""
    server = ServerProcess(tmp_path).wait_ready()
    try:
        client = server.client()
        good = client.execute_command("JOB.PUSH", "emails", "ok")
        raw = RawClient(server.port)
        raw.send(b'JOB.PUSH emails x TYPE "\\xff"\r\n')
        error = read_reply(raw)
        assert isinstance(error, hiredis.ReplyError) and "must be UTF-8" in str(error)
        raw.send(b"JOB.FETCH COUNT 10 QUEUES emails\r\n")
        [job] = read_reply(raw)  # type: ignore[misc]
        fields = dict(zip(job[::2], job[1::2], strict=True))
        assert fields[b"id"] == good
        client.execute_command("JOB.ACK", good, fields[b"token"])
    finally:
        server.stop()
    again = ServerProcess(tmp_path).wait_ready()
    try:
        job = as_map(again.client().execute_command("JOB.GET", good))
        assert job[b"state"] == b"succeeded"
    finally:
        again.stop()


def test_failure_reports_keep_undecodable_bytes_visible(server: ServerProcess) -> None:
    client = server.client()
    job_id = client.execute_command("JOB.PUSH", "reports", "p", "RETRIES", "0")
    [job] = client.execute_command("JOB.FETCH", "QUEUES", "reports")
    token = as_map(job)[b"token"]
    assert client.execute_command("JOB.FAIL", job_id, token, b"bad \xff byte", "ERRTYPE",
                                  b"E\xfe", "TRACE", b"\x80") == b"dead"
    [error] = as_map(client.execute_command("JOB.GET", job_id))[b"errors"]
    error = as_map(error)
    assert error[b"message"] == b"bad \\xff byte"
    assert (error[b"type"], error[b"trace"]) == (b"E\\xfe", b"\\x80")


def test_options_after_queues_are_refused(server: ServerProcess) -> None:
    client = server.client()
    client.execute_command("JOB.PUSH", "block", "not fetched")
    with pytest.raises(redis.ResponseError, match="QUEUES must come last: BLOCK"):
        client.execute_command("JOB.FETCH", "COUNT", "1", "QUEUES", "q", "BLOCK", "100")
    assert client.execute_command("QUEUE.STATS", "block")


def wait_for_blocked(client: redis.Redis, count: int) -> None:
    for _ in range(500):
        if client.info("clients")["blocked_clients"] == count:
            return
        time.sleep(0.01)
    assert client.info("clients")["blocked_clients"] == count


def test_blocked_job_clients_count_in_info(server: ServerProcess) -> None:
    client = server.client()
    wait_for_blocked(client, 0)
    fetcher, waiter = RawClient(server.port), RawClient(server.port)
    job_id = client.execute_command("JOB.PUSH", "waited-on", "x", "DELAY", "600000")
    fetcher.send(b"JOB.FETCH BLOCK 0 QUEUES nobody-pushes-here\r\n")
    waiter.send(b"JOB.WAIT " + job_id + b"\r\n")
    wait_for_blocked(client, 2)
    fetcher.close()
    wait_for_blocked(client, 1)
    client.execute_command("JOB.CANCEL", job_id)
    assert read_reply(waiter)
    wait_for_blocked(client, 0)


def test_a_record_about_a_job_the_log_never_added_is_skipped_at_start(tmp_path: Path) -> None:
    """Logs written before this fix can hold a lease for a job whose put was never logged:
    the server starts (with and without --repair), counts it and serves the rest."""
    wal = Wal(str(tmp_path / "wal"))
    list(wal.replay())
    wal.open_for_append()
    orphan = {"op": "lease", "id": "0NEVERLOGGED", "now": 1, "worker": "w", "token": "t",
              "deadline": 2}
    wal.write_batch([encode_record(orphan), encode_record({"op": "delete",
                                                           "ids": ["0NEVERLOGGED"]})])
    wal.close()
    for flags in ((), ("--repair",)):
        server = ServerProcess(tmp_path, *flags).wait_ready()
        try:
            client = server.client()
            assert client.info("persistence")["wal_skipped_records"] == 2
            job_id = client.execute_command("JOB.PUSH", "q", "after")
            assert as_map(client.execute_command("JOB.GET", job_id))[b"state"] == b"queued"
        finally:
            server.stop()
