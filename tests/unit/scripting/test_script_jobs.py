"""A script's job writes: one durable wait for the script's reply, and a failing WAL.

Driven through `dispatch.execute` with no event loop, on a ServerState with a job engine and a
stand-in for `Durability` that records what waits and can be made to refuse job writes.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.errors import CommandError
from jobcached.jobs.engine import JobEngine
from jobcached.net.replies import Deferred, ErrorReply
from jobcached.server.session import Session
from jobcached.server.state import ServerState
from tests.unit.scripting.test_effects import Quiet


class FakeDurability:
    """What the server asks of `Durability`: replies held until "synced", and the check."""

    def __init__(self) -> None:
        self.failure: str | None = None
        self.held: list[tuple[Deferred, Any]] = []
        self.records_in_log = 0

    def append(self, body: bytes) -> None:
        self.records_in_log += 1

    def check_writable(self) -> None:
        if self.failure is not None:
            raise CommandError(f"job writes are refused: the write-ahead log failed "
                               f"({self.failure})", code="MISCONF")

    def reply(self, value: Any) -> Deferred:
        deferred = Deferred(pending=value)
        self.held.append((deferred, value))
        return deferred

    def sync(self) -> None:
        for deferred, value in self.held:
            deferred.resolve(value)
        self.held.clear()


@pytest.fixture
def session() -> Session:
    load_all()
    clock = ManualClock(1_000_000)
    server = ServerState(Config(), clock=clock)
    server.jobs = JobEngine(clock, sink=server.effects.job)
    server.effects.durability = FakeDurability()  # type: ignore[assignment]
    return Session(server, Quiet(), "test", "", True)


def run(s: Session, *argv: str | int) -> Any:
    return execute(s, [str(a).encode() for a in argv])


def wal(s: Session) -> FakeDurability:
    durability = s.server.effects.durability
    assert isinstance(durability, FakeDurability)
    return durability


def test_the_reply_waits_once_for_all_the_job_writes(session: Session) -> None:
    reply = run(session, "EVAL", "redis.call('SET', 'k', 'v') "
                "local a = redis.call('JOB.PUSH', 'q', 'x') "
                "local b = redis.call('JOB.PUSH', 'q', 'y') return {a, b}", 0)
    assert isinstance(reply, Deferred) and not reply.done
    # The commands inside took their values at once; the script's own reply is what waits.
    assert [deferred for deferred, _ in wal(session).held][-1] is reply
    wal(session).sync()
    ids = [job_id.decode() for job_id in reply.value]
    assert [session.server.jobs.jobs[i].payload for i in ids] == [b"x", b"y"]  # type: ignore


def test_a_script_that_wrote_then_failed_still_waits(session: Session) -> None:
    reply = run(session, "EVAL", "redis.call('JOB.PUSH', 'q', 'x') "
                "redis.call('JOB.ACK', 'nope', 'token')", 0)
    assert isinstance(reply, Deferred) and not reply.done  # the push stands: it must be durable
    wal(session).sync()
    assert isinstance(reply.value, ErrorReply) and "no such job nope" in reply.value.text


def test_a_script_without_job_writes_replies_at_once(session: Session) -> None:
    assert run(session, "EVAL", "redis.call('SET', 'k', 'v') "
               "return redis.call('QUEUE.STATS', 'q')[2]", 0) == 0
    assert not wal(session).held


def test_a_failing_wal_is_an_error_pcall_catches(session: Session) -> None:
    wal(session).failure = "disk full"
    reply = run(session, "EVAL", "redis.call('SET', 'before', '1') "
                "local r = redis.pcall('JOB.PUSH', 'q', 'x') return r.err", 0)
    # Nothing was logged, so nothing to wait for: the reply is at once.
    assert reply == b"MISCONF job writes are refused: the write-ahead log failed (disk full)"
    assert run(session, "GET", "before") == b"1"


def test_an_uncaught_wal_failure_keeps_earlier_cache_writes(session: Session) -> None:
    wal(session).failure = "disk full"
    reply = run(session, "EVAL", "redis.call('SET', 'before', '2') "
                "redis.call('JOB.PUSH', 'q', 'x') redis.call('SET', 'after', '2')", 0)
    assert isinstance(reply, ErrorReply)
    assert reply.text.startswith("MISCONF job writes are refused")
    assert run(session, "MGET", "before", "after") == [b"2", None]
    assert not session.server.jobs.jobs  # type: ignore[union-attr]
