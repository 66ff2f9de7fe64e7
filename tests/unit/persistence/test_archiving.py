"""The archiver with a fake clock and a real SQLite file: hand-over, retention purge, failure."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import pytest

from jobcached.clock import ManualClock
from jobcached.config import Config
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.model import State
from jobcached.jobs.records import decode_record
from jobcached.persistence.archiving import ARCHIVE_FILE, Archiver

HOT_MS = 1_000
KEEP_MS = 10_000


def setup(tmp_path: Path) -> tuple[Archiver, JobEngine, ManualClock, list[dict]]:
    clock = ManualClock()
    records: list[dict] = []
    engine = JobEngine(clock, rng=random.Random(1),
                       sink=lambda body: records.append(decode_record(body)))
    config = Config(dir=str(tmp_path), job_hot_retention=HOT_MS,
                    job_archive_retention=KEEP_MS)
    return Archiver(config, engine, clock), engine, clock, records


def finish(engine: JobEngine, queue: str = "q") -> str:
    job_id, _ = engine.push(queue, b"x")
    [job] = engine.fetch([queue])
    engine.ack(job_id, job.token, b"result")
    return job_id


def test_handover_after_hot_retention_then_purge(tmp_path: Path) -> None:
    async def scenario() -> None:
        archiver, engine, clock, records = setup(tmp_path)
        await archiver.open()
        job_id = finish(engine)
        running, _ = engine.push("q", b"still running")
        engine.fetch(["q"])
        await archiver.step()
        assert job_id in engine.jobs  # not yet past job-hot-retention
        clock.advance(HOT_MS + 1)
        await archiver.step()
        assert job_id not in engine.jobs and running in engine.jobs
        assert archiver.stats.moved == 1 and records[-1] == {"op": "archive", "ids": (job_id,)}
        assert archiver.archive is not None
        stored = await archiver.archive.get(job_id)
        assert stored is not None and stored.result == b"result"
        clock.advance(KEEP_MS)
        await archiver.step()
        assert archiver.stats.purged == 1
        assert await archiver.archive.get(job_id) is None
        await archiver.close()

    asyncio.run(scenario())


def test_ended_batches_are_dropped_after_archive_retention(tmp_path: Path) -> None:
    async def scenario() -> None:
        archiver, engine, clock, _ = setup(tmp_path)
        await archiver.open()
        batch = engine.batches.new(None, None)
        engine.push("q", b"member", PushOptions(batch=batch))
        engine.batches.close(batch)
        [job] = engine.fetch(["q"])
        engine.ack(job.id, job.token)
        clock.advance(HOT_MS + 1)
        await archiver.step()
        assert engine.batches.get(batch) is not None  # ended, but not for long
        clock.advance(KEEP_MS)
        await archiver.step()
        assert engine.batches.get(batch) is None
        await archiver.close()

    asyncio.run(scenario())


def test_sqlite_failure_keeps_jobs_in_memory(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        (tmp_path / ARCHIVE_FILE).mkdir()  # SQLite cannot open a directory
        archiver, engine, clock, _ = setup(tmp_path)
        await archiver.open()
        assert archiver.archive is None
        job_id = finish(engine)
        clock.advance(HOT_MS + 1)
        for _ in range(3):
            await archiver.step()
        assert engine.get(job_id).state is State.SUCCEEDED  # type: ignore[union-attr]
        assert archiver.stats.errors == 4 and "unable to open" in archiver.stats.last_error
        (tmp_path / ARCHIVE_FILE).rmdir()  # the operator fixes it: the next step recovers
        await archiver.step()
        assert job_id not in engine.jobs and archiver.stats.moved == 1
        await archiver.close()

    with caplog.at_level(logging.INFO, logger="jobcached.archive"):
        asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("job archive failed: finished jobs stay in memory") == 1
    assert "job archive works again" in messages
