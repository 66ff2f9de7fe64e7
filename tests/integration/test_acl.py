"""Redis 7.0 ACL, compared with a real redis-server: users and rules, refusals, AUTH with users,
ACL LOG, redis-py's `acl_*` methods and redis-cli --user; then jobs under ACL.

ACL GETUSER / LIST describe command rules as Redis 7.0 rebuilds them: +@all or -@all, the
categories, then single commands, which Redis emits in its hash table's order (different from
one run to the next); `rules()` sorts that last part before comparing.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import RawClient, RedisServerProcess, ServerProcess, require_tool
from tests.integration.cache.differential import Pair, raw_call

SETUSER_SEQUENCES = [
    ["on", ">p", "+get", "+@string", "-set", "~a*", "%R~b*", "&ch*", "-@hash", "+hget"],
    ["+@all", "-@dangerous", "+client|id"],
    ["+@all", "-client", "+client|id", "allkeys", "allchannels"],
    ["+get", "+set", "-get", "+@hash", "-hget", "+config|get", "%W~w*", "%RW~rw*"],
    ["on", "#" + "a" * 64, ">x", "<x", "nopass", "reset", "on", "+@read", "resetkeys", "~k"],
    ["allcommands", "-@write", "+set", "nocommands", "+ping", "&*"],
    ["on", "+get", "~a*", "(+set ~b* &c*)", "(", "+@hash", "%R~h*", ")", "()"],
    ["(+get ~x)", "clearselectors", "(+@read %W~w)"],
    ["+select|0", "+select|1", "+debug|object", "+select|A", "(+select|3)"],
    ["+@all", "+select|0", "-select", "+select|0", "+@keyspace"],
    ["+select|0", "+select"],
]

CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting")

BAD_RULES = ["(+get", "(on)", "(+get) (x", "( +get", "(+nosuch)", "+get|", "-select|0",
             "foo", "+nosuch", "+@nosuch", "%X~a", "%~a", "#abc", "!" + "b" * 64, "<never",
             "-get|foo", "+client|foo", "~*", "allkeys ~x"]


def rules(text: bytes | str) -> tuple[list[str], list[str]]:
    """A command-rule string as (+@all/-@all and categories, single commands sorted)."""
    words = (text.decode() if isinstance(text, bytes) else text).split()
    cats = [w for w in words if w[1:2] == "@"]
    return cats, sorted(w for w in words if w[1:2] != "@")


def as_map(reply: Any) -> dict[Any, Any]:
    if isinstance(reply, list):
        return dict(zip(reply[::2], reply[1::2], strict=True))
    return dict(reply)


def getuser(reply: Any) -> dict[Any, Any]:
    """GETUSER as a dict whatever the protocol, its command rules made comparable."""
    out = {k: (rules(v) if k == b"commands" else v) for k, v in as_map(reply).items()}
    out[b"flags"] = sorted(out[b"flags"])
    out[b"selectors"] = [{k: (rules(v) if k == b"commands" else v)
                          for k, v in as_map(sel).items()} for sel in out[b"selectors"]]
    return out


@pytest.fixture
def pair(server: ServerProcess, redis_server: RedisServerProcess,
         request: pytest.FixtureRequest) -> Iterator[Pair]:
    ours, theirs = server.client(), redis_server.client()
    p = Pair(ours, theirs)
    yield p
    users = [u for u in ours.acl_users() if u != b"default"]
    if users:
        p.both("ACL", "DELUSER", *users)
    p.both("ACL", "LOG", "RESET")
    ours.close()
    theirs.close()


def both_clients(pair: Pair, server: ServerProcess, redis_server: RedisServerProcess,
                 user: str, password: str, protocol: int = 2) -> tuple[redis.Redis, redis.Redis]:
    """Clients logged in as `user` (no CLIENT SETINFO: Redis 7.0 has none, we do)."""
    kwargs: dict[str, Any] = {"username": user, "password": password, "protocol": protocol,
                              "driver_info": redis.DriverInfo(name=None, lib_version=None)}
    return server.client(**kwargs), redis_server.client(**kwargs)


@pytest.mark.parametrize("protocol", [2, 3])
def test_setuser_getuser_and_list_match_redis(server: ServerProcess,
                                              redis_server: RedisServerProcess,
                                              protocol: int) -> None:
    ours, theirs = server.client(protocol=protocol), redis_server.client(protocol=protocol)
    try:
        for n, sequence in enumerate(SETUSER_SEQUENCES):
            name = f"seq{n}"
            assert raw_call(ours, "ACL", "SETUSER", name, *sequence) == raw_call(
                theirs, "ACL", "SETUSER", name, *sequence)
            mine, reference = (raw_call(c, "ACL", "GETUSER", name) for c in (ours, theirs))
            assert getuser(mine) == getuser(reference), sequence
        lines = [raw_call(c, "ACL", "LIST") for c in (ours, theirs)]
        split = [[(line.split(b" -@all")[0].split(b" +@all")[0], rules(
            line[len(line.split(b" -@all")[0].split(b" +@all")[0]):])) for line in ls]
            for ls in lines]
        assert split[0] == split[1]
        assert raw_call(ours, "ACL", "USERS") == raw_call(theirs, "ACL", "USERS")
        assert raw_call(ours, "ACL", "GETUSER", "nobody") is None
        assert raw_call(theirs, "ACL", "GETUSER", "nobody") is None
    finally:
        for c in (ours, theirs):
            raw_call(c, "ACL", "DELUSER", *(f"seq{n}" for n in range(len(SETUSER_SEQUENCES))))
            c.close()


def test_rule_errors_match_redis(pair: Pair) -> None:
    for rule in BAD_RULES:
        pair.check("ACL", "SETUSER", "bad", *rule.split())
    pair.check("ACL", "SETUSER", "a b")
    pair.check("ACL", "DELUSER", "default")
    pair.check("ACL", "DELUSER", "bad", "nobody")
    # a failing rule changes nothing, not even the rules before it
    pair.check("ACL", "SETUSER", "bad", "on", "+get", "+nosuch")
    pair.check("ACL", "GETUSER", "bad")


def test_cat_genpass_whoami_match_redis(pair: Pair) -> None:
    ours, theirs = pair.both("ACL", "CAT")
    assert ours == [*theirs, b"job-produce", b"job-work", b"job-admin"]
    common = set(raw_call(pair.ours, "COMMAND", "LIST")) & set(
        raw_call(pair.theirs, "COMMAND", "LIST"))
    for category in CATEGORIES:
        ours, theirs = pair.both("ACL", "CAT", category)
        assert set(ours) & common == set(theirs) & common, category
    pair.check("ACL", "CAT", "nosuch")
    pair.check("ACL", "WHOAMI")
    for bits in ("0", "4097", "x"):
        pair.check("ACL", "GENPASS", bits)
    ours, theirs = pair.both("ACL", "GENPASS", "5")
    assert len(ours) == len(theirs) == 2
    assert len(raw_call(pair.ours, "ACL", "GENPASS")) == 64


def test_dryrun_matches_redis(pair: Pair) -> None:
    pair.check("ACL", "SETUSER", "w", "on", ">p", "+get", "+publish", "+subscribe",
               "+psubscribe", "+client|id", "~a*", "%R~r*", "&c*")
    for argv in (["set", "a", "1"], ["get", "b"], ["get", "a"], ["get", "r1"],
                 ["publish", "d", "x"], ["publish", "c1", "x"], ["subscribe", "c1", "d"],
                 ["psubscribe", "c*"], ["psubscribe", "c1*"], ["client", "id"],
                 ["client", "list"], ["nosuch"], ["get"], ["client", "nosuch"]):
        pair.check("ACL", "DRYRUN", "w", *argv)
    pair.check("ACL", "DRYRUN", "nobody", "get", "a")
    for argv in (["hello", "3"], ["auth", "a", "b"], ["quit"], ["reset"], ["ping"]):
        pair.check("ACL", "DRYRUN", "w", *argv)
    # selectors: any one may allow the whole command; else the most relevant refusal
    pair.check("ACL", "SETUSER", "sel", "on", "+get", "+publish", "~a*", "(+set ~b* &c*)",
               "(+@hash %R~h*)", "(+get ~x &*)")
    for argv in (["set", "a", "1"], ["set", "b", "1"], ["get", "b"], ["get", "x"],
                 ["hget", "a", "f"], ["hget", "h", "f"], ["hset", "h", "f", "v"],
                 ["publish", "c1", "m"], ["publish", "d", "m"], ["lpush", "a", "1"]):
        pair.check("ACL", "DRYRUN", "sel", *argv)
    pair.check("ACL", "SETUSER", "first", "on", "+select|0", "+select|A")
    for argv in (["select", "0"], ["select", "a"], ["select", "2"]):
        pair.check("ACL", "DRYRUN", "first", *argv)


#: one command line from each corner of the table, for the category x command matrix
MATRIX_COMMANDS = [["get", "k"], ["set", "k", "v"], ["del", "k"], ["hget", "h", "f"],
                   ["lpush", "l", "x"], ["sadd", "s", "m"], ["zadd", "z", "1", "m"],
                   ["xadd", "x", "*", "f", "v"], ["setbit", "b", "1", "1"], ["pfadd", "p", "e"],
                   ["geoadd", "g", "1", "1", "m"], ["publish", "c", "m"], ["blpop", "l", "0"],
                   ["flushall"], ["config", "get", "x"], ["client", "id"], ["multi"],
                   ["eval", "return 1", "0"], ["keys", "*"], ["ping"], ["debug", "object", "k"]]


def test_category_matrix_matches_redis(pair: Pair) -> None:
    for category in CATEGORIES:
        pair.check("ACL", "SETUSER", "m", "reset", "on", "~*", "&*", f"+@{category}")
        for argv in MATRIX_COMMANDS:
            pair.check("ACL", "DRYRUN", "m", *argv)
        pair.check("ACL", "SETUSER", "m", "reset", "on", "~*", "&*", "+@all", f"-@{category}")
        for argv in MATRIX_COMMANDS:
            pair.check("ACL", "DRYRUN", "m", *argv)


def test_noperm_errors_and_acl_log_match_redis(pair: Pair, server: ServerProcess,
                                               redis_server: RedisServerProcess) -> None:
    pair.check("ACL", "SETUSER", "w", "on", ">p", "+get", "+set", "+publish", "+multi",
               "+exec", "+eval", "~a*", "%R~r*", "&c*")
    ours, theirs = both_clients(pair, server, redis_server, "w", "p")
    user = Pair(ours, theirs)
    user.check("GET", "r1")
    for argv in (("SET", "r1", "x"), ("GET", "b"), ("DEL", "a"), ("PUBLISH", "d", "x"),
                 ("PUBLISH", "c1", "x"), ("EVAL", "return redis.call('get', 'b')", "0"),
                 ("EVAL", "return redis.call('del', 'a')", "0"), ("ACL", "WHOAMI")):
        user.check(*argv)
    user.check("MULTI")
    user.check("DEL", "a")
    user.check("GET", "a")
    user.check("EXEC")
    mine, reference = (raw_call(c, "ACL", "LOG") for c in (pair.ours, pair.theirs))
    fields = [b"count", b"reason", b"context", b"object", b"username"]

    def entries(log: Any) -> list[list[Any]]:
        maps = [e if isinstance(e, dict) else dict(zip(e[::2], e[1::2], strict=True))
                for e in log]
        return [[m[f] for f in fields] for m in maps]

    assert entries(mine) == entries(reference)
    assert len(raw_call(pair.ours, "ACL", "LOG", "2")) == 2
    pair.check("ACL", "LOG", "RESET")
    pair.check("ACL", "LOG")
    pair.check("ACL", "LOG", "x")
    pair.check("ACL", "LOG", "1", "2")
    ours.close()
    theirs.close()


def test_channel_refusals_match_redis(pair: Pair, server: ServerProcess,
                                      redis_server: RedisServerProcess) -> None:
    pair.check("ACL", "SETUSER", "s", "on", ">p", "+@pubsub", "&news.*")
    ours, theirs = RawClient(server.port), RawClient(redis_server.port)
    for line in (b"AUTH s p\r\n", b"SUBSCRIBE other\r\n", b"PSUBSCRIBE news.x*\r\n",
                 b"PUBLISH other x\r\n"):
        ours.send(line)
        theirs.send(line)
        assert ours.recv_line() == theirs.recv_line(), line


def test_revoking_a_channel_disconnects_its_subscribers(server: ServerProcess) -> None:
    admin = server.client()
    admin.acl_setuser("listener", enabled=True, passwords=["+pw"], commands=["+@pubsub"],
                      channels=["news", "sport"])
    raw = RawClient(server.port)
    raw.transcript(b"AUTH listener pw\r\nSUBSCRIBE news\r\n",
                   b"+OK\r\n*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n")
    admin.execute_command("ACL", "SETUSER", "listener", "resetchannels", "&sport")
    assert raw.recv_until_closed() == b""
    admin.acl_deluser("listener")
    admin.close()


def test_auth_and_hello_auth_with_users_match_redis(pair: Pair, server: ServerProcess,
                                                    redis_server: RedisServerProcess) -> None:
    pair.check("ACL", "SETUSER", "u", "on", ">secret", "+@all", "~*")
    pair.check("ACL", "SETUSER", "off-user", "off", ">secret", "+@all")
    ours, theirs = RawClient(server.port), RawClient(redis_server.port)
    for line in (b"AUTH u wrong\r\n", b"AUTH nobody secret\r\n", b"AUTH off-user secret\r\n",
                 b"HELLO 2 AUTH u wrong\r\n", b"AUTH u secret\r\n", b"ACL WHOAMI\r\n",
                 b"CLIENT KILL USER nobody\r\n", b"RESET\r\n", b"ACL WHOAMI\r\n",
                 b"HELLO 3 AUTH u secret\r\n"):
        ours.send(line)
        theirs.send(line)
        assert ours.recv_line() == theirs.recv_line(), line
    assert b"user=u" in raw_call(pair.ours, "CLIENT", "LIST")
    assert raw_call(pair.ours, "CLIENT", "KILL", "USER", "u") == 1


def test_redis_py_acl_methods(server: ServerProcess) -> None:
    client = server.client(decode_responses=True)
    assert client.acl_setuser("py", enabled=True, passwords=["+pw"], commands=["+get", "+set"],
                              keys=["cache:*"], channels=["events"])
    info = client.acl_getuser("py")
    assert info["enabled"] is True and info["keys"] == ["~cache:*"]
    assert info["channels"] == ["&events"] and "+get" in info["commands"]
    assert "py" in client.acl_users()
    assert any(line.startswith("user py on") for line in client.acl_list())
    assert client.acl_whoami() == "default"
    assert "string" in client.acl_cat()
    assert len(client.acl_genpass()) == 64
    assert client.acl_dryrun("py", "get", "cache:1") == "OK"
    user = server.client(username="py", password="pw", decode_responses=True)
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.get("other")
    assert client.acl_log(1)[0]["object"] == "other"
    assert client.acl_log_reset()
    assert client.acl_deluser("py") == 1
    client.close()


def test_redis_cli_user_and_pass(server: ServerProcess) -> None:
    cli = require_tool("redis-cli")
    client = server.client()
    client.acl_setuser("cli", enabled=True, passwords=["+pw"], commands=["+@string"],
                       keys=["k*"])
    base = [cli, "-p", str(server.port), "--no-auth-warning", "--user", "cli", "--pass", "pw"]
    out = subprocess.run([*base, "SET", "k1", "v"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "OK"
    out = subprocess.run([*base, "SET", "x", "v"], capture_output=True, text=True, timeout=10)
    assert "NOPERM" in out.stdout + out.stderr
    client.acl_deluser("cli")
    client.close()


def test_requirepass_is_the_default_users_password(server: ServerProcess) -> None:
    client = server.client()
    client.config_set("requirepass", "s3cret")
    try:
        assert client.ping()  # this connection stays authenticated
        assert client.acl_getuser("default")["passwords"]
        RawClient(server.port).transcript(b"PING\r\n", b"-NOAUTH Authentication required.\r\n")
        assert server.client(password="s3cret").ping()
    finally:
        client.config_set("requirepass", "")
    assert "nopass" in client.acl_getuser("default")["flags"]
    client.close()


def test_acl_save_and_load_round_trip(start_server: Any, tmp_path: Path) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user saved on #" + "c" * 64 + " ~q:* +@read\n")
    conf = tmp_path / "jobcached.conf"
    conf.write_text(f"aclfile {aclfile}\n")
    proc = start_server("--config", str(conf))
    client = proc.client(decode_responses=True)
    assert client.acl_users() == ["default", "saved"]
    client.acl_setuser("more", enabled=True, passwords=["+pw"], commands=["+ping"])
    assert client.execute_command("ACL", "SAVE") == "OK"
    client.acl_deluser("more")
    assert client.execute_command("ACL", "LOAD") == "OK"
    assert client.acl_users() == ["default", "more", "saved"]
    assert "user saved on #" + "c" * 64 + " ~q:* resetchannels -@all +@read" in \
        client.acl_list()
    aclfile.write_text("user broken on +nosuch\n")
    with pytest.raises(redis.ResponseError, match="Unknown command or category name"):
        client.execute_command("ACL", "LOAD")
    assert client.acl_users() == ["default", "more", "saved"]
    client.close()


def test_acl_load_and_save_without_aclfile_match_redis(pair: Pair) -> None:
    pair.check("ACL", "LOAD")
    pair.check("ACL", "SAVE")


def test_worker_limited_to_build_queues(server: ServerProcess) -> None:
    admin = server.client()
    admin.acl_setuser("runner", enabled=True, passwords=["+pw"],
                      commands=["+@job-work"], keys=["builds-*"])
    admin.acl_setuser("ops", enabled=True, passwords=["+pw"],
                      commands=["+@job-admin", "+@job-produce"], keys=["builds-*"])
    build = admin.execute_command("JOB.PUSH", "builds-linux", "b1")
    deploy = admin.execute_command("JOB.PUSH", "deploy-prod", "d1")
    runner = server.client(username="runner", password="pw")
    fetched = runner.execute_command("JOB.FETCH", "QUEUES", "builds-linux")
    assert len(fetched) == 1
    with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
        runner.execute_command("JOB.FETCH", "QUEUES", "deploy-prod")
    with pytest.raises(redis.exceptions.NoPermissionError, match=r"'job\.push' command"):
        runner.execute_command("JOB.PUSH", "builds-linux", "x")
    ops = server.client(username="ops", password="pw")
    with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
        ops.execute_command("JOB.CANCEL", deploy)
    with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
        ops.execute_command("JOB.GET", deploy)
    assert ops.execute_command("JOB.CANCEL", build) is not None
    assert admin.execute_command("ACL", "DRYRUN", "ops", "JOB.RETRY", deploy) == (
        b"This user has no permissions to access the 'deploy-prod' key")
    log = admin.acl_log(1)[0]
    assert (log["reason"], log["object"]) == ("key", "deploy-prod")
    admin.acl_deluser("runner", "ops")
    for c in (admin, runner, ops):
        c.close()


def test_archived_jobs_are_checked_against_their_queue(start_server: Any) -> None:
    """A finished job that moved to the archive keeps its queue's permissions: dispatch
    cannot see its queue, so the check runs again once the archive has answered."""
    proc: ServerProcess = start_server("--job-hot-retention", "0")
    admin = proc.client(protocol=3)
    admin.acl_setuser("ops", enabled=True, passwords=["+pw"],
                      commands=["+@job-admin", "+@job-produce"], keys=["builds-*"])
    ids = {}
    for queue in ("builds-linux", "deploy-prod"):
        ids[queue] = admin.execute_command("JOB.PUSH", queue, "x", "RETRIES", "0")
        [job] = admin.execute_command("JOB.FETCH", "QUEUES", queue)
        admin.execute_command("JOB.ACK", job[b"id"], job[b"token"])
    deadline = time.monotonic() + 10
    while admin.info("jobs")["archive_moved"] < 2:
        assert time.monotonic() < deadline, "jobs never reached the archive"
        time.sleep(0.02)
    ops = proc.client(username="ops", password="pw")
    assert ops.execute_command("JOB.GET", ids["builds-linux"]) is not None
    for command in (("JOB.GET",), ("JOB.WAIT",), ("JOB.LOGS",), ("JOB.RETRY",)):
        with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
            ops.execute_command(*command, ids["deploy-prod"])
    log = admin.acl_log(1)[0]
    assert (log["reason"], log["object"]) == ("key", "deploy-prod")
    admin.close()
    ops.close()
