"""Readiness (commands/blocking.py): a container operation only marks a key ready through the
keyspace hook, and the dispatcher serves it after the handler, so the command's own effect is
logged before the pops it makes possible, as in Redis."""

from __future__ import annotations

from typing import Any

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.net.replies import Deferred
from jobcached.server.session import Session
from jobcached.server.state import ServerState


class Quiet:
    def write(self, data: bytes) -> None:
        pass


def server_and_sessions(count: int) -> tuple[ServerState, list[Session]]:
    load_all()
    server = ServerState(Config(), clock=ManualClock(1_000_000))
    server.backlog.activate()  # keep the effects, as with a follower attached
    conn: Any = Quiet()
    return server, [Session(server, conn, f"c{i}", "", True) for i in range(count)]


def run(s: Session, *argv: bytes) -> Any:
    return execute(s, list(argv))


def test_no_hook_runs_until_a_client_blocks() -> None:
    server, (pusher, waiter) = server_and_sessions(2)
    run(pusher, b"LPUSH", b"q", b"a")
    run(pusher, b"MULTI")
    run(pusher, b"LPUSH", b"q", b"b")
    assert run(pusher, b"EXEC") == [2]  # EXEC uses the registry, but nobody blocked yet
    assert all(ks.on_ready is None for ks in server.dbs)
    assert run(waiter, b"BLPOP", b"empty", b"0").done is False
    assert all(ks.on_ready is not None for ks in server.dbs)


def test_a_push_is_logged_before_the_pop_it_serves() -> None:
    server, (pusher, waiter) = server_and_sessions(2)
    reply = run(waiter, b"BLPOP", b"q", b"0")
    assert isinstance(reply, Deferred)
    assert run(pusher, b"LPUSH", b"q", b"a", b"b") == 2
    assert reply.done
    assert reply.value == [b"q", b"b"]
    assert server.backlog.last(2) == [[b"LPUSH", b"q", b"a", b"b"], [b"LPOP", b"q"]]
    assert server.blocked_keys is not None
    assert not server.blocked_keys.ready


def test_a_zadd_serves_bzpopmin_and_a_store_serves_the_next_waiter() -> None:
    server, (writer, first, second) = server_and_sessions(3)
    one = run(first, b"BZPOPMIN", b"z", b"0")
    two = run(second, b"BZPOPMAX", b"z", b"0")
    run(writer, b"ZADD", b"z", b"1", b"a")
    assert one.value == [b"z", b"a", 1.0]
    assert not two.done
    run(writer, b"ZADD", b"src", b"5", b"m", b"7", b"n")
    assert run(writer, b"ZRANGESTORE", b"z", b"src", b"0", b"-1") == 2
    assert two.value == [b"z", b"n", 7.0]
    assert server.backlog.last(2) == [[b"ZRANGESTORE", b"z", b"src", b"0", b"-1"],
                                      [b"ZPOPMAX", b"z"]]


def test_keys_filled_inside_exec_are_served_after_it() -> None:
    server, (writer, waiter) = server_and_sessions(2)
    reply = run(waiter, b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT", b"0")
    run(writer, b"MULTI")
    run(writer, b"RPUSH", b"src", b"x")
    run(writer, b"LLEN", b"src")
    assert run(writer, b"EXEC") == [1, 1]  # LLEN ran before the waiter took the element
    assert reply.value == b"x"
    assert server.backlog.last(2) == [[b"RPUSH", b"src", b"x"],
                                      [b"LMOVE", b"src", b"dst", b"LEFT", b"RIGHT"]]
