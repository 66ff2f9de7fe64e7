"""Queue and dead-letter commands: QUEUE.LIST/STATS/PAUSE/RESUME/LIMIT/PURGE,
DLQ.LIST/REQUEUE/PURGE.

Every one of them reads the per-queue index (`ReadyQueue.by_state`), never every job. The purges
run in slices, one per event loop turn, and reply when the last slice is done (see
`jobs/purge.py` for which jobs a purge deletes when others arrive meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from jobcached.commands.archived import drop_restored, from_archive
from jobcached.commands.args import Args
from jobcached.commands.blocking import may_block
from jobcached.commands.durable import durably
from jobcached.commands.jobs import MAX_COUNT, engine_of, job_reply, non_negative, positive, text
from jobcached.commands.keyspec import after_keyword, at_index
from jobcached.commands.registry import DENYOOM, READONLY, WRITE, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.jobs import purge as purges
from jobcached.jobs.limits import QueueLimit
from jobcached.jobs.model import Job, State
from jobcached.net.replies import OK, Deferred, ErrorReply
from jobcached.persistence.archive import Archive
from jobcached.server.session import Session
from jobcached.server.tasks import spawn

log = logging.getLogger("jobcached.jobs")

#: DLQ.REQUEUE ALL restores at most this many archived jobs per call (one reply's worth).
REQUEUE_FROM_ARCHIVE = 10_000
#: Archive rows DLQ.PURGE deletes per SQLite statement.
PURGE_BATCH = 5_000


@command("QUEUE.LIST", arity=1, flags=READONLY, group="queue", acl=("job-admin",))
def queue_list(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.LIST

    The names of all queues that have held a job, sorted.

    Reply: array of bulk strings.
    """
    return [name.encode() for name in sorted(engine_of(s).queues)]


@command("QUEUE.STATS", arity=2, flags=READONLY, group="queue", keys=(1, 1, 1),
         key_specs=at_index(1, "RO", "access"), acl=("job-admin",))
def queue_stats(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.STATS queue

    Counts of the queue's jobs per state (finished ones in memory and in the archive), the
    age of its oldest queued job (queue lag), how many jobs it has processed and how many
    attempts failed, and whether it is paused.

    Reply: a map: pending, queued, running, retrying, succeeded, dead, canceled,
    oldest_queued_age_ms, processed, failed, paused (0 or 1), and the QUEUE.LIMIT limits
    concurrency, rate and rate_per_ms (0 when there is none).
    """
    engine = engine_of(s)
    queue = engine.queues.get(text(argv[1]))
    reply: dict[bytes, Any] = {state.value.encode(): 0 for state in State}
    reply.update({b"oldest_queued_age_ms": 0, b"processed": 0, b"failed": 0, b"paused": 0})
    reply.update(QueueLimit().reply())
    if queue is not None:
        for state, count in queue.counts.items():
            reply[state.value.encode()] = count
        oldest = queue.oldest()
        if oldest is not None:
            reply[b"oldest_queued_age_ms"] = max(0, engine.clock.now_ms() - oldest.enqueued_ms)
        reply[b"processed"] = queue.processed
        reply[b"failed"] = queue.failed
        reply[b"paused"] = int(queue.paused)
        if queue.limit is not None:
            reply.update(queue.limit.reply())
    if s.server.archiver is not None:
        for state, count in s.server.archiver.counts(text(argv[1])).items():
            reply[state.value.encode()] += count
    return reply


@command("QUEUE.PAUSE", arity=2, flags=WRITE, group="queue", keys=(1, 1, 1),
         key_specs=at_index(1, "RW", "update"), acl=("job-admin",), durable=True)
def queue_pause(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.PAUSE queue

    Stop handing out the queue's jobs (pushes are still accepted).

    Reply: `OK`, once durable.
    """
    engine_of(s).set_paused(text(argv[1]), True)
    return OK


@command("QUEUE.RESUME", arity=2, flags=WRITE, group="queue", keys=(1, 1, 1),
         key_specs=at_index(1, "RW", "update"), acl=("job-admin",), durable=True)
def queue_resume(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.RESUME queue

    Hand out the queue's jobs again; blocked fetchers are served at once.

    Reply: `OK`, once durable.
    """
    engine_of(s).set_paused(text(argv[1]), False)
    return OK


@command("QUEUE.LIMIT", arity=-2, flags=WRITE, group="queue", keys=(1, 1, 1),
         key_specs=at_index(1, "RW", "update"), acl=("job-admin",), durable=True)
def queue_limit(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.LIMIT queue [CONCURRENCY <n | NONE>] [RATE <n PER ms | NONE>]

    Throttle a queue: CONCURRENCY caps how many of its jobs run (are leased) at once across
    all workers; RATE caps how many are leased in any window of `ms` milliseconds. A fetch
    beyond a limit gets fewer jobs or none; a blocked fetch waits, and is served when a
    running job ends or the window moves on. 0 or NONE removes a limit; a limit not named
    stays as it is. Limits are durable (logged and replayed). With no option, only shows them.

    Reply: the limits in force, a map: concurrency, rate, rate_per_ms (0 when there is none);
    once durable when they changed.
    Errors: `syntax error`; `CONCURRENCY must not be negative`, `RATE must not be negative`,
    `PER must be positive`.
    """
    engine = engine_of(s)
    name = text(argv[1])
    concurrency: int | None = None
    rate: tuple[int, int] | None = None
    args = Args(argv, 2)
    while args:
        option = args.next_upper()
        if option == b"CONCURRENCY":
            value = args.next()
            concurrency = 0 if value.upper() == b"NONE" else non_negative(value, "CONCURRENCY")
        elif option == b"RATE":
            value = args.next()
            if value.upper() == b"NONE":
                rate = (0, 0)
            else:
                count = non_negative(value, "RATE")
                if args.next_upper() != b"PER":
                    raise SyntaxErr()
                per_ms = positive(args.next(), "PER")
                rate = (count, per_ms) if count else (0, 0)
        else:
            raise SyntaxErr()
    if concurrency is None and rate is None:
        queue = engine.queues.get(name)
        limit = queue.limit if queue is not None else None
        return (limit or QueueLimit()).reply()
    limit = engine.set_limit(name, concurrency, rate)
    return (limit or QueueLimit()).reply()


@command("QUEUE.PURGE", arity=2, flags=WRITE, group="queue", keys=(1, 1, 1),
         key_specs=at_index(1, "RW", "delete"), acl=("job-admin",), durable=True)
def queue_purge(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.PURGE queue

    Delete the queue's jobs that wait to run (pending, queued, retrying); running and finished
    jobs stay. A long purge runs in slices of 1000 jobs, serving other clients in between:
    it deletes the jobs that were waiting when it began (and still are when their slice
    comes); jobs pushed or requeued meanwhile stay.

    Reply: the number of jobs deleted, once durable.
    """
    return in_slices(s, purges.queue_purge(engine_of(s), text(argv[1])), durably(s, int))


def in_slices(s: Session, purge: purges.Purge, then: Callable[[int], Any]) -> Any:
    """`then(jobs deleted)` once `purge` is done: at once if its first slice finishes it (or
    inside MULTI/EXEC, which must not let other clients in), else a Deferred resolved after
    the slice of the last loop turn. Between slices the loop serves other clients. Job
    writes are checked again before each slice: once the log refuses writes (-MISCONF) the
    purge stops with that error, the slices done before it staying done."""
    if purge.step() or not may_block(s):
        return then(purge.run())
    reply = Deferred()

    async def rest() -> None:
        try:
            while True:
                await asyncio.sleep(0)  # one loop turn: other clients are served here
                s.server.effects.check_writable()
                if purge.step():
                    break
            value = then(purge.deleted)
        except CommandError as exc:
            value = ErrorReply.from_exc(exc)
        except Exception:  # a bug: the client still gets a reply, the server carries on
            log.exception("purge failed", extra={"deleted": purge.deleted})
            value = ErrorReply("ERR internal error while purging")
        reply.resolve_with(value)

    spawn(s.server, rest())
    return reply


@command("DLQ.LIST", arity=-1, flags=READONLY, group="dlq",
         key_specs=after_keyword("QUEUE", "RO", "access"), acl=("job-admin",))
def dlq_list(s: Session, argv: list[bytes]) -> Any:
    """DLQ.LIST [QUEUE queue] [COUNT count]

    The dead jobs (retries exhausted or NORETRY), oldest first, at most COUNT (default 100):
    those already moved to the archive, then those still in memory.

    Reply: an array of job maps as JOB.GET shows them.
    """
    queue, count = None, 100
    args = Args(argv)
    while args:
        option = args.next_upper()
        if option == b"QUEUE":
            queue = text(args.next())
        elif option == b"COUNT":
            count = min(positive(args.next(), "COUNT"), MAX_COUNT)
        else:
            raise SyntaxErr()
    engine = engine_of(s)
    hot = purges.dead_jobs(engine, queue, count)

    def listing(archived: list[Job]) -> list[Any]:
        archived = [j for j in archived if j.id not in engine.jobs]  # memory is newer
        return [job_reply(j) for j in [*archived, *hot][:count]]

    return from_archive(s, lambda archive: archive.page("", None, queue, State.DEAD, count),
                        listing, list[Job]())


@command("DLQ.REQUEUE", arity=-2, flags=WRITE | DENYOOM, group="dlq",
         key_specs=after_keyword("QUEUE", "RW", "insert"), acl=("job-admin",), durable=True)
def dlq_requeue(s: Session, argv: list[bytes]) -> Any:
    """DLQ.REQUEUE <id | ALL> [QUEUE queue]

    Queue dead jobs again: one by id, or ALL (optionally of one queue), including dead jobs
    already moved to the archive (ALL takes up to 10000 of those per call: call again while
    it returns that many). Their error history is kept and their attempts count on, but each
    gets its full RETRIES again.

    Reply: the number of jobs requeued, once durable.
    """
    engine = engine_of(s)
    args = Args(argv, 2)
    queue = None
    while args:
        if args.next_upper() != b"QUEUE":
            raise SyntaxErr()
        queue = text(args.next())
    job_id = None if argv[1].upper() == b"ALL" else text(argv[1])

    restored_ids: list[str] = []

    def requeue_now(archived: list[Job]) -> int:
        # Memory is read here, not before an archive lookup: it may have changed meanwhile.
        if job_id is None:
            hot = purges.dead_jobs(engine, queue)
        else:
            job = engine.get(job_id)
            hot = [job] if job is not None and job.state is State.DEAD else []
        restored = [j for j in archived if j.state is State.DEAD and j.id not in engine.jobs]
        for job in restored:
            engine.restore(job)
        for job in hot + restored:
            engine.retry(job.id)
        restored_ids.extend(job.id for job in restored)
        return len(hot) + len(restored)

    held = durably(s, requeue_now)

    def requeue(archived: list[Job]) -> Any:
        return drop_restored(s, restored_ids, held(archived))

    if job_id is None:
        return from_archive(s, lambda archive: archive.page(
            "", None, queue, State.DEAD, REQUEUE_FROM_ARCHIVE), requeue, list[Job]())
    if job_id in engine.jobs:
        return requeue([])

    async def lookup(archive: Archive) -> list[Job]:
        found = await archive.get(job_id)
        return [] if found is None else [found]

    return from_archive(s, lookup, requeue, list[Job]())


@command("DLQ.PURGE", arity=-1, flags=WRITE, group="dlq",
         key_specs=after_keyword("QUEUE", "RW", "delete"), acl=("job-admin",), durable=True)
def dlq_purge(s: Session, argv: list[bytes]) -> Any:
    """DLQ.PURGE [QUEUE queue] [OLDER ms]

    Delete dead jobs, optionally only of one queue or only those dead for longer than OLDER,
    in memory (in slices, as QUEUE.PURGE) and in the archive.

    Reply: the number of jobs deleted, once durable.
    """
    queue, older = None, None
    args = Args(argv)
    while args:
        option = args.next_upper()
        if option == b"QUEUE":
            queue = text(args.next())
        elif option == b"OLDER":
            older = non_negative(args.next(), "OLDER")
        else:
            raise SyntaxErr()
    engine = engine_of(s)
    cutoff = engine.clock.now_ms() - (older or 0)

    async def purge(archive: Archive) -> int:
        total = 0
        while (n := await archive.purge(cutoff + 1, PURGE_BATCH, queue=queue,
                                        state=State.DEAD)):
            total += n
        return total

    # Memory first, then the archive: a job the archiver moves meanwhile is then found there.
    return in_slices(s, purges.dlq_purge(engine, queue, older), lambda hot: from_archive(
        s, purge, durably(s, lambda archived: hot + archived), 0))
