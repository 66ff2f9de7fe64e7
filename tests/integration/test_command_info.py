"""COMMAND against a real redis-server 7.0: INFO entries, GETKEYS, LIST, COUNT, and the audit
of which Redis commands jobcached lacks (each must be a documented difference)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from jobcached.commands import redis_table
from jobcached.commands.docs import declared_flags
from jobcached.commands.registry import load_all, walk
from jobcached.commands.spec import PREAMBLE
from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair, normalize, raw_call

#: our flags that mean the same as Redis' and drive dispatch
POLICY = {"write", "readonly", "denyoom", "admin", "pubsub", "no_auth", "loading", "stale",
          "fast", "blocking", "no_multi", "allow_busy"}

#: flags we declare where Redis does not, each a documented difference (spec-preamble.md):
#: pub/sub and transaction control refused inside MULTI, BGREWRITEAOF compacts the job log
#: (not inside a transaction), PING answers a replica whose link is down
NO_MULTI_HERE = ("subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe",
                 "sunsubscribe", "multi", "exec", "discard", "watch", "bgrewriteaof")
FLAG_DIFFERENCES = {**{name: {"no_multi"} for name in NO_MULTI_HERE}, "ping": {"stale"}}


@pytest.fixture(scope="module")
def names(redis_server: RedisServerProcess) -> list[str]:
    """Every command and subcommand of the real server (COMMAND LIST includes `client|id`)."""
    r = redis_server.client()
    listed = sorted(n.decode() for n in raw_call(r, "COMMAND", "LIST"))
    r.close()
    return listed


def ours() -> set[str]:
    load_all()
    return {cmd.fullname for cmd in walk()}


def test_declarations_agree_with_redis_table() -> None:
    """Arity, the policy flags and first/last/step keys we dispatch on are Redis' own."""
    load_all()
    wrong = []
    for cmd in walk():
        found = redis_table.entry(cmd.fullname)
        if found is None:
            continue
        info = found["info"]
        theirs = set(redis_table.statuses(info[2])) & POLICY | FLAG_DIFFERENCES.get(cmd.fullname,
                                                                                    set())
        if (cmd.arity, declared_flags(cmd) & POLICY, cmd.keys) != (info[1], theirs,
                                                                  tuple(info[3:6])):
            wrong.append((cmd.fullname, cmd.arity, sorted(declared_flags(cmd)), cmd.keys,
                          info[1], sorted(theirs), info[3:6]))
    assert not wrong


def _compare_info(pair: Pair, batch: list[str]) -> list[str]:
    ours_reply, theirs_reply = pair.both("COMMAND", "INFO", *batch)
    differ = []
    for name, mine, real in zip(batch, ours_reply, theirs_reply, strict=True):
        if mine is None:
            continue
        extra = {f.encode() for f in FLAG_DIFFERENCES.get(name, ())}
        mine[2] = [f for f in mine[2] if f not in extra]
        # subcommands are compared one by one (Redis lists them in hash-table order)
        if normalize(mine[:9]) != normalize(real[:9]):
            differ.append(name)
    return differ


def test_command_info_equals_redis(pair: Pair, names: list[str]) -> None:
    """Every command both servers have: the whole COMMAND INFO entry, RESP2 and RESP3."""
    common = [n for n in names if n in ours()]
    differ: list[str] = []
    for start in range(0, len(common), 50):
        differ += _compare_info(pair, common[start:start + 50])
    assert differ == [], differ


def test_command_docs_of_redis_commands(pair: Pair) -> None:
    for name in ("set", "client|list", "zadd", "xreadgroup", "config|get"):
        pair.check("COMMAND", "DOCS", name)


GETKEYS = [
    ("get", "k"), ("set", "k", "v"), ("set", "k", "v", "GET"), ("mset", "a", "1", "b", "2"),
    ("del", "a", "b", "c"), ("sintercard", "2", "a", "b", "LIMIT", "1"),
    ("zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"), ("zunionstore", "d", "3", "a"),
    ("lmpop", "2", "a", "b", "LEFT"), ("zinter", "1", "z"),
    ("sintercard", "3", "a"), ("eval", "return 1", "2", "x", "y", "z"),
    ("eval", "return 1", "0"), ("xread", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"),
    ("xreadgroup", "GROUP", "g", "c", "STREAMS", "s", ">"), ("bitfield", "k", "GET", "u8", "0"),
    ("bitfield", "k", "SET", "u8", "0", "1"), ("lmove", "a", "b", "LEFT", "RIGHT"),
    ("rename", "a", "b"), ("blpop", "a", "b", "0"), ("ping",), ("client", "id"),
    ("nosuch", "a"), ("get",), ("get", "a", "b"), ("spublish", "c", "m"),
    ("smove", "a", "b", "m"), ("object", "encoding", "k"), ("xinfo", "stream", "s"),
]


@pytest.mark.parametrize("variant", ["GETKEYS", "GETKEYSANDFLAGS"])
def test_getkeys(pair: Pair, variant: str) -> None:
    for argv in GETKEYS:
        pair.check("COMMAND", variant, *argv)
    pair.check("COMMAND", variant)


def test_getkeys_of_job_commands(server: ServerProcess) -> None:
    """Job commands name their queues as keys, so cluster-aware clients can route them."""
    r = server.client()
    assert raw_call(r, "COMMAND", "GETKEYS", "JOB.PUSH", "q1", "payload") == [b"q1"]
    fetch = ("JOB.FETCH", "COUNT", "2", "QUEUES", "q1", "q2")
    assert raw_call(r, "COMMAND", "GETKEYS", *fetch) == [b"q1", b"q2"]
    assert raw_call(r, "COMMAND", "GETKEYSANDFLAGS", "QUEUE.PAUSE", "q") == [
        [b"q", [b"RW", b"update"]]]
    info = raw_call(r, "COMMAND", "INFO", "job.fetch", "job.push")
    assert b"movablekeys" in info[0][2] and b"@job-work" in info[0][6]
    assert info[1][3:6] == [1, 1, 1] and b"@job-produce" in info[1][6]
    assert raw_call(r, "COMMAND", "LIST", "FILTERBY", "ACLCAT", "job-admin")
    r.close()


def test_command_list_filters(pair: Pair) -> None:
    for argv in (("FILTERBY", "PATTERN", "x*"), ("FILTERBY", "PATTERN", "H?ET"),
                 ("FILTERBY", "ACLCAT", "nosuch"), ("FILTERBY", "MODULE", "m"),
                 ("FILTERBY", "ACLCAT"), ("FILTERBY", "OTHER", "x"), ("foo",)):
        pair.check("COMMAND", "LIST", *argv, unordered=True)
    for category in ("hyperloglog", "keyspace", "string", "dangerous", "pubsub"):
        mine, real = pair.both("COMMAND", "LIST", "FILTERBY", "ACLCAT", category)
        assert set(mine) <= set(real) and mine, category


def _documented_missing() -> dict[str, str]:
    """`name` -> its bullet's text, for every name listed under "Redis commands jobcached
    does not have" in the preamble."""
    text = PREAMBLE.read_text()
    section = text.split("### Redis commands jobcached does not have", 1)[1]
    section = re.split(r"\n#+ ", section, maxsplit=1)[0]
    found: dict[str, str] = {}
    for bullet in re.split(r"\n- ", section)[1:]:
        for name in re.findall(r"`([a-z_|-]+)`", bullet):
            found[name] = bullet
    return found


def test_every_missing_redis_command_is_a_documented_difference(names: list[str]) -> None:
    """The audit: Redis 7.0 commands and subcommands we lack, each listed with a reason."""
    missing = [n for n in names if n not in ours()]
    documented = _documented_missing()
    undocumented = [n for n in missing if n not in documented]
    assert undocumented == []
    for name in missing:
        reason = re.sub(r"`[^`]*`|[\s,.:;*]", "", documented[name])
        assert len(reason) > 10, f"{name}: no reason given"
    stale = sorted(n for n in documented if n in names and n not in missing)
    assert stale == [], "implemented now: remove them from the preamble"


def test_command_count(server: ServerProcess, redis_server: RedisServerProcess,
                       names: list[str]) -> None:
    """Complete once nothing is missing: our count plus the missing top-level commands
    reaches Redis' count."""
    r, theirs = server.client(), redis_server.client()
    missing_top = [n for n in names if "|" not in n and n not in ours()]
    count = raw_call(r, "COMMAND", "COUNT")
    assert count + len(missing_top) >= raw_call(theirs, "COMMAND", "COUNT")
    assert count == len(list(raw_call(r, "COMMAND")))
    r.close()
    theirs.close()


@pytest.fixture
def resp3(server: ServerProcess) -> Iterator[redis.Redis]:
    client = server.client(protocol=3)
    yield client
    client.close()


def test_key_specs_are_sets_of_maps_under_resp3(resp3: redis.Redis) -> None:
    entry: Any = raw_call(resp3, "COMMAND", "INFO", "job.push")[0]
    spec = next(iter(entry[8]))
    assert spec[b"begin_search"] == {b"type": b"index", b"spec": {b"index": 1}}
