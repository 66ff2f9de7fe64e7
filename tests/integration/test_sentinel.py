"""Failover of the cache driven by real redis-sentinel processes (issue 18, Sentinel).

Sentinel learns the followers from the leader's `INFO replication`, each follower's link,
offset and priority from its own INFO, finds the other sentinels through `__sentinel__:hello`
on the servers, and fails over with `MULTI / SLAVEOF / CONFIG REWRITE / CLIENT KILL / EXEC`.
These tests run that against jobcached processes and follow with redis-py's Sentinel client.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel

from tests.conftest import RedisServerProcess
from tests.integration.sentinels import (
    SERVICE,
    Deployment,
    Start,
    deployment,  # noqa: F401
    restart,
    wait_for,
)
from tests.integration.test_replication import info, wait_synced


def test_sentinels_see_the_leader_its_followers_and_each_other(
        deployment: Deployment) -> None:  # noqa: F811
    deployment.wait_watched()
    leader = deployment.leader
    run_ids = {f.port: f.client().info("server")["run_id"] for f in deployment.followers}
    for sentinel in deployment.sentinels:
        assert sentinel.master_addr() == ("127.0.0.1", leader.port)
        fields = sentinel.client().execute_command("SENTINEL", "MASTER", SERVICE)
        assert fields["flags"] == "master" and fields["num-slaves"] == "2"
        assert fields["runid"] == leader.client().info("server")["run_id"]
        assert re.fullmatch(r"[0-9a-f]{40}", fields["runid"])
        for replica in sentinel.replicas():
            port = int(replica["port"])
            assert replica["runid"] == run_ids[port]
            assert (replica["master-host"], replica["master-port"]) == (
                "127.0.0.1", str(leader.port))
            assert replica["slave-priority"] == "100"
            assert replica["replica-announced"] == "1"
        others = {int(s["port"]) for s in sentinel.sentinels()}
        assert others == {s.port for s in deployment.sentinels} - {sentinel.port}


def test_sentinel_promotes_a_follower_and_repoints_the_other(
        deployment: Deployment) -> None:  # noqa: F811
    old = deployment.leader
    r = old.client()
    for i in range(100):
        r.set(f"k{i}", i)
    wait_synced(old, *deployment.followers)
    deployment.wait_watched()
    old.stop(signal.SIGKILL)

    new = deployment.wait_settled(deployment.followers)  # the other one follows it
    [other] = [f for f in deployment.followers if f is not new]
    client = Sentinel(deployment.addresses, socket_timeout=5).master_for(SERVICE)
    assert client.set("after-failover", "yes")
    wait_synced(new, other)
    assert other.client().get("after-failover") == b"yes"
    assert other.client().get("k99") == b"99"
    assert info(other)["master_replid"] == info(new)["master_replid"]
    assert other.client().get("k0") == b"0"

    again = restart(old)
    try:
        leader = deployment.wait_settled([*deployment.followers, again])
        wait_synced(leader, again)
        assert again.client().execute_command("ROLE")[0] == b"slave"
        assert again.client().get("after-failover") == b"yes"

        def both_followers_watched() -> bool:
            replicas = deployment.sentinels[0].replicas()
            return {int(r["port"]) for r in replicas if r["flags"] == "slave"} == {
                f.port for f in (*deployment.followers, again) if f is not leader}

        assert wait_for(both_followers_watched, what="sentinel seeing the old leader follow")
    finally:
        again.stop()


def test_replica_priority_zero_is_never_promoted(start_server: Start, tmp_path: Path) -> None:
    group = Deployment(start_server, tmp_path, ("--replica-priority", "0"))
    try:
        never, candidate = group.followers
        group.wait_watched()
        assert {r["port"]: r["slave-priority"] for r in group.sentinels[0].replicas()} == {
            str(never.port): "0", str(candidate.port): "100"}
        group.leader.stop(signal.SIGKILL)
        assert group.wait_settled(group.followers) is candidate
    finally:
        group.stop_sentinels()


def test_replica_announce_and_priority_reach_info_and_the_leader(
        start_server: Start) -> None:
    leader = start_server()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}", "--replica-priority",
                            "7", "--replica-announce-ip", "10.1.2.3",
                            "--replica-announce-port", "7777", "--replica-announced", "no")
    wait_synced(leader, follower)
    state = info(follower)
    assert (state["slave_priority"], state["replica_announced"]) == (7, 0)
    assert info(leader)["slave0"]["ip"] == "10.1.2.3"
    assert info(leader)["slave0"]["port"] == 7777
    role = leader.client().execute_command("ROLE")
    assert [entry[:2] for entry in role[2]] == [[b"10.1.2.3", b"7777"]]
    assert follower.client().config_get("slave-priority") == {"slave-priority": "7"}


def test_client_kill_by_type_spares_followers_and_drops_the_leader_link(
        start_server: Start) -> None:
    leader = start_server()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    r = leader.client()
    subscriber = leader.client().pubsub()
    subscriber.subscribe("news")
    subscriber.get_message(timeout=2)
    assert [c["name"] for c in r.client_list(_type="replica")] == [""]
    r.execute_command("CLIENT", "KILL", "TYPE", "normal")  # skips itself and the follower
    assert r.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 1
    assert r.info("replication")["connected_slaves"] == 1
    r.set("k", "1")
    wait_synced(leader, follower)
    f = follower.client()
    assert f.execute_command("CLIENT", "KILL", "TYPE", "master") == 1
    r.set("k", "2")
    wait_synced(leader, follower)
    assert f.get("k") == b"2"
    assert leader.client().info("stats")["sync_partial_ok"] >= 1
    assert r.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
    with pytest.raises(redis.ResponseError, match=r"^Unknown client type 'nobody'$"):
        r.execute_command("CLIENT", "KILL", "TYPE", "nobody")
    wait_synced(leader, follower)  # it comes back


def test_sentinels_failover_transaction_runs_past_config_rewrite(start_server: Start) -> None:
    """Sentinel's MULTI: CONFIG REWRITE fails without a config file, the rest still runs."""
    leader = start_server()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    pipe = follower.client().pipeline(transaction=True)
    pipe.execute_command("SLAVEOF", "NO", "ONE")
    pipe.execute_command("CONFIG", "REWRITE")
    pipe.execute_command("CLIENT", "KILL", "TYPE", "normal")
    pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    replies = pipe.execute(raise_on_error=False)
    assert replies[0] is True  # redis-py's SLAVEOF callback: a bool
    assert isinstance(replies[1], redis.ResponseError)
    assert str(replies[1]) == "The server is running without a config file"
    assert all(isinstance(count, int) for count in replies[2:])
    wait_for(lambda: follower.client().execute_command("ROLE")[0] == b"master", seconds=10)


def _fields(server: Any) -> list[str]:
    """INFO replication's field names in order, slaveN lines as one name."""
    return [re.sub(r"^slave\d+$", "slaveN", name) for name in server.client().info("replication")]


def test_info_and_role_have_redis_fields_on_both_sides(start_server: Start,
                                                       tmp_path: Path) -> None:
    """What Sentinel parses, compared with a redis-server 7.0 leader and replica."""
    theirs = RedisServerProcess(tmp_path / "redis-leader")
    their_replica = RedisServerProcess(tmp_path / "redis-replica")
    try:
        their_replica.client().replicaof("127.0.0.1", theirs.port)
        wait_for(lambda: their_replica.client().info("replication")["master_link_status"]
                 == "up", seconds=15, what="redis-server replica up")
        leader = start_server()
        follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
        wait_synced(leader, follower)
        wait_for(lambda: theirs.client().info("replication").get("slave0", {}).get("state")
                 == "online", seconds=15, what="redis-server replica online")
        assert _fields(leader) == _fields(theirs)
        assert _fields(follower) == _fields(their_replica)
        ours_slave = info(leader)["slave0"]
        assert set(ours_slave) == set(theirs.client().info("replication")["slave0"])
        for ours, reference in ((leader, theirs), (follower, their_replica)):
            role, their_role = (side.client().execute_command("ROLE")
                                for side in (ours, reference))
            assert [type(item) for item in role] == [type(item) for item in their_role]
        run_id = follower.client().info("server")["run_id"]
        assert re.fullmatch(r"[0-9a-f]{40}", run_id)
        assert follower.client().info("server")["run_id"] == run_id
    finally:
        their_replica.stop()
        theirs.stop()


def test_sentinels_transaction_rewrites_the_role_into_the_config_file(
        start_server: Start, tmp_path: Path) -> None:
    """With a config file, CONFIG REWRITE keeps what Sentinel ordered across a restart."""
    leader = start_server()
    other = start_server()
    config = tmp_path / "follower.conf"
    config.write_text(f"replicaof 127.0.0.1 {leader.port}\n")
    follower = start_server("--config", str(config))
    wait_synced(leader, follower)
    pipe = follower.client().pipeline(transaction=True)
    pipe.execute_command("SLAVEOF", "127.0.0.1", other.port)
    pipe.execute_command("CONFIG", "REWRITE")
    pipe.execute_command("CLIENT", "KILL", "TYPE", "normal")
    pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    replies = pipe.execute(raise_on_error=False)
    assert replies[:2] == [True, b"OK"], replies  # redis-py's SLAVEOF callback: a bool
    wait_synced(other, follower)
    follower.stop()
    again = start_server("--config", str(config))
    assert again.client().execute_command("ROLE")[:3] == [b"slave", b"127.0.0.1", other.port]
