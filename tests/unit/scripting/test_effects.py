"""Scripts' and transactions' writes are propagated as their commands' effects (MULTI/EXEC
round several), never as the EVAL itself.

Driven through `dispatch.execute` with no event loop (a script then cannot be suspended), on a
ServerState whose replication backlog keeps records.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.commands.scripting import Scripting
from jobcached.config import Config
from jobcached.net.replies import NULL_ARRAY, ErrorReply, Simple
from jobcached.server.session import Session
from jobcached.server.state import ServerState


class Quiet:
    """A Connection that never writes: these tests read replies as values."""

    def close_after_reply(self) -> None: ...

    def abort(self) -> None: ...

    def push(self, value: Any, pubsub: bool = False) -> None: ...

    def query_buffer_bytes(self) -> int:
        return 0

    def output_buffer_bytes(self) -> int:
        return 0


@pytest.fixture
def session() -> Session:
    load_all()
    server = ServerState(Config(), clock=ManualClock(1_000_000))
    server.backlog.activate()
    return Session(server, Quiet(), "test", "", True)


def run(s: Session, *argv: str | int) -> Any:
    return execute(s, [str(a).encode() for a in argv])


def effects(s: Session) -> list[list[bytes]]:
    """The records so far, command names upper-cased (records keep the case a script used)."""
    return [[argv[0].upper(), *argv[1:]] for argv in s.server.backlog.since(0) or []]


def test_several_writes_propagate_as_multi_exec(session: Session) -> None:
    reply = run(session, "EVAL", "redis.call('set', KEYS[1], 'a') redis.call('incr', KEYS[2]) "
                "return redis.call('get', KEYS[1])", 2, "k1", "k2")
    assert reply == b"a"
    assert effects(session) == [[b"MULTI"], [b"SET", b"k1", b"a"], [b"INCR", b"k2"], [b"EXEC"]]


def test_one_write_propagates_alone_with_absolute_times(session: Session) -> None:
    assert run(session, "EVAL", "return redis.call('set', KEYS[1], 'v', 'EX', 10)", 1,
               "k") == Simple(b"OK")
    [record] = effects(session)
    assert record[:3] == [b"SET", b"k", b"v"]
    assert b"EX" not in record  # a relative TTL never reaches the log


def test_reads_and_failed_scripts_propagate_nothing(session: Session) -> None:
    run(session, "EVAL", "return redis.call('get', 'k')", 0)
    assert isinstance(run(session, "EVAL", "error('no')", 0), ErrorReply)
    run(session, "EVAL_RO", "return redis.call('set', 'k', 'v')", 0)
    assert effects(session) == []


def test_writes_before_an_error_still_propagate(session: Session) -> None:
    reply = run(session, "EVAL", "redis.call('set', 'k', 'v') error('late')", 0)
    assert isinstance(reply, ErrorReply)
    assert effects(session) == [[b"SET", b"k", b"v"]]
    assert run(session, "GET", "k") == b"v"


def test_watch_fails_when_a_script_changes_the_key(session: Session) -> None:
    other = Session(session.server, Quiet(), "other", "", True)
    run(other, "WATCH", "k")
    run(other, "MULTI")
    run(other, "GET", "k")
    run(session, "EVAL", "redis.call('set', 'k', 'v')", 0)
    assert run(other, "EXEC") is NULL_ARRAY


def test_the_real_backlog_is_back_after_a_script(session: Session) -> None:
    backlog = session.server.backlog
    run(session, "EVAL", "redis.call('set', 'k', 'v')", 0)
    run(session, "EVAL", "error('x')", 0)
    assert session.server.backlog is backlog
    assert isinstance(session.server.scripts, Scripting)


def test_info_inside_a_script_reads_the_real_backlog(session: Session) -> None:
    reply = run(session, "EVAL", "redis.call('set', 'k', 'v') "
                "return redis.call('info', 'replication')", 0)
    assert b"master_repl_offset:0" in reply


def test_a_transaction_propagates_as_multi_exec_and_a_single_write_alone(
        session: Session) -> None:
    for argv in (("MULTI",), ("SET", "a", "1"), ("GET", "a"), ("INCR", "n"), ("EXEC",)):
        run(session, *argv)
    assert effects(session) == [[b"MULTI"], [b"SET", b"a", b"1"], [b"INCR", b"n"], [b"EXEC"]]
    for argv in (("MULTI",), ("GET", "a"), ("SET", "b", "2"), ("EXEC",)):
        run(session, *argv)
    assert effects(session)[4:] == [[b"SET", b"b", b"2"]]


def test_a_script_inside_a_transaction_joins_its_group(session: Session) -> None:
    for argv in (("MULTI",), ("SET", "a", "1"), ("EVAL", "redis.call('SET', 'b', '2')", 0),
                 ("SET", "c", "3")):
        run(session, *argv)
    assert run(session, "EXEC") == [Simple(b"OK"), None, Simple(b"OK")]
    assert effects(session) == [[b"MULTI"], [b"SET", b"a", b"1"], [b"SET", b"b", b"2"],
                                [b"SET", b"c", b"3"], [b"EXEC"]]
