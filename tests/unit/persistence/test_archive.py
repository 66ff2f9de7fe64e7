"""Archive: round trips, idempotent stores, cursor pages, bounded purges, the SQLite file itself.

No pytest-asyncio here: each test runs its body with `asyncio.run` on a fresh archive file.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from jobcached.jobs.model import Job, RetryPolicy, State
from jobcached.persistence.archive import Archive


def make_job(i: int, *, queue: str = "q", state: State = State.SUCCEEDED,
             finished_ms: int | None = None) -> Job:
    """A finished job whose id sorts like a ULID: zero-padded to 26 characters."""
    return Job(id=f"{i:026d}", queue=queue, type=queue, payload=b"p", state=state,
               finished_ms=1_000 + i if finished_ms is None else finished_ms)


def run(path: Path, body: Callable[[Archive], Awaitable[Any]]) -> Any:
    """Open an archive on `path`, run `body` with it, and always close it."""
    async def main() -> Any:
        archive = Archive(str(path))
        await archive.open()
        try:
            return await body(archive)
        finally:
            await archive.close()
    return asyncio.run(main())


def ids(jobs: list[Job]) -> list[int]:
    return [int(job.id) for job in jobs]


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    job = Job(id="01J0000000000000000000000A", queue="mail", type="send", payload=b"\x00\xffbody",
              state=State.DEAD, priority=-3, attempt=4,
              retry=RetryPolicy(retries=3, backoff_ms=(100, 5_000)), timeout_ms=9_000,
              run_at_ms=11, created_ms=10, enqueued_ms=12, started_ms=13, finished_ms=14,
              errors=[{"message": "boom", "trace": "line 1"}, {"message": "again"}],
              result=b"\x01partial", key="idem-1", key_expires_ms=99, meta={"tenant": "acme"},
              token="tok", deadline_ms=15, worker="w-1", reason="gave up", retry_base=1)

    async def body(archive: Archive) -> None:
        await archive.store([job])
        got = await archive.get(job.id)
        assert got is not None
        assert got.to_record() == job.to_record()
        assert got.state is State.DEAD and got.retry == job.retry
        assert await archive.get("01J0000000000000000000000B") is None

    run(tmp_path / "a.db", body)


def test_store_twice_is_idempotent_and_replaces(tmp_path: Path) -> None:
    async def body(archive: Archive) -> None:
        jobs = [make_job(i) for i in range(5)]
        await archive.store(jobs)
        await archive.store(jobs)
        assert await archive.count() == 5
        await archive.store([make_job(2, state=State.CANCELED)])
        assert await archive.count() == 5
        assert ids(await archive.page("", None, None, State.CANCELED, 10)) == [2]
        await archive.store([])

    run(tmp_path / "a.db", body)


def test_failed_store_keeps_nothing_and_archive_stays_usable(tmp_path: Path) -> None:
    async def body(archive: Archive) -> None:
        bad = make_job(3)
        bad.queue = None  # type: ignore[assignment]  # NOT NULL fails mid-batch
        with pytest.raises(sqlite3.IntegrityError):
            await archive.store([make_job(1), make_job(2), bad])
        assert await archive.count() == 0
        await archive.store([make_job(1)])
        assert await archive.count() == 1

    run(tmp_path / "a.db", body)


def test_concurrent_writers_do_not_share_a_transaction(tmp_path: Path) -> None:
    async def body(archive: Archive) -> None:
        await asyncio.gather(*(archive.store([make_job(i)]) for i in range(20)),
                             archive.delete([make_job(0).id]), archive.purge(0, 10))
        assert await archive.count() in (19, 20)  # the delete may run before or after store 0

    run(tmp_path / "a.db", body)


def test_get_many_chunks_past_the_variable_limit(tmp_path: Path) -> None:
    async def body(archive: Archive) -> None:
        await archive.store([make_job(i) for i in range(1_200)])
        wanted = [make_job(i).id for i in range(1_205)]  # five unknown
        found = await archive.get_many(wanted)
        assert sorted(found) == wanted[:1_200]
        assert all(job.id == job_id for job_id, job in found.items())
        assert await archive.get_many([]) == {}

    run(tmp_path / "a.db", body)


def test_page_is_an_id_ordered_cursor_with_filters(tmp_path: Path) -> None:
    jobs = [make_job(i, queue="a" if i % 2 else "b",
                     state=State.DEAD if i % 3 == 0 else State.SUCCEEDED) for i in range(1, 13)]
    random.Random(7).shuffle(jobs)

    async def body(archive: Archive) -> None:
        await archive.store(jobs)
        first = await archive.page("0", None, None, None, 5)
        assert ids(first) == [1, 2, 3, 4, 5]
        assert ids(await archive.page("", None, None, None, 5)) == [1, 2, 3, 4, 5]
        second = await archive.page(first[-1].id, None, None, None, 5)
        assert ids(second) == [6, 7, 8, 9, 10]
        assert ids(await archive.page(second[-1].id, None, None, None, 5)) == [11, 12]
        assert await archive.page(make_job(12).id, None, None, None, 5) == []
        assert ids(await archive.page("", make_job(4).id, None, None, 10)) == [1, 2, 3, 4]
        assert ids(await archive.page(make_job(4).id, make_job(8).id, None, None, 10)) \
            == [5, 6, 7, 8]
        assert ids(await archive.page("", None, "a", None, 10)) == [1, 3, 5, 7, 9, 11]
        assert ids(await archive.page("", None, None, State.DEAD, 10)) == [3, 6, 9, 12]
        assert ids(await archive.page("", None, "b", State.DEAD, 10)) == [6, 12]
        assert ids(await archive.page(make_job(3).id, None, "a", State.DEAD, 10)) == [9]
        assert await archive.page("", None, "nope", None, 10) == []
        assert await archive.page("", None, None, None, 0) == []

    run(tmp_path / "a.db", body)


def test_delete_counts_only_archived_jobs(tmp_path: Path) -> None:
    async def body(archive: Archive) -> None:
        await archive.store([make_job(i) for i in range(4)])
        assert await archive.delete([make_job(1).id, make_job(3).id, "unknown"]) == 2
        assert await archive.delete([make_job(1).id]) == 0
        assert await archive.delete([]) == 0
        assert ids(await archive.page("", None, None, None, 10)) == [0, 2]

    run(tmp_path / "a.db", body)


def test_purge_is_bounded_by_limit_time_queue_and_state(tmp_path: Path) -> None:
    # finished_ms runs against id order, so "oldest first" is visible in what remains
    jobs = [make_job(i, finished_ms=100 - i, queue="a" if i < 6 else "b",
                     state=State.DEAD if i % 2 else State.SUCCEEDED) for i in range(10)]

    async def body(archive: Archive) -> None:
        await archive.store(jobs)
        assert await archive.purge(0, 100) == 0  # nothing finished that early
        assert await archive.purge(96, 2) == 2  # oldest first: 9 (91) and 8 (92)
        assert ids(await archive.page("", None, None, None, 20)) == list(range(8))
        assert await archive.purge(95, 100) == 2  # the rest before 95: 7 (93) and 6 (94)
        assert await archive.purge(1_000, 100, state=State.DEAD) == 3  # 5, 3, 1
        assert await archive.purge(1_000, 100, queue="b") == 0
        assert await archive.purge(1_000, 1, queue="a", state=State.SUCCEEDED) == 1  # 4
        assert ids(await archive.page("", None, None, None, 20)) == [0, 2]
        assert await archive.purge(1_000, 0) == 0

    run(tmp_path / "a.db", body)


def test_reopening_the_file_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "a.db"

    async def fill(archive: Archive) -> None:
        await archive.store([make_job(i) for i in range(3)])

    async def check(archive: Archive) -> None:
        assert await archive.count() == 3
        got = await archive.get(make_job(1).id)
        assert got is not None and got.to_record() == make_job(1).to_record()

    run(path, fill)
    run(path, check)


def test_file_is_in_wal_mode_with_a_layout_version(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    run(path, Archive.count)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (1,)


def test_a_newer_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 2")
    archive = Archive(str(path))
    with pytest.raises(RuntimeError, match="layout version 2"):
        asyncio.run(archive.open())
    with pytest.raises(RuntimeError, match="not open"):
        asyncio.run(archive.count())


def test_methods_before_open_raise(tmp_path: Path) -> None:
    archive = Archive(str(tmp_path / "a.db"))
    calls = [archive.store([make_job(1)]), archive.get("x"), archive.get_many(["x"]),
             archive.page("", None, None, None, 1), archive.delete(["x"]),
             archive.purge(1, 1), archive.count()]
    for call in calls:
        with pytest.raises(RuntimeError, match=r"not open: call open\(\) first"):
            asyncio.run(call)

    async def open_twice_then_close_twice() -> None:
        await archive.open()
        with pytest.raises(RuntimeError, match="already open"):
            await archive.open()
        await archive.close()
        await archive.close()
        with pytest.raises(RuntimeError, match="not open"):
            await archive.count()

    asyncio.run(open_twice_then_close_twice())
