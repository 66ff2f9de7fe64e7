"""`queues.in_slices`: a long purge steps one slice per loop turn and replies when done; a log
that starts refusing writes in the middle stops it with -MISCONF, keeping the slices done."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from jobcached.clock import ManualClock
from jobcached.commands.queues import in_slices
from jobcached.errors import CommandError
from jobcached.jobs import purge as purges
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.model import State
from jobcached.net.replies import Deferred, ErrorReply

JOBS = 5 * purges.PURGE_SLICE_JOBS


class FakeEffects:
    """What `in_slices` reads of the server: the job-writes check, failing after `ok` calls."""

    def __init__(self, ok: int) -> None:
        self.ok = ok

    def check_writable(self) -> None:
        if self.ok == 0:
            raise CommandError("job writes are refused: the write-ahead log failed (test)",
                               code="MISCONF")
        self.ok -= 1


def purge_in_slices(ok_checks: int) -> tuple[Any, JobEngine, list[int]]:
    engine = JobEngine(ManualClock())
    for _ in range(JOBS):
        engine.push("q", b"x")
    server = SimpleNamespace(effects=FakeEffects(ok_checks), background_tasks=set())
    session: Any = SimpleNamespace(multi=None, server=server)
    seen: list[int] = []

    async def run() -> Any:
        reply = in_slices(session, purges.queue_purge(engine, "q"), lambda n: n)
        assert isinstance(reply, Deferred)
        while not reply.done:
            seen.append(engine.queues["q"].counts[State.QUEUED])
            await asyncio.sleep(0)
        return reply.value

    return asyncio.run(run()), engine, seen


def test_a_purge_replies_when_its_last_slice_is_done_and_yields_in_between() -> None:
    value, engine, seen = purge_in_slices(ok_checks=100)
    assert value == JOBS and not engine.jobs
    assert any(0 < n < JOBS for n in seen)


def test_a_log_failure_mid_purge_stops_it_with_misconf() -> None:
    value, engine, _ = purge_in_slices(ok_checks=2)
    assert isinstance(value, ErrorReply) and value.text.startswith("MISCONF")
    assert len(engine.jobs) == JOBS - 3 * purges.PURGE_SLICE_JOBS  # the first slice and 2 more
