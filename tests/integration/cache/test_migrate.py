"""MIGRATE between jobcached and redis-server, both directions.

The same MIGRATE is sent by each server to the other: the replies (OK, NOKEY, the target's
errors, I/O errors) must be the same, and the keys must arrive with their content and TTL and
leave the source unless COPY.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess, free_port
from tests.integration.cache.differential import raw_call

NOT_IN_DB_0 = 3  # a destination database, to see SELECT at work


class Direction:
    """A source server, a target server, and the target's port as MIGRATE names it."""

    def __init__(self, source: redis.Redis, target: redis.Redis, target_port: int) -> None:
        self.source = source
        self.target = target
        self.port = target_port

    def migrate(self, key: str, *options: object, db: int = 0, timeout: int = 2000) -> object:
        return raw_call(self.source, "MIGRATE", "127.0.0.1", self.port, key, db, timeout,
                        *options)


@pytest.fixture
def directions(server: ServerProcess, redis_server: RedisServerProcess
               ) -> Iterator[list[Direction]]:
    ours, theirs = server.client(), redis_server.client()
    for client in (ours, theirs):
        client.flushall()
    yield [Direction(ours, theirs, redis_server.port), Direction(theirs, ours, server.port)]
    ours.close()
    theirs.close()


def replies(directions: list[Direction], fn: object) -> list[object]:
    """fn(direction) for each direction, after flushing both servers."""
    out = []
    for d in directions:
        for client in (d.source, d.target):
            client.flushall()
        out.append(fn(d))  # type: ignore[operator]
    return out


def test_move_copy_replace(directions: list[Direction]) -> None:
    def run(d: Direction) -> list[object]:
        src, dst = d.source, d.target
        src.rpush("l", "a", "b", "1")
        src.set("s", "v", px=100000)
        src.zadd("z", {"m": 1.5})
        steps: list[object] = [d.migrate("l"), src.exists("l"), dst.lrange("l", 0, -1)]
        steps += [d.migrate("s", "COPY"), src.get("s"), dst.get("s"),
                  90000 < dst.pttl("s") <= 100000]
        steps += [d.migrate("s"), src.exists("s")]  # BUSYKEY: the key stays here
        steps += [d.migrate("s", "REPLACE"), src.exists("s")]
        steps += [d.migrate("missing"), d.migrate("", "KEYS", "missing", "missing2")]
        src.set("k1", "1")
        src.set("k2", "2")
        steps += [d.migrate("", "KEYS", "k1", "nope", "k2", "z", db=NOT_IN_DB_0),
                  src.exists("k1", "k2", "z")]
        dst.select(NOT_IN_DB_0)
        steps += [dst.mget("k1", "k2"), dst.zrange("z", 0, -1, withscores=True)]
        dst.select(0)
        return steps

    ours, theirs = replies(directions, run)
    assert ours == theirs
    assert ours[0] == b"OK" and ours[2] == [b"a", b"b", b"1"] and ours[6] is True
    assert ours[7] == ("error", "Target instance replied with error: BUSYKEY Target key name "
                                "already exists.")


def test_partial_failure_moves_the_keys_the_target_took(directions: list[Direction]) -> None:
    def run(d: Direction) -> list[object]:
        d.source.mset({"a": "1", "b": "2", "c": "3"})
        d.target.set("b", "taken")
        reply = d.migrate("", "KEYS", "a", "b", "c")
        return [reply, d.source.exists("a"), d.source.get("b"), d.source.exists("c"),
                d.target.mget("a", "b", "c")]

    ours, theirs = replies(directions, run)
    assert ours == theirs
    assert ours[1] == 0 and ours[2] == b"2"


def test_auth_errors_come_from_the_target(directions: list[Direction]) -> None:
    def run(d: Direction) -> list[object]:
        d.source.set("k", "v")
        # AUTH2 sends `AUTH user password`: neither target knows such a user
        return [d.migrate("k", "AUTH", "secret"), d.source.exists("k"),
                d.migrate("k", "AUTH2", "user", "secret"), d.source.exists("k")]

    ours, theirs = replies(directions, run)
    assert ours == theirs
    assert isinstance(ours[0], tuple) and "Target instance replied with error" in ours[0][1]
    assert ours[2] == ("error", "Target instance replied with error: WRONGPASS invalid "
                                "username-password pair or user is disabled.")
    assert ours[1] == ours[3] == 1


def test_syntax_and_argument_errors(directions: list[Direction]) -> None:
    def run(d: Direction) -> list[object]:
        d.source.set("k", "v")
        return [d.migrate("k", "BOGUS"), d.migrate("k", "AUTH"), d.migrate("k", "AUTH2", "u"),
                d.migrate("k", "KEYS", "k"),
                raw_call(d.source, "MIGRATE", "127.0.0.1", d.port, "k", "x", 1000),
                raw_call(d.source, "MIGRATE", "127.0.0.1", d.port, "k", 0, "x"),
                raw_call(d.source, "MIGRATE", "127.0.0.1", d.port, "k", 0),
                d.source.exists("k")]

    ours, theirs = replies(directions, run)
    assert ours == theirs
    assert ours[0] == ("error", "syntax error")


def test_io_errors(directions: list[Direction]) -> None:
    closed = free_port()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never answers
    silent_port = silent.getsockname()[1]

    def run(d: Direction) -> list[object]:
        d.source.set("k", "v")
        return [raw_call(d.source, "MIGRATE", "127.0.0.1", closed, "k", 0, 200),
                raw_call(d.source, "MIGRATE", "127.0.0.1", silent_port, "k", 0, 200),
                d.source.exists("k")]

    try:
        ours, theirs = replies(directions, run)
    finally:
        silent.close()
    assert ours == theirs
    # a refused connection fails Redis' first write: "writing", not "connecting"
    assert ours == [("error", "IOERR error or timeout writing to target instance"),
                    ("error", "IOERR error or timeout reading to target instance"), 1]


def test_other_clients_run_during_a_migrate(server: ServerProcess) -> None:
    """The event loop is not blocked while MIGRATE waits on a silent target."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    source, other = server.client(), server.client()
    try:
        source.set("k", "v")
        conn = source.connection_pool.get_connection()
        conn.send_command("MIGRATE", "127.0.0.1", silent.getsockname()[1], "k", 0, 700)
        assert other.ping()
        assert other.get("k") == b"v"
        with pytest.raises(redis.ResponseError, match="IOERR"):
            conn.read_response()
        source.connection_pool.release(conn)
    finally:
        silent.close()
        source.close()
        other.close()


def test_migrate_inside_multi_and_scripts(server: ServerProcess,
                                          redis_server: RedisServerProcess) -> None:
    """EXEC waits for the transfer; a script may not call MIGRATE (it cannot wait)."""
    ours, theirs = server.client(), redis_server.client()
    try:
        ours.flushall()
        theirs.flushall()
        ours.set("k", "v")
        pipe = ours.pipeline(transaction=True)
        pipe.execute_command("MIGRATE", "127.0.0.1", redis_server.port, "k", 0, 2000)
        pipe.exists("k")
        assert pipe.execute() == [b"OK", 1]  # EXISTS ran before the transfer completed
        assert ours.exists("k") == 0 and theirs.get("k") == b"v"
        with pytest.raises(redis.ResponseError, match="not allowed from script"):
            ours.eval("return redis.call('MIGRATE', ARGV[1], ARGV[2], 'k', 0, 1000)", 0,
                      "127.0.0.1", redis_server.port)
    finally:
        ours.close()
        theirs.close()


def test_auth_to_a_protected_target(start_server: object, server: ServerProcess,
                                    redis_server: RedisServerProcess) -> None:
    """AUTH and AUTH2 reach a jobcached that requires a password, from either server."""
    protected: ServerProcess = start_server("--requirepass", "pw")  # type: ignore[operator]
    target = protected.client(password="pw")
    ours, theirs = server.client(), redis_server.client()
    try:
        for source, name in ((ours, "a"), (theirs, "b")):
            source.set(name, name)
            assert raw_call(source, "MIGRATE", "127.0.0.1", protected.port, name, 0, 2000,
                            "AUTH", "wrong") == (
                "error", "Target instance replied with error: WRONGPASS invalid "
                         "username-password pair or user is disabled.")
            assert raw_call(source, "MIGRATE", "127.0.0.1", protected.port, name, 0, 2000,
                            "AUTH2", "default", "pw") == b"OK"
            assert target.get(name) == name.encode() and source.exists(name) == 0
    finally:
        for client in (target, ours, theirs):
            client.close()
