"""Archiving: finished jobs move from memory to SQLite, and old rows are purged.

Every `ARCHIVE_INTERVAL_SECONDS` the app calls `Archiver.step()`. A step takes up to
`HANDOVER_BATCH` jobs that ended more than `job-hot-retention` ago (oldest first), stores them
in one SQLite transaction (the archive's worker thread does the I/O), and only once that
commit is on disk tells the engine, which logs an `archive` record and drops them from memory.
A crash in between replays the jobs into memory and the next step stores them again (a
harmless rewrite). Then it purges at most `PURGE_BATCH` rows older than
`job-archive-retention`, and forgets ended batches as old.

If SQLite fails (disk full, file removed, locked), the jobs simply stay in memory and in the
WAL: the server keeps serving, the error is logged (once per failure streak) and counted
(`jobcached_archive_errors_total`), and the next step tries again; a closed or missing
archive is reopened.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from jobcached.clock import Clock
from jobcached.config import Config
from jobcached.jobs.engine import JobEngine
from jobcached.jobs.model import State
from jobcached.persistence.archive import Archive

log = logging.getLogger("jobcached.archive")

ARCHIVE_INTERVAL_SECONDS = 0.5
#: Jobs handed over per step: one SQLite transaction of a few MB at most.
HANDOVER_BATCH = 2_000
#: Rows purged per step (an index range delete: milliseconds).
PURGE_BATCH = 5_000
ARCHIVE_FILE = "archive.sqlite3"


@dataclass
class ArchiveStats:
    moved: int = 0  # jobs handed over to the archive
    purged: int = 0  # rows removed after job-archive-retention
    errors: int = 0  # failed SQLite operations
    last_error: str = ""


class Archiver:
    """Owns the archive file; see the module docstring."""

    def __init__(self, config: Config, engine: JobEngine, clock: Clock) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.path = str(Path(config.dir) / ARCHIVE_FILE)
        self.archive: Archive | None = None  # None while it cannot be opened
        self.stats = ArchiveStats()
        self._failing = False

    async def open(self) -> None:
        archive = Archive(self.path)
        try:
            await archive.open()
        except Exception as exc:  # any SQLite or OS failure: run without the archive
            self._failed("open", exc)
            return
        self.archive = archive

    def counts(self, queue: str) -> dict[State, int]:
        """How many of `queue`'s finished jobs are archived, by state (empty while the
        archive is not open): what INFO and QUEUE.STATS add to the jobs in memory."""
        if self.archive is None:
            return {}
        return {State(state): count for state, count in self.archive.archived(queue).items()}

    def queues(self) -> set[str]:
        """The queues with archived jobs (they may have none left in memory)."""
        return self.archive.queues() if self.archive is not None else set()

    async def close(self) -> None:
        if self.archive is not None:
            await self.archive.close()
            self.archive = None

    async def step(self) -> None:
        """One hand-over batch and one purge batch (see the module docstring)."""
        if self.archive is None:
            await self.open()
            if self.archive is None:
                return
        now = self.clock.now_ms()
        try:
            jobs = self.engine.archivable(now - self.config.job_hot_retention, HANDOVER_BATCH)
            if jobs:
                stamps = [(job, job.finished_ms) for job in jobs]
                await self.archive.store(jobs)
                self.engine.archived(stamps)
                self.stats.moved += len(jobs)
            cutoff = now - self.config.job_archive_retention
            self.stats.purged += await self.archive.purge(cutoff, PURGE_BATCH)
            self.engine.batches.drop(cutoff)
        except Exception as exc:  # SQLite failed: the jobs stay in memory
            self._failed("write", exc)
            await self._reopen()
            return
        if self._failing:
            log.info("job archive works again", extra={"path": self.path})
            self._failing = False

    async def _reopen(self) -> None:
        archive, self.archive = self.archive, None
        if archive is not None:
            with contextlib.suppress(Exception):  # already broken; the next step reopens
                await archive.close()

    def _failed(self, what: str, exc: Exception) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        if not self._failing:  # once per streak: a broken disk must not flood the log
            log.error("job archive failed: finished jobs stay in memory", extra={
                "path": self.path, "operation": what, "error": self.stats.last_error})
            self._failing = True
