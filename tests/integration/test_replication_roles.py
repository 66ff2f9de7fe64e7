"""Replication roles with real processes: promotion, a follower's own WAL, REPLICAOF at run
time, and the refusal of a full sync that would wipe live jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.conftest import ServerProcess
from tests.integration.test_replication import dump_cache, dump_jobs, info, wait_synced

Start = Callable[..., ServerProcess]


def wait_for(predicate: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_promotion_accepts_writes_and_running_jobs_keep_their_deadlines(
        start_server: Start) -> None:
    leader = start_server()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    r = leader.client()
    for i in range(3):
        r.execute_command("JOB.PUSH", "q", f"p{i}")
    [long_job] = r.execute_command("JOB.FETCH", "LEASE", 600_000, "QUEUES", "q")
    [short_job] = r.execute_command("JOB.FETCH", "LEASE", 1500, "QUEUES", "q")
    r.set("k", "v")
    wait_synced(leader, follower)
    old_replid = info(leader)["master_replid"]
    leader.stop()

    f = follower.client()
    assert f.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    wait_for(lambda: f.execute_command("ROLE")[0] == b"master")
    state = info(follower)
    assert state["role"] == "master" and state["master_replid"] != old_replid
    assert state["master_replid2"] == old_replid
    assert f.set("written", "after") and f.get("k") == b"v"
    assert f.execute_command("JOB.PUSH", "q", "new")
    kept = f.execute_command("JOB.GET", long_job[b"id"])
    assert (kept[b"state"], kept[b"deadline"]) == (b"running", long_job[b"deadline"])
    # The short lease ends at its deadline on the promoted server: its timers run again.
    expired = wait_for(lambda: (job := f.execute_command("JOB.GET", short_job[b"id"]))[
        b"state"] != b"running" and job)
    assert expired[b"state"] in (b"queued", b"retrying")
    assert int(time.time() * 1000) >= short_job[b"deadline"]
    acked = f.execute_command("JOB.ACK", long_job[b"id"], long_job[b"token"])
    assert acked in (b"OK", "OK", True)


def test_a_restarted_follower_keeps_its_jobs_from_its_own_wal(start_server: Start) -> None:
    leader = start_server()
    before = leader.client().execute_command("JOB.PUSH", "q", "before-sync")
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    after = leader.client().execute_command("JOB.PUSH", "q", "after-sync")
    wait_synced(leader, follower)
    jobs = dump_jobs(leader)
    follower.stop()
    leader.stop()
    restarted = ServerProcess(follower.data_dir).wait_ready()
    try:
        assert set(dump_jobs(restarted)) == {before, after}
        assert dump_jobs(restarted) == jobs
        assert restarted.client().execute_command("ROLE")[0] == b"master"
    finally:
        restarted.stop()


def test_replicaof_at_run_time_replaces_the_data_then_no_one_keeps_it(
        start_server: Start) -> None:
    leader = start_server()
    other = start_server()
    leader.client().set("from-leader", "1")
    leader.client().execute_command("JOB.PUSH", "q", "leader-job")
    o = other.client()
    o.set("mine", "gone soon")
    other.client(db=1).set("mine-too", "x")
    assert o.execute_command("REPLICAOF", "127.0.0.1", str(leader.port)) == b"OK"
    wait_synced(leader, other)
    assert o.execute_command("REPLICAOF", "127.0.0.1", str(leader.port)) == \
        b"OK Already connected to specified master"
    assert dump_cache(other) == dump_cache(leader)
    assert dump_jobs(other) == dump_jobs(leader)
    leader.client().set("streamed", "2")
    wait_synced(leader, other)
    assert o.get("streamed") == b"2"
    assert o.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    wait_for(lambda: info(other)["role"] == "master")
    leader.client().set("not-streamed", "3")
    time.sleep(0.3)
    assert o.get("not-streamed") is None and o.get("streamed") == b"2"


def test_a_follower_with_live_jobs_refuses_an_empty_leader(start_server: Start) -> None:
    empty = start_server()
    holder = start_server()
    h = holder.client()
    job_id = h.execute_command("JOB.PUSH", "q", "precious")
    h.execute_command("REPLICAOF", "127.0.0.1", str(empty.port))
    wait_for(lambda: "refusing a full sync" in holder.log(), seconds=15)
    assert h.execute_command("JOB.GET", job_id)[b"state"] == b"queued"
    assert info(holder)["master_link_status"] == "down"
    h.config_set("replica-accept-empty-master", "yes")
    wait_synced(empty, holder)
    assert dump_jobs(holder) == {}


def test_after_a_promotion_the_other_follower_continues_from_the_new_leader(
        start_server: Start) -> None:
    leader = start_server()
    first = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    second = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    r = leader.client()
    for i in range(200):
        r.set(f"k{i}", i)
    r.execute_command("JOB.PUSH", "q", "job")
    leader.client(db=1).set("in-db-1", "x")
    wait_synced(leader, first, second)
    leader.stop()
    assert first.client().execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    wait_for(lambda: info(first)["role"] == "master")
    first.client().set("after-promotion", "1")
    first.client(db=1).set("db-1-after-promotion", "y")
    second.client().execute_command("REPLICAOF", "127.0.0.1", str(first.port))
    wait_synced(first, second)
    stats = first.client().info("stats")
    assert (stats["sync_full"], stats["sync_partial_ok"]) == (0, 1)  # PSYNC2: no full sync
    assert info(second)["master_replid"] == info(first)["master_replid"]
    assert second.client().get("after-promotion") == b"1"
    assert second.client(db=1).get("db-1-after-promotion") == b"y"
    assert dump_cache(second) == dump_cache(first)
    assert dump_jobs(second) == dump_jobs(first)


def test_a_follower_authenticates_with_masteruser_and_masterauth(start_server: Start) -> None:
    leader = start_server("--requirepass", "secret")
    r = leader.client(password="secret")
    r.acl_setuser("repl", enabled=True, passwords=["+replpass"], commands=["+@all"],
                  keys=["*"])
    r.set("k", "v")
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}", "--masteruser", "repl",
                            "--masterauth", "replpass")
    wait_for(lambda: info(follower)["master_link_status"] == "up", seconds=20)
    assert follower.client().get("k") == b"v"
    wrong = start_server("--replicaof", f"127.0.0.1 {leader.port}", "--masterauth", "nope")
    time.sleep(2)  # two attempts at least
    assert wrong.client().info("replication")["master_link_status"] == "down"
    assert wrong.client().get("k") is None
