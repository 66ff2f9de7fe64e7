"""The leader and the random command mix of the effect replay test (test_effect_replay.py).

A `Server` is a ServerState with a job engine and a session on its own ManualClock, driven
through `dispatch.execute`. A `Workload` draws commands of every family from small key pools,
so that they meet existing keys (and, now and then, a key of another type), moves the clock on
after each, and runs what the app's timer tasks would: job timers, blocked clients' timeouts,
active expiry, the archiver's hand-over.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.config import Config
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.jobstate import RUNNING
from jobcached.jobs.model import TERMINAL
from jobcached.net.replies import ErrorReply
from jobcached.server.session import Session
from jobcached.server.state import ServerState
from tests.unit.scripting.test_effects import Quiet

START_MS = 1_700_000_000_000
DATABASES = 3  # of the 16: few enough that MOVE, COPY DB and SELECT meet keys again


class Server:
    """A ServerState with a job engine and one session, on its own ManualClock."""

    def __init__(self, config: Config, seed: int) -> None:
        self.clock = ManualClock(START_MS)
        self.state = ServerState(config, clock=self.clock)
        self.state.dbs.rng.seed(seed)
        self.engine = JobEngine(self.clock, rng=random.Random(seed),
                                sink=self.state.effects.job)
        self.state.jobs = self.engine
        self.session = Session(self.state, Quiet(), "test", "", True)

    def __call__(self, *argv: str | bytes | int) -> Any:
        return execute(self.session, [a if isinstance(a, bytes) else str(a).encode()
                                      for a in argv])

    def move_to(self, now_ms: int) -> None:
        self.clock.advance(now_ms - self.clock.now_ms())


class Workload:
    """Random commands over small key pools, so they meet existing keys (and, now and then,
    a key of another type: WRONGTYPE must log nothing)."""

    def __init__(self, rng: random.Random, leader: Server, cache_budget: int) -> None:
        self.rng = rng
        self.leader = leader
        #: bytes the cache may use besides the jobs (0: no maxmemory); see `step`
        self.cache_budget = cache_budget
        self.job_ids: list[str] = []
        self.batch_ids: list[str] = []
        #: other clients, for commands that block, and what each waits for: (the key or
        #: queue, the reply, a Deferred until it is served or times out)
        self.blocked: dict[Session, tuple[str, Any]] = {
            Session(leader.state, Quiet(), f"blocker{i}", "", True): ("", None)
            for i in range(3)}
        self.db = 0
        self.ops: list[tuple[int, Callable[[], list[Any]]]] = [
            (12, self.string), (8, self.keys), (6, self.hash), (6, self.list), (5, self.set),
            (5, self.zset), (10, self.stream), (4, self.other), (10, self.block),
            (3, self.script), (2, self.function),
            (3, self.transaction),
            (20, self.job), (2, self.select)]
        self.weights = [weight for weight, _ in self.ops]

    def key(self, prefix: str) -> str:
        """A key of the family `prefix`; often one a client is blocked on, so that a write
        serves it (queues are keys too: "q")."""
        rng = self.rng
        waited = [key for key in self.waited() if key[0] == prefix]
        if waited and rng.random() < 0.4:
            return rng.choice(waited)
        if rng.random() < 0.05:
            prefix = rng.choice("shlxzn")
        return f"{prefix}{rng.randrange(3 if prefix == 'q' else 4)}"

    def ttl(self) -> list[Any]:
        rng = self.rng
        return rng.choice([[], [], ["EX", rng.randint(1, 4)], ["PX", rng.randint(50, 3000)],
                           ["PXAT", self.leader.clock.now_ms() + rng.randint(-100, 3000)]])

    def next(self) -> list[Any]:
        return self.rng.choices(self.ops, self.weights)[0][1]()

    def select(self) -> list[Any]:
        self.db = self.rng.randrange(DATABASES)
        return ["SELECT", self.db]

    def cache(self) -> list[Any]:
        """A cache command of any family but scripts and transactions (for inside those)."""
        family = self.rng.choice([self.string, self.keys, self.hash, self.list, self.set,
                                  self.zset, self.stream, self.other])
        return family()

    def string(self) -> list[Any]:
        rng, k = self.rng, self.key("s")
        n = self.key("n")
        choices: list[list[Any]] = [
            ["SET", k, f"v{rng.randrange(100)}", *self.ttl(),
             *rng.choice([[], [], ["NX"], ["XX"], ["GET"]])],
            ["SET", k, "kept", "KEEPTTL"],
            ["INCR", n], ["INCRBY", n, rng.randint(-5, 5)],
            ["INCRBYFLOAT", n, rng.choice(["1.5", "-0.25", "3e2"])],
            ["APPEND", k, "ab"], ["SETRANGE", k, rng.randrange(6), "XY"],
            ["GETDEL", k], ["GETEX", k, *rng.choice([[], ["PERSIST"], ["EX", 2], ["PX", 700],
                                                     ["PXAT", self.leader.clock.now_ms() - 1]])],
            ["MSET", k, "m", self.key("s"), "m2"],
        ]
        return rng.choice(choices)

    def keys(self) -> list[Any]:
        rng, prefix = self.rng, self.rng.choice("shlxzn")
        k, other = self.key(prefix), self.key(prefix)
        now = self.leader.clock.now_ms()
        choices: list[list[Any]] = [
            ["DEL", k, self.key(prefix)], ["UNLINK", k],
            ["EXPIRE", k, rng.randint(1, 5), *rng.choice([[], ["NX"], ["GT"]])],
            ["PEXPIRE", k, rng.randint(100, 4000)],
            ["PEXPIREAT", k, now + rng.randint(-500, 4000)], ["PERSIST", k],
            ["RENAME", k, other], ["RENAMENX", k, other],
            ["COPY", k, other, *rng.choice([[], ["REPLACE"], ["DB", rng.randrange(DATABASES)]])],
            ["MOVE", k, rng.randrange(DATABASES)],
        ]
        return rng.choice(choices)

    def hash(self) -> list[Any]:
        rng, h, f = self.rng, self.key("h"), f"f{self.rng.randrange(5)}"
        return rng.choice([
            ["HSET", h, f, rng.randrange(50), f"f{rng.randrange(5)}", "x"],
            ["HSETNX", h, f, "y"], ["HINCRBY", h, f, rng.randint(-3, 3)],
            ["HINCRBYFLOAT", h, f, rng.choice(["0.5", "-1.25"])], ["HDEL", h, f, "f9"]])

    def list(self) -> list[Any]:
        rng, k = self.rng, self.key("l")
        side = ["LEFT", "RIGHT"]
        return rng.choice([
            ["LPUSH", k, *(f"e{rng.randrange(9)}" for _ in range(rng.randint(1, 3)))],
            ["RPUSH", k, "r"], ["RPOP", k, *rng.choice([[], [2]])], ["LPOP", k],
            ["LMOVE", k, self.key("l"), rng.choice(side), rng.choice(side)],
            ["LTRIM", k, rng.randint(-3, 1), rng.randint(-2, 3)], ["LSET", k, 0, "set"],
            ["LREM", k, 0, "e1"], ["LINSERT", k, "BEFORE", "e2", "ins"]])

    def set(self) -> list[Any]:
        rng, k = self.rng, self.key("x")
        return rng.choice([
            ["SADD", k, *(f"m{rng.randrange(9)}" for _ in range(rng.randint(1, 4)))],
            ["SPOP", k], ["SPOP", k, rng.randint(1, 3)], ["SREM", k, f"m{rng.randrange(9)}"],
            ["SMOVE", k, self.key("x"), f"m{rng.randrange(9)}"],
            ["SINTERSTORE", self.key("x"), k, self.key("x")]])

    def zset(self) -> list[Any]:
        rng, k, m = self.rng, self.key("z"), f"m{self.rng.randrange(6)}"
        return rng.choice([
            ["ZADD", k, *rng.choice([[], ["NX"], ["XX"], ["GT"]]), rng.randint(-5, 20), m],
            ["ZINCRBY", k, rng.choice(["1", "-2.5"]), m], ["ZPOPMIN", k, *rng.choice([[], [2]])],
            ["ZPOPMAX", k], ["ZREM", k, m],
            ["ZREMRANGEBYSCORE", k, rng.randint(-5, 5), rng.randint(5, 15)],
            ["ZUNIONSTORE", self.key("z"), 2, k, self.key("z")]])

    def stream(self) -> list[Any]:
        """Two streams (and a stray key now and then), mostly one group: so that reads by
        group, claims and acks find something."""
        rng = self.rng
        k = f"t{rng.randrange(2)}" if rng.random() < 0.95 else self.key("s")
        group = rng.choice(["g0", "g0", "g1"])
        choices: list[tuple[int, list[Any]]] = [
            (5, ["XADD", k, *rng.choice([[], ["MAXLEN", rng.randint(3, 8)]]), "*", "f",
                 rng.randrange(100)]),
            (1, ["XTRIM", k, "MAXLEN", rng.randint(2, 6)]),
            (2, ["XGROUP", "CREATE", k, group, rng.choice(["0", "$"]), "MKSTREAM"]),
            (6, ["XREADGROUP", "GROUP", group, f"c{rng.randrange(2)}", "COUNT",
                 rng.randint(1, 3), "STREAMS", k, rng.choice([">", ">", "0"])]),
            (1, ["XAUTOCLAIM", k, group, "c9", rng.randint(0, 2000), "0", "COUNT", 2]),
            (1, ["XDEL", k, f"{START_MS}-0"]), (1, ["XGROUP", "DELCONSUMER", k, group, "c1"]),
            (1, ["XGROUP", "SETID", k, group, rng.choice(["0", "$"])]),
        ]
        pending = self.leader("XPENDING", k, group, "-", "+", 5)
        if isinstance(pending, ErrorReply) and rng.random() < 0.7:  # no such group (or key)
            return ["XGROUP", "CREATE", k, group, rng.choice(["0", "0", "$"]), "MKSTREAM"]
        if isinstance(pending, list) and pending:
            ids = [entry[0] for entry in pending]
            choices += [(5, ["XACK", k, group, *ids[:2]]),
                        (2, ["XCLAIM", k, group, "c1", rng.randint(0, 1000), ids[-1]]),
                        (2, ["XDEL", k, rng.choice(ids)]),  # still pending: read again
                        (3, ["XREADGROUP", "GROUP", group, pending[0][1], "STREAMS", k, "0"])]
        return pick(rng, choices)

    def other(self) -> list[Any]:
        """Bitmaps, HyperLogLogs, geo, SORT ... STORE, DUMP/RESTORE, the multi-key pops and
        blocking commands that do not block, whole databases (SWAPDB, rarely FLUSHDB)."""
        rng, s, lst, z = self.rng, self.key("s"), self.key("l"), self.key("z")
        dumped = self.leader("DUMP", self.key(rng.choice("slhz")))
        choices: list[tuple[int, list[Any]]] = [
            (2, ["SETBIT", s, rng.randrange(40), rng.randrange(2)]),
            (1, ["BITFIELD", s, "INCRBY", "u8", rng.randrange(4) * 8, rng.randint(1, 200),
                 "SET", "i4", 3, rng.randint(-8, 7)]),
            (1, ["BITOP", "OR", s, self.key("s"), self.key("s")]),
            (2, ["PFADD", s, *(f"e{rng.randrange(20)}" for _ in range(3))]),
            (1, ["PFMERGE", s, self.key("s")]),
            (1, ["GEOADD", z, rng.uniform(-10, 10), rng.uniform(-10, 10), f"m{rng.randrange(4)}"]),
            (1, ["GEOSEARCHSTORE", self.key("z"), z, "FROMLONLAT", 0, 0, "BYRADIUS", 2000, "km",
                 "STOREDIST"]),
            (1, ["SORT", lst, "ALPHA", "LIMIT", 0, 3, "STORE", self.key("l")]),
            (2, ["LMPOP", 2, lst, self.key("l"), rng.choice(["LEFT", "RIGHT"]), "COUNT", 2]),
            (2, ["ZMPOP", 2, z, self.key("z"), rng.choice(["MIN", "MAX"])]),
            (2, ["BLMOVE", lst, self.key("l"), "LEFT", "RIGHT", 0]),
            (1, ["BZPOPMIN", z, 0]), (1, ["BLMPOP", 0, 1, lst, "LEFT"]),
            (1, ["ZRANGESTORE", self.key("z"), z, 0, 2]),
            (1, ["SETNX", s, "nx"]), (1, ["GETSET", s, "gs"]), (1, ["DECR", self.key("n")]),
            (1, ["MSETNX", self.key("s"), "a", self.key("s"), "b"]),
            (1, ["SWAPDB", rng.randrange(DATABASES), rng.randrange(DATABASES)]),
            (rng.choice([0, 0, 0, 1]), ["FLUSHDB"]),
        ]
        lease = self.leader("GETL", s)
        if isinstance(lease, list) and lease[0] == b"lease":
            choices.append((3, ["SETL", s, lease[1], "filled",
                                *rng.choice([[], ["PX", rng.randint(100, 3000)]])]))
        choices.append((2, ["CL.THROTTLE", self.key("s"), 3, 10, 60, rng.randint(0, 4)]))
        if isinstance(dumped, bytes):
            choices.append((2, ["RESTORE", self.key(rng.choice("slhz")), rng.randint(0, 3000),
                                dumped, *rng.choice([[], ["REPLACE"], ["REPLACE", "ABSTTL"]])]))
        # The leader's own session must not block (it would wait for good): `block` has
        # other clients for that, and these run here only when they would not.
        blocking = {"BLMOVE", "BZPOPMIN", "BLMPOP"}
        argv = pick(rng, choices)
        if argv[0] in blocking and not self.leader("EXISTS", argv[1 if argv[0] != "BLMPOP" else 3]):
            return ["EXISTS", argv[1]]
        return argv

    def waited(self) -> list[str]:
        """The keys and queues blocked clients wait on now."""
        return [key for key, reply in self.blocked.values()
                if reply is not None and not getattr(reply, "done", True)]

    def block(self) -> list[Any]:
        """Another client blocks (BLPOP, BLMOVE, BZPOPMIN, XREADGROUP BLOCK, JOB.FETCH BLOCK),
        or the leader's session writes to a key one waits on: serving it must log what it
        changed. Unserved, it times out. Blocking returns a PING for the leader's session."""
        rng = self.rng
        waited = self.waited()
        free = [session for session, (_, reply) in self.blocked.items()
                if reply is None or getattr(reply, "done", True)]
        if not free or (waited and rng.random() < 0.5):
            key = rng.choice(waited) if waited else "l0"
            return {"l": ["RPUSH", key, "served"], "z": ["ZADD", key, rng.randrange(9), "m"],
                    "t": ["XADD", key, "*", "f", "served"],
                    "q": ["JOB.PUSH", key, "served"]}[key[0]]
        session = rng.choice(free)
        seconds = rng.choice(["0.5", "5", "10"])
        key = rng.choice(["l", "z", "t", "q"]) + str(rng.randrange(2))
        argv = {"l": rng.choice([["BLPOP", key, self.key("l"), seconds],
                                 ["BLMOVE", key, self.key("l"), "RIGHT", "LEFT", seconds]]),
                "z": ["BZPOPMIN", key, seconds],
                "t": ["XREADGROUP", "GROUP", "g0", "waiter", "COUNT", 2, "BLOCK",
                      int(float(seconds) * 1000), "STREAMS", key, ">"],
                "q": ["JOB.FETCH", "BLOCK", int(float(seconds) * 1000), "LEASE",
                      rng.randint(200, 3000), "QUEUES", key]}[key[0]]
        execute(session, [b"SELECT", b"%d" % self.db])
        self.blocked[session] = key, execute(session, [str(arg).encode() for arg in argv])
        return ["PING"]

    def script(self) -> list[Any]:
        """Two writes or more in one script (MULTI ... EXEC in the log): a random pop and a
        relative TTL (which must be logged as their effects), job commands between cache
        writes, and sometimes an error after the first write (whose effect stands)."""
        rng = self.rng
        middle = rng.choice([
            "", "redis.call('JOB.PUSH', 'q0', 'from-script') ", "redis.call('INCR', KEYS[1]) ",
            "redis.call('SPOP', KEYS[3]) redis.call('EXPIRE', KEYS[2], 2) ",
            "local j = redis.call('JOB.FETCH', 'LEASE', 500, 'QUEUES', 'q0', 'q1') "
            "if j[1] then redis.call('JOB.PUSH', 'q2', 'next') end ",
            "redis.call('QUEUE.PAUSE', 'q1') redis.call('LMOVE', KEYS[3], KEYS[3], "
            "'LEFT', 'RIGHT') "])
        return ["EVAL", f"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) {middle}"
                "return redis.call('HINCRBY', KEYS[2], 'f', 1)", 3, self.key("s"),
                self.key("h"), self.key(rng.choice("xl")), rng.randrange(9),
                rng.randint(100, 3000)]

    def function(self) -> list[Any]:
        """A library (loaded, replaced, deleted: FUNCTION LOAD and DELETE are effects too)
        whose function writes a key and pushes a job."""
        rng = self.rng
        return pick(rng, [
            (4, ["FCALL", "bump", 1, self.key("n"), rng.choice(["q0", "q1"])]),
            (2, ["FUNCTION", "LOAD", "REPLACE", "#!lua name=lib\nredis.register_function("
                 "'bump', function(keys, args) redis.call('INCRBY', keys[1], "
                 f"{rng.randint(1, 9)}) return redis.call('JOB.PUSH', args[1], 'fn') end)"]),
            (1, ["FUNCTION", "DELETE", "lib"])])

    def transaction(self) -> list[Any]:
        """Runs MULTI and its queued commands; returns the EXEC for the caller to run."""
        self.leader("MULTI")
        for _ in range(self.rng.randint(1, 3)):
            self.leader(*(self.job() if self.rng.random() < 0.3 else self.cache()))
        return ["EXEC"]

    def job(self) -> list[Any]:
        rng = self.rng
        queue = self.key("q")
        job_id = rng.choice(self.job_ids) if self.job_ids else "nope"
        running = [job for job in self.leader.engine.jobs.values() if job.state is RUNNING]
        finished = [job.id for job in self.leader.engine.jobs.values() if job.state in TERMINAL]
        choices: list[tuple[int, list[Any]]] = [
            (5, ["JOB.PUSH", queue, f"p{rng.randrange(50)}",
                 *rng.choice([[], ["DELAY", rng.randint(1, 3000)], ["AT", START_MS]]),
                 *rng.choice([[], ["PRIORITY", rng.randint(-2, 5)]]),
                 *rng.choice([[], ["KEY", f"key{rng.randrange(5)}", "KEYTTL", 5000]]),
                 *rng.choice([[], ["RETRIES", rng.randint(0, 2), "BACKOFF", 100, 1000]]),
                 *rng.choice([[], ["EXPIRE", self.leader.clock.now_ms() + rng.randint(1, 4000)]])
                 ]),
            (2, ["JOB.PUSH", queue, "plain"]),
            (5, ["JOB.FETCH", "COUNT", rng.randint(1, 3), "LEASE", rng.choice([500, 5000, 20_000]),
                 "WORKER", "w1", "QUEUES", queue, f"q{rng.randrange(3)}"]),
            (1, ["JOB.CANCEL", job_id]), (1, ["JOB.RETRY", job_id]),
            (2, ["JOB.RETRY", rng.choice(finished) if finished else job_id]),
            (1, [rng.choice(["QUEUE.PAUSE", "QUEUE.RESUME", "QUEUE.RESUME"]), queue]),
            (1, ["QUEUE.LIMIT", queue, "CONCURRENCY", rng.choice(["NONE", 2, 4])]),
            (1, ["CRON.SET", f"c{rng.randrange(2)}", "* * * * *", queue, "tick",
                 *rng.choice([[], ["PRIORITY", 2]])]),
            (1, ["CRON.DEL", f"c{rng.randrange(2)}"]),
            (1, [rng.choice(["CRON.PAUSE", "CRON.RESUME"]), f"c{rng.randrange(2)}"]),
            (1, ["DLQ.REQUEUE", "ALL", "QUEUE", queue]),
            (1, ["DLQ.PURGE", "QUEUE", queue]), (rng.choice([0, 0, 1]), ["QUEUE.PURGE", queue]),
            (2, ["JOB.PUSH", queue, "child", "AFTER", 1, job_id]),
            (1, ["BATCH.NEW", *rng.choice([[], ["ONSUCCESS", "q0", "all-done"]])]),
        ]
        if self.batch_ids:
            batch = rng.choice(self.batch_ids)
            choices += [(2, ["JOB.PUSH", queue, "in-batch", "BATCH", batch]),
                        (1, ["BATCH.COMMIT", batch])]
        if running:
            job = rng.choice(running)
            choices += [
                (8, ["JOB.ACK", job.id, job.token, *rng.choice([[], ["RESULT", "done"]])]),
                (1, ["JOB.ACK", job.id, "stale-token"]),
                (4, ["JOB.FAIL", job.id, job.token, "boom",
                     *rng.choice([[], ["RETRYIN", rng.randint(1, 2000)], ["NORETRY"]])]),
                (2, ["JOB.BEAT", job.id, job.token, "EXTEND", rng.randint(100, 3000)]),
                (2, ["JOB.LOG", job.id, job.token, "line"])]
        return pick(rng, choices)

    def step(self) -> None:
        """One command, then the clock moves on and the server's timers run (as app.py's
        timer task and expiry cron do).

        Jobs count against maxmemory but are never evicted, and they pile up here (only
        finished ones are archived): a fixed maxmemory would soon leave the cache no room at
        all, and an empty keyspace to compare. So maxmemory follows the jobs, `cache_budget`
        above them."""
        leader = self.leader
        if self.cache_budget:
            leader("CONFIG", "SET", "maxmemory", leader.engine.used_memory + self.cache_budget)
        argv = self.next()
        reply = leader(*argv)
        if argv[0] == "JOB.PUSH" and isinstance(reply, bytes):
            self.job_ids.append(reply.decode())
        elif argv[0] == "BATCH.NEW" and isinstance(reply, bytes):
            self.batch_ids.append(reply.decode())
        leader.clock.advance(self.rng.choice([0, 1, 10, 50, 200, 200, 700, 1500, 4000]))
        leader.engine.tick()
        for callback in leader.state.timers.advance(leader.clock.now_ms()):
            callback()
        if self.rng.random() < 0.5:
            leader.state.dbs.active_expire_cycle()
        if self.rng.random() < 0.05:
            self.archive()

    def archive(self) -> None:
        """What the archiver (persistence/archiving.py) asks of the engine once SQLite holds
        the jobs: finished jobs leave memory, ended batches are dropped."""
        engine, now = self.leader.engine, self.leader.clock.now_ms()
        engine.archived([(job, job.finished_ms) for job in engine.archivable(now - 5000, 20)])
        engine.batches.drop(now - 20_000)


def pick(rng: random.Random, choices: list[tuple[int, list[Any]]]) -> list[Any]:
    return rng.choices([argv for _, argv in choices], [weight for weight, _ in choices])[0]
