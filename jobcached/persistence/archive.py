"""The results archive: finished jobs (succeeded, dead, canceled) kept in SQLite.

The engine keeps finished jobs in memory for a retention, then hands them here in batches, so
`JOB.GET` can still answer after the hot set has dropped them. This module only stores and returns
`Job` objects: it knows nothing about sockets, commands or the engine.

Layout: one table, keyed by job id (ULIDs sort by creation time, so `ORDER BY id` is a stable
cursor), with the columns the listings filter on copied out of the record. The record itself is
`Job.to_record()` as msgpack: the job layout of `jobs/records.py` (JOB), without a version of its
own, so a change of that layout (a new put/restore record version there) needs a migration here
too. `PRAGMA user_version` holds SCHEMA_VERSION; a layout change bumps it and adds a migration
step to `open()`.

The database runs in WAL mode with `synchronous=FULL`: readers never block the writer, and a
commit is on disk before the job log records that the jobs left memory (one fsync per batch of
jobs, off the hot path), so a power cut can never lose a job that was handed over.

SQLite errors propagate unchanged; the caller logs them, counts them and keeps the jobs in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiosqlite
import msgpack

from jobcached.jobs.model import Job, State

#: The table layout this module reads and writes (stored as `PRAGMA user_version`).
SCHEMA_VERSION = 1
#: Ids per `IN (...)` query: well under SQLite's bound-variable limit (999 before 3.32).
IN_CHUNK = 500

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, queue TEXT NOT NULL,"
    " state TEXT NOT NULL, finished INTEGER NOT NULL, record BLOB NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (queue, id)",
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id)",
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


class Archive:
    """Finished jobs in one SQLite file, driven through aiosqlite's worker thread."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        # One connection means one transaction at a time: without this, a second writer's
        # statements would join (and be committed or rolled back with) the first one's.
        self._write_lock = asyncio.Lock()
        #: archived jobs per (queue, state value), kept in step with the table (each write
        #: says which rows it added or removed): INFO and QUEUE.STATS add them to the jobs in
        #: memory, so a queue's succeeded count does not drop when its jobs move here
        self.counts: Counter[tuple[str, str]] = Counter()

    async def open(self) -> None:
        """Connect, set the pragmas and create the schema on a new file."""
        if self._db is not None:
            raise RuntimeError(f"archive {self._path} is already open")
        # isolation_level=None: no implicit transactions; `_transaction` says where they are.
        db = await aiosqlite.connect(self._path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            [(version,)] = await db.execute_fetchall("PRAGMA user_version")
            if version == 0:
                await db.execute("BEGIN IMMEDIATE")  # DDL is transactional in SQLite
                for statement in _SCHEMA:
                    await db.execute(statement)
                await db.commit()
            elif version != SCHEMA_VERSION:
                raise RuntimeError(f"archive {self._path} has layout version {version}; "
                                   f"this build reads version {SCHEMA_VERSION}")
            rows = await db.execute_fetchall(
                "SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state")
        except BaseException:
            await db.close()
            raise
        self.counts = Counter({(queue, state): count for queue, state, count in rows})
        self._db = db

    def archived(self, queue: str) -> dict[str, int]:
        """How many of `queue`'s jobs are archived, by state value (absent: none)."""
        return {state: count for (name, state), count in self.counts.items()
                if name == queue and count}

    def queues(self) -> set[str]:
        """The queues that have archived jobs."""
        return {queue for (queue, _), count in self.counts.items() if count}

    def _count(self, rows: Iterable[tuple[str, str]], sign: int) -> None:
        for key in rows:
            self.counts[key] += sign

    async def close(self) -> None:
        """Close the connection (checkpointing the WAL); closing twice is harmless."""
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def store(self, jobs: list[Job]) -> None:
        """Insert or replace `jobs` in one transaction: all or none, and storing a job again
        (a retried hand-over) just rewrites it."""
        if not jobs:
            return
        rows = [(job.id, job.queue, job.state.value, job.finished_ms,
                 msgpack.packb(job.to_record(), use_bin_type=True)) for job in jobs]
        async with self._transaction() as db:
            replaced = await self._rows_of(db, [job.id for job in jobs])
            await db.executemany("INSERT OR REPLACE INTO jobs (id, queue, state, finished, record)"
                                 " VALUES (?, ?, ?, ?, ?)", rows)
        self._count(replaced, -1)
        self._count(((queue, state) for _, queue, state, _, _ in rows), 1)

    @staticmethod
    async def _rows_of(db: aiosqlite.Connection, ids: list[str]) -> list[tuple[str, str]]:
        """(queue, state) of the archived jobs among `ids`."""
        found: list[tuple[str, str]] = []
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start:start + IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = await db.execute_fetchall(
                f"SELECT queue, state FROM jobs WHERE id IN ({marks})", chunk)
            found += [(queue, state) for queue, state in rows]
        return found

    async def get(self, job_id: str) -> Job | None:
        rows = await self._conn().execute_fetchall("SELECT record FROM jobs WHERE id = ?",
                                                   (job_id,))
        return next((_decode(blob) for (blob,) in rows), None)

    async def get_many(self, ids: list[str]) -> dict[str, Job]:
        """The archived jobs among `ids`, by id; unknown ids are simply absent."""
        db = self._conn()
        found: dict[str, Job] = {}
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start:start + IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for (blob,) in await db.execute_fetchall(
                    f"SELECT record FROM jobs WHERE id IN ({marks})", chunk):
                job = _decode(blob)
                found[job.id] = job
        return found

    async def page(self, after: str, upto: str | None, queue: str | None, state: State | None,
                   limit: int) -> list[Job]:
        """Up to `limit` jobs with `after` < id <= `upto`, in id order: a cursor the caller
        continues from the last id returned. `after` "" or "0" starts at the beginning."""
        where, params = _where(("id > ?", None if after in ("", "0") else after),
                               ("id <= ?", upto), *_filters(queue, state))
        rows = await self._conn().execute_fetchall(
            f"SELECT record FROM jobs{where} ORDER BY id LIMIT ?", [*params, max(limit, 0)])
        return [_decode(blob) for (blob,) in rows]

    async def delete(self, ids: list[str]) -> int:
        """Remove these jobs; returns how many were archived."""
        removed: list[tuple[str, str]] = []
        if not ids:
            return 0
        async with self._transaction() as db:
            for start in range(0, len(ids), IN_CHUNK):
                chunk = ids[start:start + IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = await db.execute_fetchall(
                    f"DELETE FROM jobs WHERE id IN ({marks}) RETURNING queue, state", chunk)
                removed += [(queue, state) for queue, state in rows]
        self._count(removed, -1)
        return len(removed)

    async def purge(self, finished_before_ms: int, limit: int, *, queue: str | None = None,
                    state: State | None = None) -> int:
        """Delete at most `limit` jobs finished before `finished_before_ms`, oldest first;
        returns how many. Bounded so the caller can loop without starving other queries."""
        where, params = _where(("finished < ?", finished_before_ms), *_filters(queue, state))
        sql = (f"DELETE FROM jobs WHERE id IN (SELECT id FROM jobs{where}"
               " ORDER BY finished, id LIMIT ?) RETURNING queue, state")
        async with self._transaction() as db:
            rows = await db.execute_fetchall(sql, [*params, max(limit, 0)])
        removed = [(queue, state) for queue, state in rows]
        self._count(removed, -1)
        return len(removed)

    async def count(self) -> int:
        [(total,)] = await self._conn().execute_fetchall("SELECT COUNT(*) FROM jobs")
        return int(total)

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError(f"archive {self._path} is not open: call open() first")
        return self._db

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed if the block succeeds, rolled back otherwise.
        IMMEDIATE takes the write lock up front: a busy file fails at BEGIN, not halfway."""
        db = self._conn()
        async with self._write_lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.commit()
            except BaseException:
                await db.rollback()  # a no-op if the failed statement already ended it
                raise


def _filters(queue: str | None, state: State | None) -> list[tuple[str, Any]]:
    return [("queue = ?", queue), ("state = ?", state.value if state else None)]


def _where(*terms: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause of the terms whose value is not None (None = no filter), and its values."""
    used = [(sql, value) for sql, value in terms if value is not None]
    clause = " AND ".join(sql for sql, _ in used)
    return (f" WHERE {clause}" if used else ""), [value for _, value in used]


def _decode(blob: bytes) -> Job:
    return Job.from_record(msgpack.unpackb(blob, raw=False))
