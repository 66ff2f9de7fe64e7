"""Replaying the effect log rebuilds the server: the one-effect-sink contract (issue 17).

Why: a follower and crash recovery will only ever see what `server/effects.py` was given. If a
handler propagates the wrong effect (a relative TTL, a random pick, a forgotten write), or a
write reaches no effect at all, the copy drifts from the leader without any error. So a seeded
random mix of cache commands, scripts and functions, transactions, clients blocked until a
write serves them, and job commands runs on a "leader" whose effects go to a spy
(`Effects.attach`), with the clock moving between commands so keys expire (lazily and
actively), leases and delays run out, cron slots fire and finished jobs are archived; some
runs have a small `maxmemory` so keys are evicted. The spy's entries are then applied to a
fresh "follower": cache effects as commands (SELECT and MULTI/EXEC included), `JOB.RECORD`
bodies through its engine's `replay`. Both must then hold the same keys, types, values, TTLs,
stream groups and function libraries, and the same jobs, queues, cron entries and batches.

Each entry is applied at the leader's time when it was logged. A Redis replica never expires a
key by itself (it waits for the master's DEL); this server has no follower mode yet, so a
follower at a later time would expire a key the leader still held when it wrote next to it
(`SET k v KEEPTTL` on a key whose TTL passed since makes a key without TTL on the follower
only). At the same time, the follower expires nothing the leader had not already logged a DEL
for. Replaying at the same time cannot show an effect with a relative time (EX 5 means the
same thing then), so the log is also checked for relative forms (`relative_time`). The
follower has no `maxmemory`, like a Redis replica (replica-ignore-maxmemory): only the
leader's DELs evict. Its job engine is never ticked: time-driven job changes arrive as records.

Fully in process: `dispatch.execute` on sessions without connections, a ManualClock, no loop.
The leader and the mix are in `effect_workload.py`.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from jobcached.clock import ManualClock
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.records import decode_record
from jobcached.net.replies import ErrorReply
from jobcached.server.effects import JOB_RECORD
from tests.unit.effect_workload import Server, Workload

COMMANDS = 600
SEEDS = [1, 2, 3, 4, 5]
#: the policy of each seed's maxmemory run: whatever picks the victims, each is a DEL
POLICIES = ["allkeys-lru", "allkeys-lfu", "volatile-ttl", "allkeys-random", "volatile-lru"]


class Spy:
    """An effect log that keeps every entry with the leader's time when it was appended."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.entries: list[tuple[int, list[bytes]]] = []

    def append(self, argv: list[bytes]) -> int:
        self.entries.append((self.clock.now_ms(), argv))
        return len(self.entries) - 1


# ---------------------------------------------------------------------------- replay


#: Commands whose times are relative to when they run: an effect must never be one of them.
RELATIVE_COMMANDS = {b"SETEX", b"PSETEX", b"EXPIRE", b"PEXPIRE", b"GETEX"}


def relative_time(argv: list[bytes]) -> bool:
    """Whether a cache effect means something else when applied later: a relative TTL
    (SET ... EX/PX, EXPIRE, RESTORE's TTL without ABSTTL) or XCLAIM's IDLE."""
    name, options = argv[0].upper(), [arg.upper() for arg in argv[1:]]
    if name == b"SET":
        return b"EX" in options[2:] or b"PX" in options[2:]
    if name == b"RESTORE":
        return argv[2] != b"0" and b"ABSTTL" not in options[3:]
    if name == b"XCLAIM":
        return b"IDLE" in options[5:]
    return name in RELATIVE_COMMANDS


def replay(spy: Spy, follower: Server) -> None:
    """Apply the leader's log to the follower, each entry at its own time; a script's or a
    transaction's group as one MULTI/EXEC when it holds only cache effects."""
    entries = iter(spy.entries)
    for at, argv in entries:
        follower.move_to(at)
        if argv == [b"MULTI"]:
            group: list[list[bytes]] = []
            for _, inner in entries:
                if inner == [b"EXEC"]:
                    break
                group.append(inner)
            apply_group(follower, group)
        else:
            apply_one(follower, argv)


def apply_one(follower: Server, argv: list[bytes]) -> None:
    if argv[0] == JOB_RECORD:
        follower.engine.replay([decode_record(argv[1])])
        return
    reply = follower(*argv)
    assert not isinstance(reply, ErrorReply), f"the follower refused {argv!r}: {reply.text!r}"


def apply_group(follower: Server, group: list[list[bytes]]) -> None:
    if any(argv[0] == JOB_RECORD for argv in group):
        for argv in group:  # no await in between: as atomic as MULTI/EXEC
            apply_one(follower, argv)
        return
    follower("MULTI")
    for argv in group:
        follower(*argv)
    replies = follower("EXEC")
    assert isinstance(replies, list), f"the follower's EXEC of {group!r}: {replies!r}"
    for argv, reply in zip(group, replies, strict=True):
        assert not isinstance(reply, ErrorReply), (
            f"the follower refused {argv!r} inside MULTI: {reply.text!r}")


# ---------------------------------------------------------------------------- comparison


def keyspace(server: Server) -> dict[tuple[int, bytes], Any]:
    """Every key of every database: its type, value as the type's read shows it, and its
    absolute expiry (PEXPIRETIME). Streams show XINFO STREAM FULL: entries, groups, consumers
    (but their seen-time, see `unseen`), pending entries with delivery times and counts."""
    found: dict[tuple[int, bytes], Any] = {}
    for db in range(server.state.config.databases):
        server("SELECT", db)
        for key in sorted(server("KEYS", "*")):
            kind = server("TYPE", key).text
            read = {b"string": ["GET", key], b"hash": ["HGETALL", key],
                    b"list": ["LRANGE", key, 0, -1], b"set": ["SMEMBERS", key],
                    b"zset": ["ZRANGE", key, 0, -1, "WITHSCORES"],
                    b"stream": ["XINFO", "STREAM", key, "FULL", "COUNT", 0]}[kind]
            value = server(*read)
            if kind in (b"set", b"hash"):  # unordered: in the order of their hash tables
                value = sorted(value.items() if isinstance(value, dict) else value)
            elif kind == b"stream":
                unseen(value)
            found[db, key] = (kind, value, server("PEXPIRETIME", key))
    return found


def unseen(stream: dict[str, Any]) -> None:
    """Blank the consumers' seen-time in an XINFO STREAM FULL reply. A read that delivers
    nothing (XREADGROUP of an empty stream, XPENDING IDLE...) updates it and propagates
    nothing, as in Redis 7.0: its replicas' seen-times differ from the master's too."""
    for group in stream["groups"]:
        for consumer in group["consumers"]:
            consumer["seen-time"] = None


def job_state(engine: JobEngine) -> dict[str, Any]:
    """What the job engine holds that its records rebuild: every job's full record, each
    queue's paused flag, limit, apply-path counters and fetch order, the cron entries and
    batches, the idempotency keys, and the estimated memory."""
    queues: dict[str, dict[str, Any]] = {}
    for name, queue in sorted(engine.queues.items()):
        ready = queue.in_order()
        limit = queue.limit.record(name) if queue.limit is not None else None
        queues[name] = {"paused": queue.paused, "limit": limit, "processed": queue.processed,
                        "failed": queue.failed, "counts": queue.counts,
                        "fetch order": [job.id for job in ready]}
    return {"jobs": {job_id: job.to_record() for job_id, job in sorted(engine.jobs.items())},
            "queues": queues, "crons": list(engine.crons.snapshot()),
            "batches": list(engine.batches.snapshot()),
            "keys": list(engine.keys.snapshot(engine.clock.now_ms())),
            "used_memory": engine.used_memory}


def first_difference(leader: dict[Any, Any], follower: dict[Any, Any], path: str = "") -> str:
    """Where two nested dicts first differ, as a path and both values."""
    for key in sorted(set(leader) | set(follower), key=repr):
        ours, theirs = leader.get(key, "<missing>"), follower.get(key, "<missing>")
        if ours == theirs:
            continue
        if isinstance(ours, dict) and isinstance(theirs, dict):
            return first_difference(ours, theirs, f"{path}{key!r} > ")
        return f"{path}{key!r}:\n  leader:   {ours!r}\n  follower: {theirs!r}"
    return "none"


def evicted_keys(server: Server) -> int:
    info = server("INFO", "stats").text.decode()
    return int(info.split("evicted_keys:")[1].split("\r\n")[0])


# ---------------------------------------------------------------------------- the test


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cache_budget", [0, 6000], ids=["no-maxmemory", "maxmemory"])
def test_replaying_the_effect_log_rebuilds_the_keyspace_and_the_jobs(
        seed: int, cache_budget: int) -> None:
    load_all()
    rng = random.Random(seed)
    policy = POLICIES[seed % len(POLICIES)]
    leader = Server(Config(maxmemory_policy=policy), seed)
    spy = Spy(leader.clock)
    leader.state.effects.attach(spy)
    workload = Workload(rng, leader, cache_budget)
    for _ in range(COMMANDS):
        workload.step()
    kinds = {argv[0].upper() for _, argv in spy.entries}
    assert JOB_RECORD in kinds and b"MULTI" in kinds and b"DEL" in kinds, sorted(kinds)
    # (volatile-* eviction may take every key with a TTL before it expires)
    if not (cache_budget and policy.startswith("volatile")):
        assert leader.state.dbs.info()["expired_keys"] > 0, "no key expired: the mix is tame"
    if cache_budget:
        assert evicted_keys(leader) > 0, "no key evicted: maxmemory is too large for the mix"

    relative = [argv for _, argv in spy.entries if argv[0] != JOB_RECORD and relative_time(argv)]
    assert not relative, f"effects with relative times: {relative[:5]}"

    follower = Server(Config(), seed)
    replay(spy, follower)
    follower.move_to(leader.clock.now_ms())
    assert follower.engine.skipped_records == 0, "a record named a job the log never added"

    ours, theirs = keyspace(leader), keyspace(follower)
    assert ours, "the leader ended with no keys: nothing to compare"
    assert ours == theirs, f"seed {seed}: keys differ at {first_difference(ours, theirs)}"
    listing = ["FUNCTION", "LIST", "WITHCODE"]
    assert follower(*listing) == leader(*listing)
    ours, theirs = job_state(leader.engine), job_state(follower.engine)
    assert ours["jobs"], "the leader ended with no jobs: nothing to compare"
    assert ours == theirs, f"seed {seed}: jobs differ at {first_difference(ours, theirs)}"
