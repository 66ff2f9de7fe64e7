"""The command table's durability policy (commands/durable.py), applied by the dispatcher:
which commands it covers, a refusal before anything changes, and a reply held only when the
command logged job records."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import Flag, load_all, walk
from jobcached.config import Config
from jobcached.errors import CommandError
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.model import Job
from jobcached.net.replies import Deferred, ErrorReply
from jobcached.server.session import Session
from jobcached.server.state import ServerState

JOB_GROUPS = {"job", "queue", "dlq", "cron", "batch"}


class HeldDurability:
    """Holds every reply until `sync`; refuses writes while `failure` is set (the WAL's
    error, as `Durability.failure`)."""

    def __init__(self) -> None:
        self.failure: str | None = None
        self.held: list[Deferred] = []

    def append(self, body: bytes) -> None:
        pass

    def check_writable(self) -> None:
        if self.failure is not None:
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
    durability.failure = "test"
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


class ArchiveOf:
    """The archive's lookup of finished jobs by id, from a dict (no SQLite)."""

    def __init__(self, jobs: dict[str, Job]) -> None:
        self.jobs = jobs

    async def get_many(self, ids: list[str]) -> dict[str, Job]:
        return {job_id: self.jobs[job_id] for job_id in ids if job_id in self.jobs}


def test_a_reply_that_waits_for_the_archive_also_waits_for_its_records() -> None:
    """JOB.PUSH ... AFTER a parent only the archive holds: the push happens once the archive
    answers (a continuation), and its reply still waits for the record to be durable."""

    async def scenario() -> None:
        s, durability = session()
        engine = s.server.jobs
        assert engine is not None
        parent_id, _ = engine.push("p", b"x")
        [job] = engine.fetch(["p"], 1, None, "w")
        engine.ack(job.id, job.token)
        engine.archived([(job, job.finished_ms)])
        assert parent_id not in engine.jobs
        s.server.archiver = SimpleNamespace(archive=ArchiveOf({parent_id: job}))  # type: ignore[assignment]
        reply = run(s, "JOB.PUSH", "q", "child", "AFTER", "1", parent_id)
        assert isinstance(reply, Deferred)
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(engine.jobs) == 1 and not reply.done  # pushed, not yet durable
        [held] = durability.held
        held.resolve(held.pending)
        assert reply.done and reply.value == next(iter(engine.jobs)).encode()

    asyncio.run(scenario())
