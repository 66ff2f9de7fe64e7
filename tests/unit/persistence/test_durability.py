"""Durability: replies wait for the log, a failing disk gives errors (never +OK), refuses
further job writes, and heals once the disk works again."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobcached.clock import ManualClock
from jobcached.errors import CommandError
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.records import decode_record
from jobcached.net.replies import Deferred
from jobcached.persistence.durability import (
    COMPACT_GARBAGE_RATIO,
    COMPACT_MIN_RECORDS,
    Durability,
)
from jobcached.persistence.wal import RealFs, Wal


class FlakyFs(RealFs):
    """The real file system, until a test says the disk is full."""

    def __init__(self) -> None:
        self.full = False

    def write(self, fd: int, data: bytes) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        if self.full:
            raise OSError(errno.EIO, "Input/output error")
        super().fsync(fd)


async def settle(deferred: object) -> object:
    for _ in range(1000):
        if not isinstance(deferred, Deferred) or deferred.done:
            break
        await asyncio.sleep(0.001)
    return deferred.value if isinstance(deferred, Deferred) else deferred


def open_engine(path: Path, fs: RealFs, policy: str) -> tuple[JobEngine, Durability]:
    wal = Wal(str(path), fs=fs)
    engine = JobEngine(ManualClock(), rng=random.Random(1))
    engine.replay(decode_record(b) for b in wal.replay())
    wal.open_for_append()
    durability = Durability(wal, policy, asyncio.get_running_loop())
    engine.sink = durability.append
    return engine, durability


def test_disk_full_holds_the_reply_refuses_more_then_heals(tmp_path: Path) -> None:
    """A push whose record the disk refused is not answered with an error (it exists in
    memory, and a client that retried would create it twice): its reply waits until the
    log has it. Meanwhile job writes are refused before they change anything, and healing
    appends only what is missing."""
    async def scenario() -> None:
        fs = FlakyFs()
        engine, durability = open_engine(tmp_path, fs, "always")
        engine.push("q", b"kept")
        assert await settle(durability.reply(b"ok")) == b"ok"

        fs.full = True
        engine.push("q", b"held")
        held = durability.reply(b"ok")
        await settle(held)
        assert isinstance(held, Deferred) and not held.done
        assert durability.held_records() == 1
        with pytest.raises(CommandError) as refused:
            durability.check_writable()
        assert refused.value.code == "MISCONF"
        assert not await durability.recover()  # the disk is still full
        assert not held.done

        fs.full = False
        assert await durability.recover()
        assert held.done and held.value == b"ok" and durability.held_records() == 0
        durability.check_writable()
        engine.push("q", b"after")
        assert await settle(durability.reply(b"ok")) == b"ok"
        await durability.drain()
        durability.close()

        restarted, again = open_engine(tmp_path, RealFs(), "always")
        assert [j.payload for j in restarted.jobs.values()] == [b"kept", b"held", b"after"]
        again.close()

    asyncio.run(scenario())


def test_records_made_while_the_log_fails_are_appended_in_order(tmp_path: Path) -> None:
    """Records that come while the log fails (a lease expiring, say) are held behind the
    failed batch and written after it: replay sees the push before its lease."""
    async def scenario() -> None:
        fs = FlakyFs()
        engine, durability = open_engine(tmp_path, fs, "everysec")
        fs.full = True
        job_id, _ = engine.push("q", b"x")
        await settle(durability.reply(None))
        [job] = engine.fetch(["q"])  # the engine's own work goes on (timers do this)
        await asyncio.sleep(0.01)
        assert durability.held_records() == 2
        fs.full = False
        assert await durability.recover()
        await durability.drain()
        durability.close()
        restarted, again = open_engine(tmp_path, RealFs(), "everysec")
        assert restarted.jobs[job_id].token == job.token
        again.close()

    asyncio.run(scenario())


def test_a_stop_before_the_disk_heals_loses_only_unanswered_changes(tmp_path: Path) -> None:
    async def scenario() -> None:
        fs = FlakyFs()
        engine, durability = open_engine(tmp_path, fs, "always")
        engine.push("q", b"kept")
        await settle(durability.reply(None))
        fs.full = True
        engine.push("q", b"never answered")
        unanswered = durability.reply(b"ok")
        await durability.drain()
        durability.close()
        assert isinstance(unanswered, Deferred) and not unanswered.done
        restarted, again = open_engine(tmp_path, RealFs(), "always")
        assert [j.payload for j in restarted.jobs.values()] == [b"kept"]
        again.close()

    asyncio.run(scenario())


def test_compaction_runs_in_a_child_while_writes_go_on(tmp_path: Path) -> None:
    """The snapshot is the state at the fork; jobs pushed while the child writes land after
    the cut. After a restart every job is there once, from a base and one segment."""

    async def scenario() -> None:
        engine, durability = open_engine(tmp_path, RealFs(), "everysec")
        for i in range(300):
            engine.push("q", b"before-%d" % i)
        parent = os.getpid()

        def slow_snapshot() -> Iterator[dict[str, Any]]:
            assert os.getpid() != parent  # taken in the child, from its frozen copy
            time.sleep(0.3)
            yield from engine.snapshot()

        compaction = asyncio.ensure_future(durability.compact(slow_snapshot))
        await asyncio.sleep(0.05)  # the loop is free while the child writes
        for i in range(50):
            engine.push("q", b"during-%d" % i)
        assert not compaction.done()
        assert await compaction
        assert durability.records_in_log == 350
        engine.push("q", b"after")
        await durability.drain()
        durability.close()

        names = sorted(os.listdir(tmp_path))
        assert [n.rsplit(".", 1)[1] for n in names] == ["base", "log"]
        restarted, again = open_engine(tmp_path, RealFs(), "always")
        payloads = [j.payload for j in restarted.jobs.values()]
        assert payloads == ([b"before-%d" % i for i in range(300)]
                            + [b"during-%d" % i for i in range(50)] + [b"after"])
        again.close()

    asyncio.run(scenario())


def test_failed_compaction_child_leaves_the_log_as_it_was(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        engine, durability = open_engine(tmp_path, RealFs(), "always")
        engine.push("q", b"kept")

        def broken_snapshot() -> Iterator[dict[str, Any]]:
            raise RuntimeError("no snapshot today")
            yield {}

        assert not await durability.compact(broken_snapshot)
        engine.push("q", b"after")
        await durability.drain()
        durability.close()
        assert not [n for n in os.listdir(tmp_path) if not n.endswith(".log")]
        restarted, again = open_engine(tmp_path, RealFs(), "always")
        assert [j.payload for j in restarted.jobs.values()] == [b"kept", b"after"]
        again.close()

    asyncio.run(scenario())
    assert [r.error for r in caplog.records  # type: ignore[attr-defined]
            if r.msg == "WAL compaction failed"] == ["no snapshot today"]


def test_compaction_waits_for_a_big_log_mostly_garbage(tmp_path: Path) -> None:
    async def scenario() -> None:
        _, durability = open_engine(tmp_path, RealFs(), "no")
        durability.records_in_log = COMPACT_MIN_RECORDS - 1
        assert not durability.should_compact(1)  # small: never worth a fork
        durability.records_in_log = COMPACT_MIN_RECORDS * 2
        assert durability.should_compact(COMPACT_MIN_RECORDS * 2 // COMPACT_GARBAGE_RATIO - 1)
        assert not durability.should_compact(COMPACT_MIN_RECORDS * 2 // COMPACT_GARBAGE_RATIO)
        durability.close()

    asyncio.run(scenario())


def test_a_cancelled_compaction_kills_its_child(tmp_path: Path) -> None:
    """The server stopping mid-compaction cancels it: the child is killed, not left to run,
    and the log is as it was."""

    async def scenario() -> None:
        engine, durability = open_engine(tmp_path, RealFs(), "always")
        engine.push("q", b"kept")

        def endless_snapshot() -> Iterator[dict[str, Any]]:
            time.sleep(60)
            yield from engine.snapshot()

        compaction = asyncio.ensure_future(durability.compact(endless_snapshot))
        await asyncio.sleep(0.2)
        child = durability._child
        assert child is not None
        started = time.monotonic()
        compaction.cancel()
        with pytest.raises(asyncio.CancelledError):
            await compaction
        while True:  # killed, then reaped by the thread that waited for its report
            try:
                os.kill(child.pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() - started < 5, "the child was left running"
            await asyncio.sleep(0.01)
        durability.close()
        assert [j.payload for j in open_engine(tmp_path, RealFs(), "always")[0].jobs.values()
                ] == [b"kept"]

    asyncio.run(scenario())
