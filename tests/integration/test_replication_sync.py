"""Synchronous replication with real processes: JOB.PUSH / ACK / FAIL with REPLICAS, WAIT's
prompt acks, and min-replicas-to-write (its errors compared with a real redis-server 7.0).

A follower stopped with SIGSTOP keeps its TCP connection but acknowledges nothing: the leader
still counts it as connected, so a REPLICAS wait runs into its TIMEOUT (-NOREPL, the change
kept) and min-replicas-max-lag stops counting it as good.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from tests.conftest import RawClient, RedisServerProcess, ServerProcess
from tests.integration.test_replication import info, wait_synced

Start = Callable[..., ServerProcess]

NOREPL_TIMEOUT = "NOREPL Timeout reached before replicating to the requested number of replicas"
NOREPL_UNREACHABLE = "NOREPL Not enough connected replicas for the requested replication level"
NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
#: How long a follower may take to count as good again once it acks (seconds).
GOOD_AGAIN_SECONDS = 10.0


def error_of(r: redis.Redis, *command: Any) -> str:
    with pytest.raises(redis.ResponseError) as caught:
        r.execute_command(*command)
    return str(caught.value)


@contextmanager
def stopped(follower: ServerProcess) -> Iterator[None]:
    follower.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        follower.proc.send_signal(signal.SIGCONT)


def pair(start_server: Start, *leader_args: str) -> tuple[ServerProcess, ServerProcess]:
    leader = start_server(*leader_args)
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    return leader, follower


def test_push_with_replicas_returns_once_the_follower_has_the_job(start_server: Start) -> None:
    leader, follower = pair(start_server)
    r, f = leader.client(), follower.client()
    started = time.monotonic()
    ids = [r.execute_command("JOB.PUSH", "q", f"p{i}", "REPLICAS", 1, "TIMEOUT", 5000)
           for i in range(10)]
    # The leader asks for an ACK at once (GETACK): without it each push would wait for the
    # follower's next once-a-second ACK, some 10 s for ten in a row.
    assert time.monotonic() - started < 4.0
    for job_id in ids:  # acknowledged means applied there: no waiting needed
        assert f.execute_command("JOB.GET", job_id)[b"payload"].startswith(b"p")
    # REPLICAS 0 does not wait; a TIMEOUT elsewhere is still the lease's.
    job_id = r.execute_command("JOB.PUSH", "q", "lease", "TIMEOUT", 7000, "REPLICAS", 1,
                               "TIMEOUT", 2000)
    assert r.execute_command("JOB.GET", job_id)[b"timeout"] == 7000
    assert r.execute_command("JOB.PUSH", "q", "none", "REPLICAS", 0)
    # WAIT asks for acks too: it answers in a round trip, not at the next periodic ACK.
    started = time.monotonic()
    for i in range(5):
        r.set("k", i)
        assert r.execute_command("WAIT", 1, 5000) == 1
    assert time.monotonic() - started < 2.5


def test_a_stopped_follower_times_the_push_out_and_the_job_is_kept(start_server: Start) -> None:
    leader, follower = pair(start_server)
    r = leader.client()
    with stopped(follower):
        started = time.monotonic()
        assert error_of(r, "JOB.PUSH", "q", "kept", "REPLICAS", 1, "TIMEOUT", 300) == \
            NOREPL_TIMEOUT
        assert time.monotonic() - started >= 0.3
        page = r.execute_command("JOB.LIST", "QUEUE", "q")[1]
        assert [job[b"payload"] for job in page] == [b"kept"]
        # The wait does not block the connection: pipelined replies come back in order.
        pipe = r.pipeline(transaction=False)
        pipe.execute_command("JOB.PUSH", "q", "second", "REPLICAS", 1, "TIMEOUT", 200)
        pipe.ping()
        pipe.execute_command("QUEUE.STATS", "q")
        first, pong, stats = pipe.execute(raise_on_error=False)
        assert isinstance(first, redis.ResponseError) and str(first) == NOREPL_TIMEOUT
        assert pong is True and stats[b"queued"] == 2
    wait_synced(leader, follower)
    on_follower = follower.client().execute_command("JOB.LIST", "QUEUE", "q")[1]
    assert sorted(job[b"payload"] for job in on_follower) == [b"kept", b"second"]


def test_replicas_beyond_the_connected_followers_refuse_at_once(start_server: Start) -> None:
    leader = start_server()
    r = leader.client()
    started = time.monotonic()
    # (redis-py keeps the code of errors it has no class for: the whole line is compared)
    assert error_of(r, "JOB.PUSH", "q", "p", "REPLICAS", 1, "TIMEOUT", 5000) == \
        NOREPL_UNREACHABLE
    assert time.monotonic() - started < 1.0
    assert r.execute_command("JOB.LIST", "QUEUE", "q")[1] == []  # nothing was created
    assert r.execute_command("JOB.PUSH", "q", "p", "REPLICAS", 0)
    assert error_of(r, "JOB.PUSH", "q", "p", "REPLICAS", -1) == "REPLICAS must not be negative"
    assert error_of(r, "JOB.PUSH", "q", "p", "REPLICAS", 1, "TIMEOUT", 0) == \
        "REPLICAS TIMEOUT must be positive"
    assert error_of(r, "JOB.PUSH", "q", "p", "REPLICAS") == "syntax error"
    assert error_of(r, "JOB.ACK", "id", "token", "REPLICAS", "x") == \
        "value is not an integer or out of range"
    assert error_of(r, "CRON.SET", "c", "0 3 * * *", "q", "p", "REPLICAS", 1) == "syntax error"
    tx = r.pipeline(transaction=True)
    tx.execute_command("JOB.PUSH", "q", "in-multi", "REPLICAS", 1)
    (reply,) = tx.execute(raise_on_error=False)
    assert "REPLICAS cannot wait inside MULTI/EXEC" in str(reply)
    assert error_of(r, "EVAL", "return redis.call('JOB.PUSH', 'q', 'p', 'REPLICAS', 1)", 0)\
        .startswith("REPLICAS cannot wait inside MULTI/EXEC or a script")


def test_ack_and_fail_with_replicas(start_server: Start) -> None:
    leader, follower = pair(start_server)
    r, f = leader.client(), follower.client()
    for payload in ("a", "b", "c"):
        r.execute_command("JOB.PUSH", "q", payload, "RETRIES", 3)
    jobs = r.execute_command("JOB.FETCH", "COUNT", 3, "QUEUES", "q")
    (a_id, a_token), (b_id, b_token), (c_id, c_token) = [(j[b"id"], j[b"token"]) for j in jobs]
    assert r.execute_command("JOB.ACK", a_id, a_token, "RESULT", "done", "REPLICAS", 1) == b"OK"
    assert f.execute_command("JOB.GET", a_id)[b"state"] == b"succeeded"
    assert r.execute_command("JOB.FAIL", b_id, b_token, "boom", "REPLICAS", 1, "TIMEOUT",
                             5000, "RETRYIN", 60_000) == b"retrying"
    assert f.execute_command("JOB.GET", b_id)[b"state"] == b"retrying"
    with stopped(follower):
        assert error_of(r, "JOB.ACK", c_id, c_token, "REPLICAS", 1, "TIMEOUT", 200) == \
            NOREPL_TIMEOUT
        assert r.execute_command("JOB.GET", c_id)[b"state"] == b"succeeded"  # kept
    wait_synced(leader, follower)
    assert f.execute_command("JOB.GET", c_id)[b"state"] == b"succeeded"


def wait_until(check: Callable[[], bool], seconds: float = GOOD_AGAIN_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def writes_refused(r: redis.Redis) -> bool:
    try:
        r.set("probe", "1")
    except redis.ResponseError as exc:
        assert str(exc) == NOREPLICAS
        return True
    return False


def test_min_replicas_refuses_writes_until_a_follower_is_good(start_server: Start) -> None:
    leader = start_server("--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")
    r = leader.client()
    assert writes_refused(r)
    assert error_of(r, "JOB.PUSH", "q", "p") == NOREPLICAS
    assert r.get("probe") is None and r.execute_command("QUEUE.STATS", "q")[b"queued"] == 0
    assert info(leader)["min_slaves_good_slaves"] == 0
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    assert not writes_refused(r)
    assert r.execute_command("JOB.PUSH", "q", "p")
    assert info(leader)["min_slaves_good_slaves"] == 1
    raw = RawClient(leader.port)
    raw.transcript(b"MULTI\r\nSET tx 1\r\n", b"+OK\r\n+QUEUED\r\n")
    with stopped(follower):  # no acks: past max-lag the follower is no longer good
        wait_until(lambda: writes_refused(r))
        assert info(leader)["min_slaves_good_slaves"] == 0
        # queued while it was good, refused at EXEC (Redis' execCommandAbort)
        raw.transcript(b"EXEC\r\n", b"-EXECABORT Transaction discarded because of: "
                                      b"NOREPLICAS Not enough good replicas to write.\r\n")
        raw.transcript(b"EXEC\r\n", b"-ERR EXEC without MULTI\r\n")
    wait_until(lambda: not writes_refused(r))
    # CONFIG at run time, old names included
    r.config_set("min-slaves-to-write", 2)
    assert r.config_get("min-replicas-to-write") == {"min-replicas-to-write": "2"}
    assert writes_refused(r)
    r.config_set("min-replicas-max-lag", 0)  # 0 turns the check off, as in Redis
    assert not writes_refused(r)
    assert "min_slaves_good_slaves" not in info(leader)
    r.config_set("min-replicas-max-lag", 10)
    r.config_set("min-replicas-to-write", 0)
    assert not writes_refused(r)


#: What both servers are asked with min-replicas-to-write 1 and no replica: every reply, or
#: error text, must match.
DIFFERENTIAL: list[tuple[Any, ...]] = [
    ("SET", "k", "v"), ("GET", "k"), ("DEL", "k"), ("PUBLISH", "ch", "m"), ("INCR", "n"),
    ("EVAL", "return redis.pcall('SET', 'k', 'v')", 0),
    ("EVAL", "#!lua\nreturn redis.call('SET', 'k', 'v')", 0),
    ("EVAL", "#!lua flags=no-writes\nreturn redis.call('GET', 'k')", 0),
    ("EVAL", "return redis.call('GET', 'k')", 0),
]


def replies(r: redis.Redis) -> list[Any]:
    out: list[Any] = []
    for command in DIFFERENTIAL:
        try:
            out.append(r.execute_command(*command))
        except redis.ResponseError as exc:
            out.append(("error", str(exc)))
    pipe = r.pipeline(transaction=True)  # the SET is refused while queued: EXECABORT
    pipe.set("k", "v")
    try:
        pipe.execute()
    except redis.ResponseError as exc:
        out.append(("error", str(exc)))
    out.append(r.info("replication")["min_slaves_good_slaves"])
    return out


def test_min_replicas_errors_match_redis(start_server: Start,
                                         redis_server: RedisServerProcess) -> None:
    ours = start_server()
    theirs = redis_server.client()
    try:
        for r in (ours.client(), theirs):
            r.config_set("min-replicas-to-write", 1)
        expected = replies(theirs)
        assert ("error", NOREPLICAS) in expected
        assert replies(ours.client()) == expected
    finally:
        theirs.config_set("min-replicas-to-write", 0)


def test_a_push_after_an_archived_parent_waits_for_the_follower_too(start_server: Start) -> None:
    leader, follower = pair(start_server, "--job-hot-retention", "0")
    r = leader.client()
    parent = r.execute_command("JOB.PUSH", "arch", "parent")
    [job] = r.execute_command("JOB.FETCH", "QUEUES", "arch")
    r.execute_command("JOB.ACK", parent, job[b"token"])
    wait_until(lambda: r.info("jobs")["archive_moved"] == 1)
    # the parent is looked up in the archive first; the reply still waits for the follower
    child = r.execute_command("JOB.PUSH", "arch", "child", "AFTER", 1, parent, "REPLICAS", 1,
                              "TIMEOUT", 5000)
    assert follower.client().execute_command("JOB.GET", child)[b"state"] == b"queued"
    with stopped(follower):
        assert error_of(r, "JOB.PUSH", "arch", "late", "AFTER", 1, parent, "REPLICAS", 1,
                        "TIMEOUT", 200) == NOREPL_TIMEOUT
    assert r.execute_command("QUEUE.STATS", "arch")[b"queued"] == 2


def test_wait_without_followers_blocks_until_its_timeout_as_redis(
        server: ServerProcess, redis_server: RedisServerProcess) -> None:
    """Redis' WAIT blocks for its timeout even when no replica is attached (and answers 0);
    WAIT 0 answers at once."""
    for r in (server.client(), redis_server.client()):
        started = time.monotonic()
        assert r.execute_command("WAIT", 1, 300) == 0
        assert time.monotonic() - started >= 0.25
        assert r.execute_command("WAIT", 0, 0) == 0
