"""Numbered databases, differential against redis-server 7.0 under RESP2 and RESP3: SELECT,
MOVE, SWAPDB, COPY ... DB, FLUSHDB / FLUSHALL, DBSIZE, KEYS, SCAN, RANDOMKEY, INFO keyspace,
MULTI with SELECT inside, WATCH and blocking pops per database, `redis://host:port/N`."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair
from tests.integration.cache.test_blocking import WAIT_SECONDS, Target

OUT_OF_RANGE = ("error", "DB index is out of range")


def keyspace_lines(reply: bytes | str) -> list[str]:
    text = reply.decode() if isinstance(reply, bytes) else reply
    return [line for line in text.splitlines() if line.startswith("db")]


def test_select_errors(pair: Pair) -> None:
    for index in (b"16", b"-1", b"abc", b"99999999999", b"1.5", b" 1"):
        pair.check("SELECT", index)
    assert pair.check("SELECT", "15") == b"OK"
    pair.check("SELECT", "0")


def test_databases_are_separate(pair: Pair) -> None:
    pair.check("SET", "k", "zero")
    pair.check("SELECT", "1")
    pair.check("GET", "k")
    pair.check("SET", "k", "one")
    pair.check("HSET", "h", "f", "v")
    assert pair.check("DBSIZE") == 2
    pair.check("KEYS", "*", unordered=True)
    ours, theirs = pair.both("SCAN", "0", "COUNT", "100")
    assert ours[0] == theirs[0] == b"0" and sorted(ours[1]) == sorted(theirs[1]) == [b"h", b"k"]
    pair.check("SELECT", "0")
    assert pair.check("GET", "k") == b"zero"
    assert pair.check("RANDOMKEY") == b"k"
    assert pair.check("DBSIZE") == 1


def test_info_keyspace_lists_each_non_empty_database(pair: Pair) -> None:
    pair.check("SET", "a", "1")
    pair.check("SELECT", "3")
    pair.check("MSET", "a", "1", "b", "2")
    pair.check("SELECT", "0")
    ours, theirs = pair.both("INFO", "keyspace")
    assert keyspace_lines(ours) == keyspace_lines(theirs) == [
        "db0:keys=1,expires=0,avg_ttl=0", "db3:keys=2,expires=0,avg_ttl=0"]


def test_move(pair: Pair) -> None:
    pair.check("SET", "k", "v", "EX", "1000")
    for args in (("k", "0"), ("k", "16"), ("k", "x"), ("k", "-1"), ("missing", "1")):
        pair.check("MOVE", *args)
    assert pair.check("MOVE", "k", "1") == 1
    pair.check("EXISTS", "k")
    pair.check("SELECT", "1")
    assert pair.check("GET", "k") == b"v"
    pair.check("EXPIRETIME", "k")  # the TTL moved with the key (compared to the second)
    pair.check("SELECT", "0")
    pair.check("SET", "k", "again")
    assert pair.check("MOVE", "k", "1") == 0  # exists in the target: nothing moves
    pair.check("GET", "k")


def test_swapdb(pair: Pair) -> None:
    pair.check("SET", "a", "0")
    pair.check("SELECT", "1")
    pair.check("RPUSH", "l", "x")
    for args in (("0", "16"), ("x", "1"), ("99", "abc"), ("abc", "99"), ("-1", "0"),
                 ("0", "99999999999")):
        pair.check("SWAPDB", *args)
    assert pair.check("SWAPDB", "0", "1") == b"OK"
    pair.check("KEYS", "*")  # db 1 now holds what db 0 held
    pair.check("SELECT", "0")
    pair.check("LRANGE", "l", "0", "-1")
    pair.check("GET", "a")
    pair.check("SWAPDB", "1", "1")
    pair.check("DBSIZE")


def test_copy_to_another_database(pair: Pair) -> None:
    pair.check("HSET", "h", "f", "v")
    for args in (("DB", "16"), ("DB", "x"), ("DB", "-1"), ("DB", "99999999999"), ("DB",),
                 ("DB", "0")):
        pair.check("COPY", "h", "h", *args)
    assert pair.check("COPY", "h", "h", "DB", "2") == 1
    assert pair.check("COPY", "h", "h", "DB", "2") == 0
    assert pair.check("COPY", "h", "h", "DB", "2", "REPLACE") == 1
    pair.check("SELECT", "2")
    pair.check("HGETALL", "h")
    pair.check("COPY", "h", "h")  # same db, same name


def test_flushdb_and_flushall(pair: Pair) -> None:
    pair.check("SET", "a", "1")
    pair.check("SELECT", "1")
    pair.check("SET", "b", "1")
    pair.check("FLUSHDB", "x")
    assert pair.check("FLUSHDB") == b"OK"
    pair.check("DBSIZE")
    pair.check("SELECT", "0")
    assert pair.check("DBSIZE") == 1
    pair.check("SELECT", "5")
    pair.check("SET", "c", "1")
    pair.check("FLUSHALL")
    pair.check("DBSIZE")
    pair.check("SELECT", "0")
    pair.check("DBSIZE")


def test_select_inside_multi_stays_selected(pair: Pair) -> None:
    pair.check("MULTI")
    pair.check("SELECT", "4")
    pair.check("SET", "k", "in-4")
    pair.check("SELECT", "99")
    ours, theirs = pair.both("EXEC")  # the error inside EXEC's array, compared as text
    assert [str(r) for r in ours] == [str(r) for r in theirs]
    assert pair.check("GET", "k") == b"in-4"
    pair.check("SELECT", "0")
    pair.check("GET", "k")


def test_client_info_shows_the_database(server: ServerProcess) -> None:
    client = server.client(single_connection_client=True)
    client.select(7)
    assert int(client.client_info()["db"]) == 7
    client.close()


def test_redis_url_selects_the_database(server: ServerProcess) -> None:
    client = redis.Redis.from_url(f"redis://127.0.0.1:{server.port}/5")
    client.set("url-key", "v")
    direct = server.client(db=5)
    assert direct.get("url-key") == b"v"
    assert server.client().get("url-key") is None
    client.close()
    direct.close()


def _both(server: ServerProcess, redis_server: RedisServerProcess,
          scenario: Callable[[Target], None]) -> None:
    for port, kind in ((server.port, "jobcached"), (redis_server.port, "redis")):
        target = Target(port, kind)
        try:
            target.client().flushall()
            scenario(target)
        finally:
            target.close()


def test_watch_is_per_database(server: ServerProcess,
                               redis_server: RedisServerProcess) -> None:
    def scenario(target: Target) -> None:
        other = target.client()
        watcher = target.client(db=2)
        watcher.execute_command("WATCH", "k")
        other.set("k", "db0")  # another database: the transaction still runs
        watcher.execute_command("MULTI")
        watcher.execute_command("SET", "k", "mine")
        assert watcher.execute_command("EXEC") == [b"OK"], target.kind
        watcher.execute_command("WATCH", "k")
        other.execute_command("SELECT", "2")
        other.set("k", "db2")
        watcher.execute_command("MULTI")
        watcher.execute_command("SET", "k", "mine")
        assert watcher.execute_command("EXEC") is None, target.kind
        watcher.execute_command("WATCH", "k")
        other.execute_command("FLUSHDB")  # the key existed in db 2: WATCH fails
        watcher.execute_command("MULTI")
        watcher.execute_command("SET", "k", "mine")
        assert watcher.execute_command("EXEC") is None, target.kind

    _both(server, redis_server, scenario)


def test_blocking_pop_is_per_database(server: ServerProcess,
                                      redis_server: RedisServerProcess) -> None:
    def scenario(target: Target) -> None:
        admin = target.clients[0]
        waiting = target.start("w", lambda r: (r.select(1), r.blpop(["q"], 0))[1])
        admin.rpush("q", "db0")  # database 0: the waiter in database 1 stays blocked
        time.sleep(0.05)
        assert not waiting.done(), target.kind
        admin.execute_command("MOVE", "q", "1")  # MOVE fills db 1's q: served
        assert waiting.result(WAIT_SECONDS) == (b"q", b"db0"), target.kind
        assert admin.exists("q") == 0

    _both(server, redis_server, scenario)


def test_swapdb_serves_clients_blocked_in_either_database(
        server: ServerProcess, redis_server: RedisServerProcess) -> None:
    def scenario(target: Target) -> None:
        admin = target.clients[0]
        waiting = target.start("w", lambda r: (r.select(1), r.blpop(["q"], 0))[1])
        admin.rpush("q", "x")
        admin.execute_command("SWAPDB", "0", "1")
        assert waiting.result(WAIT_SECONDS) == (b"q", b"x"), target.kind

    _both(server, redis_server, scenario)


def test_active_expiry_reaches_every_database(server: ServerProcess) -> None:
    client = server.client(db=9)
    client.set("short", "v", px=30)
    deadline = time.monotonic() + WAIT_SECONDS
    while client.dbsize():  # DBSIZE counts keys not reclaimed yet: only active expiry empties
        assert time.monotonic() < deadline, "database 9's expired key was never reclaimed"
        time.sleep(0.05)
    client.close()
