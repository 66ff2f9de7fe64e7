"""Reading through to the SQLite archive from job commands.

Finished jobs leave memory after `job-hot-retention` (see `archiving.py`), but JOB.GET,
JOB.LIST, JOB.WAIT, JOB.LOGS, JOB.RETRY and the DLQ commands still find them. Memory is
checked first and answers synchronously; only a miss asks the archive, which runs in
aiosqlite's worker thread, so the command replies later through a `Deferred` (replies stay in
request order) and the event loop keeps serving everyone else meanwhile. A job command run by a
script sees memory only: the script must finish in one go, atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from jobcached.commands.aclcheck import archived_job_refusal
from jobcached.errors import CommandError
from jobcached.jobs.model import Job, State
from jobcached.net.replies import Deferred, ErrorReply
from jobcached.persistence.archive import Archive
from jobcached.server.session import Session
from jobcached.server.tasks import spawn

T = TypeVar("T")
log = logging.getLogger("jobcached.archive")


def archive_of(s: Session) -> Archive | None:
    """The archive to read, or None: none configured or usable, or inside a script, which
    runs atomically and cannot wait for SQLite, so it sees the jobs in memory only."""
    if s.server.in_script_job_call:
        return None
    archiver = s.server.archiver
    return archiver.archive if archiver is not None else None


def from_archive(s: Session, lookup: Callable[[Archive], Awaitable[T]],
                 then: Callable[[T], Any], default: T, argv: list[bytes] | None = None) -> Any:
    """`then(await lookup(archive))` as a reply: a Deferred that resolves when the archive has
    answered, or `then(default)` at once when there is no archive to ask. `then` may raise
    CommandError (an error reply) or return a Deferred itself (a write waiting to be
    durable), which is chained. With `argv` (a command naming one job by id), a job found
    in the archive is checked against the user's ACL for its queue first."""
    archive = archive_of(s)
    if archive is None:
        return then(default)
    reply = Deferred()

    async def run() -> None:
        try:
            found = await lookup(archive)
            refused = (archived_job_refusal(s, argv, found.queue)
                       if argv is not None and isinstance(found, Job) else None)
            value = refused if refused is not None else then(found)
        except CommandError as exc:
            value = ErrorReply.from_exc(exc)
        except Exception as exc:  # SQLite failed: say so, the connection stays healthy
            log.warning("job archive read failed", extra={"error": str(exc)})
            value = ErrorReply(f"ERR job archive unavailable: {type(exc).__name__}: {exc}")
        reply.resolve_with(value)

    spawn(s.server, run())
    return reply


def drop_restored(s: Session, ids: list[str], reply: Any) -> Any:
    """Delete the archive rows of jobs brought back into memory, once `reply` (the restore's
    durable reply) resolves: until then the row is the only durable copy. A row left behind
    (SQLite failed, or a crash in between) is harmless: memory wins on every read, and the
    job's next hand-over rewrites it."""
    archive = archive_of(s)
    if archive is None or not ids:
        return reply

    async def delete() -> None:
        try:
            await archive.delete(ids)
        except Exception as exc:
            log.warning("could not delete restored jobs from the archive",
                        extra={"error": str(exc)})

    if isinstance(reply, Deferred):
        reply.add_callback(lambda _: spawn(s.server, delete()))
    else:
        spawn(s.server, delete())
    return reply


def merge_pages(hot: list[Job], scanned_to: str | None, archived: list[Job],
                count: int) -> tuple[str, list[Job]]:
    """One JOB.LIST page from a page of memory and one of the archive, both in id order.

    `scanned_to` is the last id the memory scan looked at (None when it reached the end) and
    the archive page was limited to ids up to it; so every id up to the returned cursor has
    been seen, whichever side held it. The cursor is "0" when both sides are exhausted.
    """
    merged = sorted(hot + archived, key=lambda job: job.id)
    if len(merged) > count:
        merged = merged[:count]
        return merged[-1].id, merged
    if len(archived) == count:  # the archive may hold more below scanned_to
        return merged[-1].id, merged
    return scanned_to or "0", merged


def parse_state(raw: str) -> State:
    try:
        return State(raw.lower())
    except ValueError:
        raise CommandError(f"unknown job state '{raw}'") from None
