"""Cache snapshots with real processes: a restart with `cache-persistence snapshot` comes back
with the same keys (DUMP and PEXPIRETIME of every key of every database); BGSAVE while clients
write; LASTSAVE and INFO persistence; the `save` schedule; SHUTDOWN's options and a failing
save; a damaged snapshot stops the start; jobs come from the WAL, never from the snapshot; a
follower's snapshot never lands on its leader's data."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from jobcached.replication.backlog import JOB_RECORD
from jobcached.replication.snapshot import read_snapshot
from jobcached.server.saving import FILE_NAME
from tests.conftest import RawClient, ServerProcess, free_port
from tests.integration.cache.differential import Pair
from tests.integration.test_jobs import as_map
from tests.integration.test_replication import wait_synced

#: How long a background save or a save point may take to show in INFO.
SAVE_TIMEOUT_SECONDS = 10.0
DATABASES = (0, 2, 7)
LIBRARY = ("#!lua name=warm\n"
           "redis.register_function('hello', function(keys, args) return 'hi' end)")

Launch = Callable[..., ServerProcess]


@pytest.fixture
def launch() -> Iterator[Launch]:
    """Start a server on a data dir of the test's choosing (restarts reuse one); every server
    started is stopped at the end."""
    started: list[ServerProcess] = []

    def start(data_dir: Path, *args: str, wait: bool = True) -> ServerProcess:
        proc = ServerProcess(data_dir, *args)
        started.append(proc)
        return proc.wait_ready() if wait else proc

    yield start
    for proc in started:
        proc.stop()


def persistence(server: ServerProcess) -> dict[str, Any]:
    return server.client().info("persistence")


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SAVE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def shutdown(server: ServerProcess, *options: str) -> int:
    """SHUTDOWN [options]: the connection closes, the process exits; its exit code."""
    with pytest.raises(redis.ConnectionError):
        server.client().execute_command("SHUTDOWN", *options)
    code = server.proc.wait(15)
    server.stop()
    return code


def write_every_type(r: redis.Redis, db: int) -> None:
    """Every cache type, some with a TTL, a few hundred keys in all."""
    ttl = 3_600_000 + db
    r.set(f"s{db}", "text")
    r.set(f"n{db}", 12345, px=ttl)
    r.setbit(f"bits{db}", 1000, 1)
    r.rpush(f"l{db}", *range(50))
    r.rpush(f"biglist{db}", *(f"item-{i}" * 10 for i in range(300)))
    r.pexpire(f"biglist{db}", ttl)
    r.hset(f"h{db}", mapping={f"f{i}": i for i in range(20)})
    r.hset(f"bighash{db}", mapping={f"f{i}": "v" * 100 for i in range(600)})
    r.sadd(f"ints{db}", *range(100))
    r.sadd(f"set{db}", *(f"m{i}" for i in range(200)))
    r.pexpire(f"set{db}", ttl)
    r.zadd(f"z{db}", {f"m{i}": i / 3 for i in range(50)})
    r.zadd(f"bigz{db}", {f"m{i}": i for i in range(400)})
    r.geoadd(f"geo{db}", (13.361389, 38.115556, "Palermo"))
    r.pfadd(f"hll{db}", *range(500))
    for i in range(30):
        r.xadd(f"stream{db}", {"i": i})
    r.xgroup_create(f"stream{db}", "readers", id="0")
    r.xreadgroup("readers", "alice", {f"stream{db}": ">"}, count=5)
    for i in range(200):
        r.set(f"k{db}:{i}", i, px=ttl if i % 2 else None)


def dump_all(server: ServerProcess) -> dict[tuple[int, bytes], tuple[Any, int]]:
    """(db, key) -> (DUMP payload, PEXPIRETIME) for every key of every database; a set of
    strings by its members, as the order its DUMP lists them in is per process (Python's
    string hashes are seeded at random)."""
    out: dict[tuple[int, bytes], tuple[Any, int]] = {}
    for db in range(16):
        r = server.client(db=db)
        for key in r.scan_iter(count=1000):
            value: Any = r.dump(key)
            if r.type(key) == b"set" and r.object("encoding", key) != b"intset":
                value = r.smembers(key)
            out[(db, key)] = (value, r.execute_command("PEXPIRETIME", key))
    return out


def test_a_restart_comes_back_with_the_same_keys_ttls_and_functions(tmp_path: Path,
                                                                    launch: Launch) -> None:
    data = tmp_path / "data"
    server = launch(data, "--cache-persistence", "snapshot")
    for db in DATABASES:
        write_every_type(server.client(db=db), db)
    r = server.client()
    r.function_load(LIBRARY)
    job = r.execute_command("JOB.PUSH", "q", "payload")
    before = dump_all(server)
    assert len(before) == 3 * 214
    r.set("fleeting", "v", px=800)  # saved, then expires while the server is down
    assert shutdown(server) == 0
    time.sleep(1.0)

    again = launch(data, "--cache-persistence", "snapshot")
    assert dump_all(again) == before
    r = again.client()
    assert r.fcall("hello", 0) == b"hi"
    assert r.execute_command("JOB.GET", job) is not None
    info = persistence(again)
    assert info["rdb_last_load_keys_loaded"] == len(before)
    assert info["rdb_last_load_keys_expired"] == 1
    assert info["rdb_changes_since_last_save"] == 0
    # The snapshot holds keys only: jobs are the WAL's, libraries functions.rdb's.
    commands = read_snapshot(str(data / FILE_NAME))
    assert commands is not None
    assert {argv[0] for argv in commands} == {b"SELECT", b"SET", b"RESTORE"}
    again.stop()


def test_without_cache_persistence_a_restart_is_cold(tmp_path: Path, launch: Launch) -> None:
    data = tmp_path / "data"
    server = launch(data)
    server.client().set("k", "v")
    assert shutdown(server) == 0
    assert not (data / FILE_NAME).exists()  # nothing configured: no save at stop
    assert launch(data, "--cache-persistence", "snapshot").client().dbsize() == 0


def test_bgsave_while_clients_write_saves_the_state_at_the_fork(tmp_path: Path,
                                                                launch: Launch) -> None:
    data = tmp_path / "data"
    server = launch(data)  # cache-persistence none: BGSAVE still writes the file
    r = server.client()
    pipe = r.pipeline(transaction=False)
    for i in range(50_000):
        pipe.set(f"before:{i}", "x" * 50)
    pipe.execute()
    started_at = r.lastsave()
    time.sleep(1.1)  # LASTSAVE has a resolution of one second
    assert r.bgsave()
    assert persistence(server)["rdb_bgsave_in_progress"] == 1
    with pytest.raises(redis.ResponseError, match="Background save already in progress"):
        r.bgsave()
    with pytest.raises(redis.ResponseError, match="Background save already in progress"):
        r.save()
    for i in range(2000):  # the server goes on serving while the child writes
        r.set(f"after:{i}", "y")
    wait_for(lambda: persistence(server)["rdb_bgsave_in_progress"] == 0, "the BGSAVE")
    info = persistence(server)
    assert info["rdb_last_bgsave_status"] == "ok" and info["rdb_saves"] == 1
    assert info["rdb_last_bgsave_time_sec"] >= 0
    assert r.lastsave() > started_at
    assert info["rdb_last_save_time"] == int(r.lastsave().timestamp())
    assert info["rdb_changes_since_last_save"] == 2000
    assert server.stop() == 0  # SIGTERM, nothing configured: the file stays the BGSAVE's

    again = launch(data, "--cache-persistence", "snapshot")
    r = again.client()
    assert r.dbsize() == 50_000 and r.get("before:49999") == b"x" * 50
    assert r.exists("after:0") == 0
    again.stop()


def test_save_points_start_a_background_save(tmp_path: Path, launch: Launch) -> None:
    server = launch(tmp_path / "data", "--save", "1 5")
    r = server.client()
    assert r.config_get("save") == {"save": "1 5"}
    for i in range(4):
        r.set(f"k{i}", i)
    time.sleep(1.5)
    assert persistence(server)["rdb_saves"] == 0  # 4 changes: the point needs 5
    r.set("k4", 4)
    wait_for(lambda: persistence(server)["rdb_saves"] == 1
             and persistence(server)["rdb_bgsave_in_progress"] == 0, "the save point")
    assert persistence(server)["rdb_changes_since_last_save"] == 0
    assert (tmp_path / "data" / FILE_NAME).exists()
    with pytest.raises(redis.ResponseError, match="Invalid save parameters"):
        r.config_set("save", "10")
    assert r.config_set("save", "")
    r.set("k5", 5)
    assert shutdown(server, "NOSAVE") == 0


def test_bgsave_in_a_transaction_is_scheduled(tmp_path: Path, launch: Launch) -> None:
    server = launch(tmp_path / "data")
    RawClient(server.port).transcript(
        b"MULTI\r\nSET k v\r\nBGSAVE\r\nEXEC\r\n",
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+Background saving scheduled\r\n")
    r = server.client()
    wait_for(lambda: persistence(server)["rdb_saves"] == 1
             and persistence(server)["rdb_bgsave_in_progress"] == 0, "the scheduled BGSAVE")
    assert (tmp_path / "data" / FILE_NAME).exists()
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("BGSAVE", "NOW")
    server.stop()


def test_shutdown_options_and_a_failing_save(tmp_path: Path, launch: Launch) -> None:
    data = tmp_path / "data"
    server = launch(data, "--cache-persistence", "snapshot")
    r = server.client()
    r.set("k", "v")
    # A directory where the save's temporary file goes: every save in this process fails.
    blocker = data / f"{FILE_NAME}.{server.proc.pid}.tmp"
    blocker.mkdir()
    with pytest.raises(redis.ResponseError, match="Error saving the snapshot"):
        r.save()
    assert persistence(server)["rdb_last_bgsave_status"] == "err"
    with pytest.raises(redis.ResponseError, match=r"Errors trying to SHUTDOWN\. Check logs\."):
        r.shutdown()
    assert r.ping()  # still up
    assert shutdown(server, "NOSAVE") == 0
    assert not (data / FILE_NAME).exists()

    blocker.rmdir()
    server = launch(data, "--cache-persistence", "snapshot")
    r = server.client()
    r.set("k", "v")
    (data / f"{FILE_NAME}.{server.proc.pid}.tmp").mkdir()
    assert server.stop() == 1  # SIGTERM: the save at stop failed, said by the exit code
    assert "cache snapshot failed" in server.log()
    (data / f"{FILE_NAME}.{server.proc.pid}.tmp").rmdir()

    server = launch(data, "--cache-persistence", "snapshot")
    server.client().set("k", "v2")
    assert shutdown(server, "SAVE", "NOW") == 0
    server = launch(data)  # a SHUTDOWN SAVE is written, whatever cache-persistence says
    r = server.client()
    r.set("other", "x")
    assert shutdown(server, "SAVE") == 0
    assert launch(data, "--cache-persistence", "snapshot").client().mget("k", "other") == \
        [None, b"x"]


@pytest.mark.parametrize(("damage", "reason"), [
    ("flip", "damaged: its checksum"), ("cut", "torn"), ("foreign", "not a jobcached")])
def test_a_damaged_snapshot_stops_the_start_and_stays(tmp_path: Path, launch: Launch,
                                                      damage: str, reason: str) -> None:
    data = tmp_path / "data"
    server = launch(data, "--cache-persistence", "snapshot")
    for i in range(100):
        server.client().set(f"k{i}", "v" * 20)
    assert shutdown(server) == 0
    path = data / FILE_NAME
    content = bytearray(path.read_bytes())
    if damage == "flip":
        content[len(content) // 2] ^= 0x20
    elif damage == "cut":
        del content[len(content) - 10:]
    else:
        content[:] = b"REDIS0010" + bytes(content[9:])
    path.write_bytes(bytes(content))

    refused = launch(data, "--cache-persistence", "snapshot", wait=False)
    assert refused.proc.wait(15) == 1
    log = refused.log()
    assert f"cannot start: cannot load the cache snapshot {path}: {reason}" in log
    assert "move it away" in log
    assert path.read_bytes() == bytes(content)  # never deleted or rewritten

    os.replace(path, data / "moved-away")
    assert launch(data, "--cache-persistence", "snapshot").client().dbsize() == 0


def test_jobs_come_from_the_wal_not_from_the_snapshot(tmp_path: Path, launch: Launch) -> None:
    data = tmp_path / "data"
    server = launch(data, "--cache-persistence", "snapshot")
    r = server.client()
    kept = r.execute_command("JOB.PUSH", "q", "one")
    done = r.execute_command("JOB.PUSH", "q", "two")
    r.set("k", "v")
    assert r.save()
    commands = read_snapshot(str(data / FILE_NAME))
    assert commands is not None and not any(argv[0] == JOB_RECORD for argv in commands)
    r.execute_command("JOB.CANCEL", done)  # after the snapshot: the WAL has it
    assert shutdown(server) == 0

    again = launch(data, "--cache-persistence", "snapshot")
    r = again.client()
    assert r.get("k") == b"v"
    states = {job: as_map(r.execute_command("JOB.GET", job))[b"state"] for job in (kept, done)}
    assert states == {kept: b"queued", done: b"canceled"}
    again.stop()


def test_a_follower_serves_its_snapshot_until_its_leader_replaces_it(
        tmp_path: Path, launch: Launch) -> None:
    leader = launch(tmp_path / "leader")
    leader.client().set("fresh", "from the leader")
    leader.client(db=2).set("other", "db2")

    follower_dir = tmp_path / "follower"
    alone = launch(follower_dir, "--cache-persistence", "snapshot")
    alone.client().set("stale", "from an old life")
    assert shutdown(alone) == 0

    # Its leader is not there yet: the follower serves its snapshot, read-only, as a Redis
    # replica serves its RDB (replica-serve-stale-data).
    follower = launch(follower_dir, "--cache-persistence", "snapshot",
                      "--replicaof", f"127.0.0.1 {free_port()}")
    r = follower.client()
    assert r.get("stale") == b"from an old life"
    with pytest.raises(redis.ReadOnlyError):
        r.set("mine", "x")
    r.replicaof("127.0.0.1", leader.port)
    wait_synced(leader, follower)
    assert r.keys("*") == [b"fresh"] and follower.client(db=2).get("other") == b"db2"
    leader.client().set("later", "streamed")
    wait_synced(leader, follower)
    assert follower.stop() == 0  # SIGTERM: the follower saves the leader's data

    promoted = launch(follower_dir, "--cache-persistence", "snapshot")
    r = promoted.client()
    assert sorted(r.keys("*")) == [b"fresh", b"later"]
    assert promoted.client(db=2).get("other") == b"db2"
    promoted.stop()
    leader.stop()


def test_replies_and_errors_match_redis(pair: Pair) -> None:
    pair.check("SAVE")
    pair.check("SAVE", "now")
    pair.check("BGSAVE", "NOW")
    pair.check("BGSAVE", "SCHEDULE", "x")
    pair.check("LASTSAVE", "x")
    for name in ("SAVE", "BGSAVE"):  # noscript, as in Redis
        pair.check("EVAL", f"return redis.pcall('{name}')", "0")
    try:
        for value in ("10", "10 x", "10 -2", "100 1 20 5", ""):
            pair.check("CONFIG", "SET", "save", value)
            pair.check("CONFIG", "GET", "save")
    finally:
        pair.both("CONFIG", "SET", "save", "")


def test_a_stop_during_a_bgsave_kills_it_and_saves_everything(tmp_path: Path,
                                                              launch: Launch) -> None:
    data = tmp_path / "data"
    server = launch(data, "--cache-persistence", "snapshot", "--loglevel", "info")
    r = server.client()
    pipe = r.pipeline(transaction=False)
    for i in range(100_000):
        pipe.set(f"before:{i}", i)
    pipe.execute()
    assert r.bgsave()
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
    child = int(children.read_text().split()[0])
    os.kill(child, signal.SIGSTOP)  # the background save hangs half way
    assert persistence(server)["rdb_bgsave_in_progress"] == 1
    r.set("after", "the fork")
    assert server.stop() == 0  # SIGTERM: the child is killed, the stop saves in process
    assert "background save stopped" in server.log()

    again = launch(data, "--cache-persistence", "snapshot")
    assert again.client().dbsize() == 100_001
    assert sorted(p.name for p in data.glob(f"{FILE_NAME}*")) == [FILE_NAME]
