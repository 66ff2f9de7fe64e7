"""Replication with real processes: a leader, followers, full and partial syncs, READONLY.

A few thousand mixed writes (every cache type, TTLs, a script, MULTI/EXEC, three databases)
and job operations (push, fetch, ack, fail, cron) on a leader must leave its followers with
the same data: one follower attached before the writes (it gets them as a stream), one after
(it gets them in its full sync). The comparison reads everything back through the protocol.
"""

from __future__ import annotations

import random
import signal
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import redis

from jobcached.replication.backlog import decode_commands
from tests.conftest import RawClient, ServerProcess, free_port

#: How long followers may take to reach the leader's offset.
SYNC_TIMEOUT_SECONDS = 20.0
DATABASES = 3

Start = Callable[..., ServerProcess]


def info(server: ServerProcess) -> dict[str, Any]:
    return server.client().info("replication")


def wait_synced(leader: ServerProcess, *followers: ServerProcess) -> None:
    """Until every follower applied everything the leader logged (and said so in its ack)."""
    deadline = time.monotonic() + SYNC_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        target = info(leader)["master_repl_offset"]
        states = [info(f) for f in followers]
        if all(s.get("master_link_status") == "up" and s["slave_repl_offset"] == target
               for s in states):
            return
        time.sleep(0.05)
    raise AssertionError(f"followers not in sync: leader {info(leader)}, "
                         f"followers {[info(f) for f in followers]}")


def dump_cache(server: ServerProcess) -> dict[tuple[int, bytes], Any]:
    """Every key of every database: type, contents read per type, absolute expiry."""
    out: dict[tuple[int, bytes], Any] = {}
    for db in range(DATABASES):
        r = server.client(db=db)
        for key in r.scan_iter(count=1000):
            kind = r.type(key)
            value: Any
            if kind == b"string":
                value = r.get(key)
            elif kind == b"hash":
                value = r.hgetall(key)
            elif kind == b"list":
                value = r.lrange(key, 0, -1)
            elif kind == b"set":
                value = sorted(r.smembers(key))
            elif kind == b"zset":
                value = r.zrange(key, 0, -1, withscores=True)
            else:
                assert kind == b"stream"
                value = _stream(r, key)
            out[(db, key)] = (kind, value, r.pexpiretime(key))
    return out


def _stream(r: redis.Redis, key: bytes) -> Any:
    """A stream's entries, groups and pending entries, without the idle times (which are
    each node's own clock's business)."""
    groups = r.xinfo_groups(key)
    pending = []
    for group in groups:
        for entry in r.xpending_range(key, group["name"], "-", "+", 1000):
            pending.append((group["name"], entry["message_id"], entry["consumer"],
                            entry["times_delivered"]))
    return (r.xrange(key), [(g["name"], g["pending"], g["last-delivered-id"]) for g in groups],
            pending)


def dump_jobs(server: ServerProcess) -> dict[bytes, Any]:
    r = server.client()
    jobs: dict[bytes, Any] = {}
    cursor: Any = "0"
    while True:
        cursor, page = r.execute_command("JOB.LIST", "CURSOR", cursor, "COUNT", 1000)
        for job in page:
            jobs[job[b"id"]] = job
        if cursor in (b"0", 0, "0"):
            return jobs


def cache_workload(leader: ServerProcess, rng: random.Random) -> None:
    """About 3,000 cache writes of every type, over three databases."""
    clients = [leader.client(db=db) for db in range(DATABASES)]
    for round_ in range(10):
        for db, r in enumerate(clients):
            pipe = r.pipeline(transaction=False)
            for i in range(25):
                n = rng.randrange(200)
                pipe.set(f"s{n}", f"v{round_}-{i}")
                pipe.set(f"ttl{n}", "x", ex=rng.randrange(1000, 5000))
                pipe.incrbyfloat(f"f{n % 10}", 0.5)
                pipe.hset(f"h{n % 20}", f"field{i}", rng.randrange(1000))
                pipe.rpush(f"l{n % 10}", f"item{i}")
                pipe.sadd(f"set{n % 10}", f"m{rng.randrange(50)}")
                pipe.zadd(f"z{n % 10}", {f"m{i}": rng.random()})
                pipe.xadd(f"x{n % 3}", {"i": str(i), "db": str(db)})
                if i % 5 == 0:
                    pipe.spop(f"set{n % 10}")
                    pipe.lpop(f"l{n % 10}")
                    pipe.pexpireat(f"h{n % 20}", int(time.time() * 1000) + 600_000)
                    pipe.delete(f"s{rng.randrange(200)}")
            pipe.execute()
    r = clients[0]
    r.xgroup_create("x0", "g", id="0")
    r.xreadgroup("g", "alice", {"x0": ">"}, count=5)
    r.eval("redis.call('SET', KEYS[1], ARGV[1]); redis.call('INCR', KEYS[2]); "
           "return redis.call('SPOP', KEYS[3])", 3, "script:a", "script:n", "set0", "from-lua")
    tx = r.pipeline(transaction=True)
    tx.set("tx:a", "1").incr("tx:n").lpush("tx:l", "a", "b").expire("tx:a", 3000)
    tx.execute()
    r.function_load("#!lua name=lib\nredis.register_function('setit', function(keys, args) "
                    "return redis.call('SET', keys[1], args[1]) end)")
    r.fcall("setit", 1, "fn:key", "fn-value")


def job_workload(leader: ServerProcess) -> list[tuple[bytes, bytes]]:
    """Pushes, fetches, acks, fails and a cron entry; returns the leases left running."""
    r = leader.client()
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        queue = f"q{i % 3}"
        if i % 10 == 0:
            pipe.execute_command("JOB.PUSH", queue, f"p{i}", "KEY", f"k{i}", "PRIORITY", i % 4)
        else:
            pipe.execute_command("JOB.PUSH", queue, f"p{i}", "META", "n", str(i))
    pipe.execute()
    leases: list[tuple[bytes, bytes]] = []
    for queue in ("q0", "q1", "q2"):
        for job in r.execute_command("JOB.FETCH", "COUNT", 40, "WORKER", "w1", "QUEUES", queue):
            leases.append((job[b"id"], job[b"token"]))
    for job_id, token in leases[:50]:
        r.execute_command("JOB.ACK", job_id, token, "RESULT", b"done:" + job_id)
    for job_id, token in leases[50:80]:
        r.execute_command("JOB.FAIL", job_id, token, "boom", "RETRYIN", 600_000)
    r.execute_command("CRON.SET", "nightly", "0 3 * * *", "q0", "cron-payload")
    return leases[80:]


def cron_entry(server: ServerProcess) -> dict[bytes, Any]:
    """CRON.GET without `next`: a follower arms no cron timer until it is promoted."""
    entry = server.client().execute_command("CRON.GET", "nightly")
    entry.pop(b"next")
    return dict(entry)


def assert_same(leader: ServerProcess, *followers: ServerProcess) -> None:
    cache, jobs = dump_cache(leader), dump_jobs(leader)
    cron = cron_entry(leader)
    functions = leader.client().function_list(withcode=True)
    assert len(cache) > 500 and len(jobs) == 200
    for follower in followers:
        assert dump_cache(follower) == cache
        assert dump_jobs(follower) == jobs
        assert cron_entry(follower) == cron
        assert follower.client().function_list(withcode=True) == functions


def test_followers_before_and_after_the_writes_hold_the_same_data(start_server: Start) -> None:
    leader = start_server()
    early = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, early)
    rng = random.Random(18)
    cache_workload(leader, rng)
    running = job_workload(leader)
    late = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, early, late)
    assert_same(leader, early, late)
    assert leader.client().info("stats")["sync_full"] == 2
    roles = leader.client().execute_command("ROLE")
    assert roles[0] == b"master" and len(roles[2]) == 2
    assert {int(entry[1]) for entry in roles[2]} == {early.port, late.port}
    role = late.client().execute_command("ROLE")
    assert role[:4] == [b"slave", b"127.0.0.1", leader.port, b"connected"]
    state = info(leader)
    assert state["connected_slaves"] == 2 and state["slave0"]["state"] == "online"
    assert state["repl_backlog_active"] == 1
    # WAIT counts the followers that acknowledged the writes so far.
    leader.client().set("waited", "1")
    assert leader.client().execute_command("WAIT", 2, 5000) == 2
    assert leader.client().execute_command("WAIT", 3, 200) == 2  # the timeout: those that did
    # The running jobs are running on the followers too, with the leader's deadlines.
    job_id, _ = running[0]
    on_leader = leader.client().execute_command("JOB.GET", job_id)
    assert late.client().execute_command("JOB.GET", job_id) == on_leader
    assert on_leader[b"state"] == b"running"


def test_a_follower_refuses_writes_and_serves_reads(start_server: Start) -> None:
    leader = start_server()
    leader.client().set("k", "v")
    job_id = leader.client().execute_command("JOB.PUSH", "q", "payload")
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    r = follower.client()
    refused = [("SET", "x", "1"), ("DEL", "k"), ("JOB.PUSH", "q", "p"),
               ("JOB.FETCH", "QUEUES", "q"), ("JOB.CANCEL", job_id),
               ("CRON.SET", "c", "0 3 * * *", "q", "p"),
               ("EVAL", "return redis.call('SET', 'k', 'w')", 0)]
    for command in refused:
        with pytest.raises(redis.ResponseError, match="You can't write against a read only "
                                                      "replica"):
            r.execute_command(*command)
    tx = r.pipeline(transaction=True)
    tx.set("x", "1")
    with pytest.raises(redis.ResponseError):
        tx.execute()
    assert r.get("k") == b"v"
    assert r.execute_command("JOB.GET", job_id)[b"state"] == b"queued"
    assert r.execute_command("JOB.LIST", "QUEUE", "q")[1][0][b"id"] == job_id
    assert r.execute_command("QUEUE.STATS", "q")
    assert r.execute_command("EVAL", "return redis.call('GET', 'k')", 0) == b"v"
    with pytest.raises(redis.ResponseError, match="WAIT cannot be used with replica"):
        r.execute_command("WAIT", 1, 10)


def test_a_broken_link_continues_from_the_backlog(start_server: Start) -> None:
    metrics_port = free_port()
    leader = start_server("--metrics-port", str(metrics_port))
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    r = leader.client()
    r.set("before", "1")
    wait_synced(leader, follower)
    links = [c for c in r.client_list() if c["cmd"] in ("replconf", "psync")]
    assert len(links) == 1
    r.client_kill_filter(_id=links[0]["id"])
    for i in range(100):
        r.set(f"after{i}", i)
    wait_synced(leader, follower)
    stats = r.info("stats")
    assert (stats["sync_full"], stats["sync_partial_ok"]) == (1, 1)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
    assert b"jobcached_repl_followers 1.0" in metrics
    assert b'jobcached_repl_syncs_total{kind="partial"} 1.0' in metrics
    assert follower.client().get("after99") == b"99"
    assert dump_cache(follower) == dump_cache(leader)


def test_a_stopped_follower_catches_up_when_it_continues(start_server: Start) -> None:
    leader = start_server()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    follower.proc.send_signal(signal.SIGSTOP)
    try:
        cache_workload(leader, random.Random(7))
        job_workload(leader)
        time.sleep(1.5)  # acks stop: the leader's view of it lags
        assert info(leader)["slave0"]["offset"] < info(leader)["master_repl_offset"]
    finally:
        follower.proc.send_signal(signal.SIGCONT)
    wait_synced(leader, follower)
    assert dump_cache(follower) == dump_cache(leader)
    assert dump_jobs(follower) == dump_jobs(leader)
    assert leader.client().info("stats")["sync_full"] == 1  # the same link, no new sync


def test_a_key_expires_on_the_follower_when_the_leader_deletes_it(start_server: Start) -> None:
    leader = start_server("--enable-debug-command", "yes")
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    r, f = leader.client(), follower.client()
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    r.set("t", "v", px=300)
    # Every relative form: the leader logs an absolute time, the same on both.
    r.set("ex", "v", ex=100)
    r.execute_command("SETEX", "setex", 200, "v")
    r.execute_command("PSETEX", "psetex", 300_000, "v")
    r.set("expire", "v")
    r.expire("expire", 400)
    r.set("getex", "v")
    r.getex("getex", px=500_000)
    r.eval("redis.call('SET', KEYS[1], 'v', 'EX', 600)", 1, "lua")
    wait_synced(leader, follower)
    for key in ("t", "ex", "setex", "psetex", "expire", "getex", "lua"):
        assert f.pexpiretime(key) == r.pexpiretime(key) > 0
    r.delete("ex", "setex", "psetex", "expire", "getex", "lua")
    time.sleep(0.5)
    assert f.get("t") is None and f.exists("t") == 0  # past its TTL: missing to readers...
    assert f.dbsize() == 1  # ...but kept until the leader says so, as on a Redis replica
    assert r.get("t") is None  # the leader finds it expired: its DEL reaches the follower
    wait_synced(leader, follower)
    assert f.dbsize() == 0


def test_evictions_reach_the_follower(start_server: Start) -> None:
    leader = start_server("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    r = leader.client()
    for batch in range(10):
        pipe = r.pipeline(transaction=False)
        for i in range(500):
            pipe.set(f"big:{batch}:{i}", "x" * 1024)
        pipe.execute()
    wait_synced(leader, follower)
    assert r.info("stats")["evicted_keys"] > 0
    assert dump_cache(follower) == dump_cache(leader)


def test_sync_and_psync_on_the_wire(start_server: Start) -> None:
    leader = start_server()
    leader.client().set("k", "v")
    raw = RawClient(leader.port)
    raw.send(b"SYNC\r\n")  # the old full sync: the payload at once, no +FULLRESYNC line
    header = raw.recv_line()
    assert header.startswith(b"$")
    payload = decode_commands(raw.recv_exactly(int(header[1:-2])))
    assert [b"SELECT", b"0"] in payload
    assert [argv for argv in payload if argv[0] == b"SET"] == [[b"SET", b"k", b"v"]]
    leader.client().set("after", "1")  # then the stream
    assert decode_commands(raw.recv_exactly(len(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
                                                 b"*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n1\r\n"))
                           ) == [[b"SELECT", b"0"], [b"SET", b"after", b"1"]]
    raw.close()
    psync = RawClient(leader.port)
    psync.send(b"PSYNC nosuchid 100\r\n")
    assert psync.recv_line().startswith(b"+FULLRESYNC ")
    psync.close()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    chained = RawClient(follower.port)
    chained.transcript(b"PSYNC ? -1\r\n",
                       b"-ERR Replica can't sync: this server follows a leader itself\r\n")
