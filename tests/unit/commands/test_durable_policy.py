"""The command table's durability policy (commands/durable.py), applied by the dispatcher:
which commands it covers, a refusal before anything changes, and a reply held only when the
command logged job records."""

from __future__ import annotations

from typing import Any

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import Flag, load_all, walk
from jobcached.config import Config
from jobcached.errors import CommandError
from jobcached.jobs.engine import JobEngine
from jobcached.net.replies import Deferred, ErrorReply
from jobcached.server.session import Session
from jobcached.server.state import ServerState

JOB_GROUPS = {"job", "queue", "dlq", "cron", "batch"}


class HeldDurability:
    """Holds every reply until `sync`; refuses writes while `failing`."""

    def __init__(self) -> None:
        self.failing = False
        self.held: list[Deferred] = []

    def append(self, body: bytes) -> None:
        pass

    def check_writable(self) -> None:
        if self.failing:
            raise CommandError("job writes are refused: the write-ahead log failed (test)",
                               code="MISCONF")

    def reply(self, value: Any) -> Deferred:
        deferred = Deferred(pending=value)
        self.held.append(deferred)
        return deferred


class Quiet:
    def write(self, data: bytes) -> None:
        pass


def session() -> tuple[Session, HeldDurability]:
    load_all()
    clock = ManualClock(1_000_000)
    server = ServerState(Config(), clock=clock)
    server.jobs = JobEngine(clock, sink=server.effects.job)
    durability = HeldDurability()
    server.effects.durability = durability  # type: ignore[assignment]
    return Session(server, Quiet(), "test", "", True), durability  # type: ignore[arg-type]


def run(s: Session, *argv: str) -> Any:
    return execute(s, [a.encode() for a in argv])


def test_every_job_write_and_only_job_writes_are_durable() -> None:
    load_all()
    for cmd in walk():
        writes_jobs = cmd.group in JOB_GROUPS and bool(cmd.flags & Flag.WRITE)
        assert cmd.durable == writes_jobs, cmd.fullname


def test_a_failing_log_refuses_the_write_before_it_changes_anything() -> None:
    s, durability = session()
    durability.failing = True
    reply = run(s, "JOB.PUSH", "q", "x")
    assert isinstance(reply, ErrorReply) and reply.text.startswith("MISCONF ")
    assert s.server.jobs is not None and not s.server.jobs.jobs
    assert s.server.effects.job_records == 0


def test_a_reply_waits_only_when_the_command_logged_records() -> None:
    s, durability = session()
    pushed = run(s, "JOB.PUSH", "q", "x")
    assert isinstance(pushed, Deferred) and not pushed.done and len(durability.held) == 1
    shown = run(s, "QUEUE.LIMIT", "q")  # only shows the limits: nothing logged, no wait
    assert not isinstance(shown, Deferred)
    assert len(durability.held) == 1
