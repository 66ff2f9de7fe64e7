"""Identical followers: 10,000 seeded random operations on a leader, two followers, one dump.

Why a second workload next to test_replication.py's: that one reads values back per type;
this one drives every command family a follower must reproduce byte for byte (strings,
hashes, lists, sets, sorted sets, streams with groups, bitmaps, HyperLogLogs, geo, RENAME/
COPY/MOVE/SWAPDB across databases, relative and absolute TTLs, SPOP and scripts whose effects
are random or clock-based, EVAL and FCALL, MULTI/EXEC, blocking pops served by a push,
evictions under a small `maxmemory` with LRU then LFU) and the job family (pushes with delays,
priorities, parents, retry policies and idempotency keys; fetches with long and short leases;
acks, failures with and without retries, cancels, heartbeats, cron), then compares the
strictest dump the protocol gives: the DUMP payload and PEXPIRETIME of every key of every
database, FUNCTION DUMP, every job (JOB.LIST), every queue's QUEUE.STATS and the cron table.
One exception: a set's DUMP lists its members in the order the process's string hash puts
them, and that hash is seeded per process (as Redis' siphash seed is: a Redis replica's DUMP of
a hashtable set differs from its master's too), so sets compare as their sorted members; a
stream's DUMP holds each consumer's seen-time, which a follower sets from its own clock when it
applies the leader's XCLAIM (as a Redis replica does), so streams compare as XINFO STREAM FULL
without it (entries, groups, pending entries with their delivery times and counts).

The run is deterministic in what it sends (one seed). Every timer it arms on the leader (short
TTLs, delays, leases, retry backoffs) ends well before the dump, so the leader stands still
while the three are read. One follower is attached from the start (it gets everything as a
stream), the other halfway (a full sync under load, then the stream).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from tests.conftest import ServerProcess
from tests.integration.test_replication import wait_synced

Start = Callable[..., ServerProcess]

#: Operations sent to the leader (commands, one pipeline entry each).
OPERATIONS = 10_000
DATABASES = 16
#: Databases the workload writes to.
USED_DATABASES = 4
#: Keys per type namespace: small enough that commands meet existing keys often.
KEYS_PER_TYPE = 40
#: Commands per pipeline round trip.
PIPELINE = 100
#: Every timer the workload arms on the leader ends within this (ms): TTLs, delays, leases,
#: retry backoffs. The dump waits past it.
SHORT_MS = 400
LONG_MS = 600_000
LIBRARY = """#!lua name=replib
redis.register_function('bump', function(keys, args)
  redis.call('HINCRBY', keys[1], 'calls', 1)
  return redis.call('INCRBY', keys[2], args[1])
end)
redis.register_function('stamp', function(keys, args)
  local t = redis.call('TIME')
  return redis.call('SET', keys[1], t[1] .. '.' .. t[2])
end)
"""


class Workload:
    """The seeded operation generator: `next()` gives (database, argv)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.families: list[Callable[[], list[Any]]] = [
            self.string, self.string, self.hash, self.list, self.set, self.zset, self.stream,
            self.bitmap, self.hll, self.geo, self.ttl, self.ttl, self.keyspace, self.script]

    def key(self, kind: str) -> str:
        return f"{kind}:{self.rng.randrange(KEYS_PER_TYPE)}"

    def next(self) -> tuple[int, list[Any]]:
        return self.rng.randrange(USED_DATABASES), self.rng.choice(self.families)()

    def string(self) -> list[Any]:
        rng, key = self.rng, self.key("str")
        return rng.choice([
            ["SET", key, f"v{rng.random()}"], ["APPEND", key, "tail"],
            ["SETRANGE", key, rng.randrange(20), "xy"], ["INCRBY", self.key("num"), 7],
            ["INCRBYFLOAT", self.key("num"), "1.25"], ["GETDEL", key],
            ["MSET", key, "m1", self.key("str"), "m2"], ["SETNX", key, "nx"],
            ["GETSET", key, "gs"], ["DECR", self.key("num")]])

    def hash(self) -> list[Any]:
        rng, key = self.rng, self.key("hash")
        return rng.choice([
            ["HSET", key, f"f{rng.randrange(30)}", rng.randrange(1000), "g", "x" * 30],
            ["HINCRBY", key, "n", 3], ["HINCRBYFLOAT", key, "fl", "0.5"],
            ["HDEL", key, f"f{rng.randrange(30)}"], ["HSETNX", key, "once", "1"]])

    def list(self) -> list[Any]:
        rng, key = self.rng, self.key("list")
        return rng.choice([
            ["RPUSH", key, *(f"e{rng.randrange(100)}" for _ in range(3))], ["LPUSH", key, "head"],
            ["LPOP", key], ["RPOP", key, 2], ["LTRIM", key, 0, 30],
            ["LSET", key, 0, "set0"], ["LINSERT", key, "BEFORE", "head", "before"],
            ["LMOVE", key, self.key("list"), "LEFT", "RIGHT"], ["LREM", key, 1, "head"]])

    def set(self) -> list[Any]:
        rng, key = self.rng, self.key("set")
        return rng.choice([
            ["SADD", key, *(f"m{rng.randrange(60)}" for _ in range(4))], ["SPOP", key],
            ["SPOP", key, 2], ["SREM", key, f"m{rng.randrange(60)}"],
            ["SMOVE", key, self.key("set"), f"m{rng.randrange(60)}"],
            ["SINTERSTORE", self.key("set"), key, self.key("set")],
            ["SUNIONSTORE", self.key("set"), key, self.key("set")]])

    def zset(self) -> list[Any]:
        rng, key = self.rng, self.key("zset")
        return rng.choice([
            ["ZADD", key, rng.random() * 100, f"m{rng.randrange(60)}"],
            ["ZINCRBY", key, "2.5", f"m{rng.randrange(60)}"], ["ZPOPMIN", key],
            ["ZREMRANGEBYSCORE", key, 0, rng.random() * 10],
            ["ZUNIONSTORE", self.key("zset"), 2, key, self.key("zset"), "WEIGHTS", 1, 2],
            ["ZRANGESTORE", self.key("zset"), key, 0, 5]])

    def stream(self) -> list[Any]:
        rng, key = self.rng, self.key("stream")
        group = f"g{rng.randrange(2)}"
        return rng.choice([
            ["XADD", key, "*", "n", rng.randrange(1000)],
            ["XADD", key, "MAXLEN", "~", 20, "*", "a", "b"],
            ["XADD", key, "*", "x", "y"],
            ["XGROUP", "CREATE", key, group, "0", "MKSTREAM"],
            ["XREADGROUP", "GROUP", group, f"c{rng.randrange(3)}", "COUNT", 3, "STREAMS", key,
             ">"],
            ["XAUTOCLAIM", key, group, "c9", 0, "0-0", "COUNT", 2],
            ["XTRIM", key, "MAXLEN", 15], ["XDEL", key, "0-1"],
            ["XGROUP", "SETID", key, group, "$"]])

    def bitmap(self) -> list[Any]:
        rng, key = self.rng, self.key("bits")
        return rng.choice([
            ["SETBIT", key, rng.randrange(2000), rng.randrange(2)],
            ["BITFIELD", key, "INCRBY", "u8", f"#{rng.randrange(20)}", 9, "SET", "i16", 40, -3],
            ["BITOP", "XOR", self.key("bits"), key, self.key("bits")]])

    def hll(self) -> list[Any]:
        rng, key = self.rng, self.key("hll")
        return rng.choice([
            ["PFADD", key, *(f"u{rng.randrange(5000)}" for _ in range(5))],
            ["PFMERGE", self.key("hll"), key, self.key("hll")]])

    def geo(self) -> list[Any]:
        rng, key = self.rng, self.key("geo")
        return rng.choice([
            ["GEOADD", key, round(rng.uniform(-10, 10), 5), round(rng.uniform(40, 50), 5),
             f"p{rng.randrange(50)}"],
            ["GEOSEARCHSTORE", self.key("geo"), key, "FROMLONLAT", 0, 45, "BYRADIUS", 800, "km",
             "ASC", "COUNT", 10]])

    def ttl(self) -> list[Any]:
        """Relative and absolute TTLs, long ones and short ones that end before the dump."""
        rng = self.rng
        key = self.key(rng.choice(["str", "hash", "list", "set", "zset"]))
        short = rng.randrange(50, SHORT_MS)
        now = int(time.time() * 1000)
        return rng.choice([
            ["EXPIRE", key, rng.randrange(100, 10_000)], ["PEXPIRE", key, short],
            ["PEXPIREAT", key, now + rng.choice([short, LONG_MS])],
            ["EXPIREAT", key, now // 1000 + 3600], ["PERSIST", key],
            ["SET", self.key("str"), "px", "PX", rng.choice([short, LONG_MS])],
            ["SET", self.key("str"), "ex", "EX", rng.randrange(10, 1000)],
            ["GETEX", self.key("str"), "PX", rng.choice([short, LONG_MS])],
            ["GETEX", self.key("str"), "PERSIST"], ["SETEX", self.key("str"), 500, "setex"],
            ["EXPIRE", key, 900, "GT"]])

    def keyspace(self) -> list[Any]:
        rng = self.rng
        kind = rng.choice(["str", "hash", "list", "set", "zset", "stream"])
        key = self.key(kind)
        return rng.choice([
            ["DEL", key], ["UNLINK", key], ["RENAME", key, self.key(kind)],
            ["COPY", key, self.key(kind), "DB", rng.randrange(USED_DATABASES), "REPLACE"],
            ["MOVE", key, rng.randrange(USED_DATABASES)], ["RENAMENX", key, self.key(kind)]])

    def script(self) -> list[Any]:
        """Scripts whose writes depend on randomness or the clock: their effects replicate."""
        rng = self.rng
        return rng.choice([
            ["EVAL", "redis.call('SPOP', KEYS[1]); return redis.call('SADD', KEYS[1], ARGV[1])",
             1, self.key("set"), f"m{rng.randrange(60)}"],
            ["EVAL", "local t = redis.call('TIME'); return redis.call('RPUSH', KEYS[1], t[2])",
             1, self.key("list")],
            ["EVAL", "return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])", 1,
             self.key("str"), "lua", LONG_MS],
            ["FCALL", "bump", 2, self.key("hash"), self.key("num"), rng.randrange(1, 9)],
            ["FCALL", "stamp", 1, self.key("str")]])


class JobDriver:
    """The job operations: a push batch, then fetch/ack/fail/cancel/beat on what it got."""

    def __init__(self, client: redis.Redis, seed: int) -> None:
        self.r = client
        self.rng = random.Random(seed)
        self.pushed: list[bytes] = []
        self.operations = 0

    def _run(self, *argv: Any) -> Any:
        self.operations += 1
        try:
            return self.r.execute_command(*argv)
        except redis.ResponseError as exc:  # e.g. a parent already gone: the same everywhere
            return exc

    def step(self) -> None:
        rng = self.rng
        for i in range(rng.randrange(5, 15)):
            argv: list[Any] = ["JOB.PUSH", f"jq{rng.randrange(3)}", f"payload-{rng.random()}",
                               "PRIORITY", rng.randrange(-2, 3)]
            choice = rng.randrange(6)
            if choice == 0:
                argv += ["DELAY", rng.choice([rng.randrange(20, SHORT_MS), LONG_MS])]
            elif choice == 1 and self.pushed:
                argv += ["AFTER", 1, rng.choice(self.pushed)]
            elif choice == 2:
                argv += ["KEY", f"idem-{rng.randrange(50)}"]
            elif choice == 3:
                argv += ["RETRIES", 3, "BACKOFF", 50, 100, "META", "i", str(i)]
            job_id = self._run(*argv)
            if isinstance(job_id, bytes):
                self.pushed.append(job_id)
        short = rng.random() < 0.3
        lease = rng.randrange(50, SHORT_MS) if short else LONG_MS
        fetched = self._run("JOB.FETCH", "COUNT", rng.randrange(1, 8), "LEASE", lease,
                            "WORKER", f"w{rng.randrange(3)}", "QUEUES", "jq0", "jq1", "jq2")
        if short or not isinstance(fetched, list):
            return  # these leases end on the leader's timer: retried or dead by the dump
        for job in fetched:
            job_id, token = job[b"id"], job[b"token"]
            action = rng.randrange(5)
            if action == 0:
                self._run("JOB.ACK", job_id, token, "RESULT", f"r{rng.random()}")
            elif action == 1:
                self._run("JOB.FAIL", job_id, token, "boom", "RETRYIN",
                          rng.choice([rng.randrange(10, SHORT_MS), LONG_MS]))
            elif action == 2:
                self._run("JOB.FAIL", job_id, token, "fatal", "NORETRY")
            elif action == 3:
                self._run("JOB.BEAT", job_id, token, "EXTEND", LONG_MS)
            # else: left running with its long lease
        if self.pushed and rng.random() < 0.3:
            self._run("JOB.CANCEL", rng.choice(self.pushed))


def serve_blocked_pops(leader: ServerProcess, round_: int) -> int:
    """Clients blocked on a list, a sorted set, a list move and a stream group, each woken by
    a push: the leader must log what each woken client took. The number of commands sent."""
    r = leader.client(db=1)
    r.xgroup_create(f"blk:s{round_}", "bg", id="$", mkstream=True)
    calls: list[Callable[[redis.Redis], Any]] = [
        lambda c: c.blpop([f"blk:l{round_}"], timeout=10),
        lambda c: c.bzpopmin([f"blk:z{round_}"], timeout=10),
        lambda c: c.blmove(f"blk:m{round_}", f"blk:dst{round_}", 10, "LEFT", "RIGHT"),
        lambda c: c.xreadgroup("bg", "bc", {f"blk:s{round_}": ">"}, count=1, block=10_000)]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda call=call: results.append(
        call(leader.client(db=1)))) for call in calls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while leader.client().info("clients")["blocked_clients"] < len(calls):
        assert time.monotonic() < deadline, "the clients did not block"
        time.sleep(0.01)
    r.rpush(f"blk:l{round_}", "a", "b")
    r.zadd(f"blk:z{round_}", {"x": 1, "y": 2})
    r.rpush(f"blk:m{round_}", "moved")
    r.xadd(f"blk:s{round_}", {"k": "v"})
    for thread in threads:
        thread.join(15)
    assert len(results) == len(calls) and all(results), results
    return len(calls) + 5


def _stream(r: redis.Redis, key: bytes) -> Any:
    full = r.xinfo_stream(key, full=True)
    for group in full["groups"]:
        for consumer in group["consumers"]:
            consumer.pop(b"seen-time")
    return full


def dump_everything(server: ServerProcess) -> dict[str, Any]:
    """The strictest comparison the protocol allows (see the module docstring)."""
    keys: dict[tuple[int, bytes], Any] = {}
    for db in range(DATABASES):
        r = server.client(db=db)
        names = sorted(r.scan_iter(count=1000))
        pipe = r.pipeline(transaction=False)
        for key in names:
            pipe.type(key).dump(key).pexpiretime(key)
        replies = pipe.execute()
        for index, key in enumerate(names):
            kind, payload, expire_at = replies[3 * index:3 * index + 3]
            if kind == b"set":  # its members in each process's own hash order (see above)
                payload = sorted(r.smembers(key))
            elif kind == b"stream":
                payload = _stream(r, key)
            keys[(db, key)] = (kind, payload, expire_at)
    r = server.client()
    jobs: dict[bytes, Any] = {}
    cursor: Any = "0"
    while True:
        cursor, page = r.execute_command("JOB.LIST", "CURSOR", cursor, "COUNT", 1000)
        jobs.update((job[b"id"], job) for job in page)
        if cursor in (b"0", 0, "0"):
            break
    queues = {}
    for queue in r.execute_command("QUEUE.LIST"):
        stats = r.execute_command("QUEUE.STATS", queue)
        stats.pop(b"oldest_queued_age_ms")  # an age: each node's own now
        queues[queue] = stats
    cron = r.execute_command("CRON.LIST")
    for entry in cron:
        entry.pop(b"next")  # a follower arms no cron timer until it is promoted
    return {"keys": keys, "functions": r.function_dump(), "jobs": jobs, "queues": queues,
            "cron": cron}


def stable_dumps(leader: ServerProcess, *followers: ServerProcess
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The leader's dump and the followers', read while the leader stood still: a timer of
    the leader's that a loaded machine ran late (a lease, a retry, a TTL) would otherwise
    change it between the reads. The leader is read before and after the followers, each
    time after they caught up; a few tries."""
    for _ in range(5):
        wait_synced(leader, *followers)
        expected = dump_everything(leader)
        wait_synced(leader, *followers)
        dumps = [dump_everything(follower) for follower in followers]
        if dump_everything(leader) == expected:
            return expected, dumps
        time.sleep(1)
    raise AssertionError("the leader's data kept changing: no moment to compare")


def _difference(got: Any, expected: Any) -> str:
    """The first entries that differ, for the failure message (the whole dumps are long)."""
    if isinstance(got, dict) and isinstance(expected, dict):
        for key in sorted(set(got) | set(expected), key=repr):
            if got.get(key) != expected.get(key):
                return f"{key!r}: follower {got.get(key)!r} != leader {expected.get(key)!r}"
    return f"follower {got!r} != leader {expected!r}"


def test_two_followers_hold_exactly_the_leaders_data_after_10000_operations(
        start_server: Start) -> None:
    leader = start_server()
    early = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, early)
    r = leader.client()
    r.function_load(LIBRARY)
    r.execute_command("CRON.SET", "nightly", "0 3 * * *", "jq0", "cron-payload")
    r.execute_command("CRON.SET", "hourly", "0 * * * *", "jq1", "cron-payload")
    workload, jobs = Workload(seed=1818), JobDriver(leader.client(), seed=1819)
    clients = [leader.client(db=db) for db in range(USED_DATABASES)]
    sent, late, evicting = 0, None, False
    while sent + jobs.operations < OPERATIONS:
        pipes = [c.pipeline(transaction=False) for c in clients]
        for _ in range(PIPELINE):
            db, argv = workload.next()
            pipes[db].execute_command(*argv)
        for pipe in pipes:
            pipe.execute(raise_on_error=False)
        sent += PIPELINE
        jobs.step()
        done = sent + jobs.operations
        if done // 1000 != (done - PIPELINE) // 1000:  # about every 1,000: the rarer kinds
            tx = clients[2].pipeline(transaction=True)
            tx.incr("tx:n").rpush("tx:l", done).expire("tx:l", 3600).spop("set:1")
            tx.execute(raise_on_error=False)
            sent += 4
            sent += serve_blocked_pops(leader, done // 1000)
        if late is None and done >= OPERATIONS // 2:
            late = start_server("--replicaof", f"127.0.0.1 {leader.port}")
            r.swapdb(0, 3)
            r.execute_command("CRON.DEL", "hourly")
        if not evicting and done >= OPERATIONS * 6 // 10:
            # A ceiling a little above what is used: the next writes evict (LRU, then LFU).
            evicting = True
            r.config_set("maxmemory-policy", "allkeys-lru")
            r.config_set("maxmemory", r.info("memory")["used_memory"] + 64 * 1024)
            for i in range(300):
                clients[3].set(f"filler:{i}", "f" * 1024)
            r.config_set("maxmemory-policy", "allkeys-lfu")
            for i in range(300):
                clients[0].set(f"filler-lfu:{i}", "f" * 1024)
            sent += 600
            r.config_set("maxmemory", 0)
    assert late is not None and r.info("stats")["evicted_keys"] > 0
    time.sleep(3 * SHORT_MS / 1000)  # every short timer has ended on the leader
    expected, dumps = stable_dumps(leader, early, late)
    assert len(expected["keys"]) > 500 and len(expected["jobs"]) > 200
    states = {job[b"state"] for job in expected["jobs"].values()}
    assert {b"queued", b"running", b"succeeded", b"dead", b"canceled"} <= states, states
    for got in dumps:
        for part in ("functions", "cron", "queues", "jobs", "keys"):
            assert got[part] == expected[part], _difference(got[part], expected[part])
    stats = r.info("stats")
    assert stats["sync_full"] == 2 and stats["expired_keys"] > 0
