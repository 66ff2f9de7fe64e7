"""Queue and dead-letter commands: QUEUE.LIST/STATS/PAUSE/RESUME/PURGE, DLQ.LIST/REQUEUE/PURGE."""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import Args
from jobcached.commands.jobs import MAX_COUNT, engine_of, job_reply, non_negative, positive, text
from jobcached.commands.registry import READONLY, WRITE, command
from jobcached.errors import SyntaxErr
from jobcached.jobs.model import State
from jobcached.net.replies import OK
from jobcached.net.session import Session


@command("QUEUE.LIST", arity=1, flags=READONLY, group="queue")
def queue_list(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.LIST

    The names of all queues that have held a job, sorted.

    Reply: array of bulk strings.
    """
    return [name.encode() for name in sorted(engine_of(s).queues)]


@command("QUEUE.STATS", arity=2, flags=READONLY, group="queue")
def queue_stats(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.STATS queue

    Counts of the queue's jobs per state, the age of its oldest queued job (queue lag),
    how many jobs it has processed and how many attempts failed, and whether it is paused.

    Reply: a map: pending, queued, running, retrying, succeeded, dead, canceled,
    oldest_queued_age_ms, processed, failed, paused (0 or 1).
    """
    engine = engine_of(s)
    queue = engine.queues.get(text(argv[1]))
    reply: dict[bytes, Any] = {state.value.encode(): 0 for state in State}
    reply.update({b"oldest_queued_age_ms": 0, b"processed": 0, b"failed": 0, b"paused": 0})
    if queue is not None:
        for state, count in queue.counts.items():
            reply[state.value.encode()] = count
        oldest = queue.oldest()
        if oldest is not None:
            reply[b"oldest_queued_age_ms"] = max(0, engine.clock.now_ms() - oldest.enqueued_ms)
        reply[b"processed"] = queue.processed
        reply[b"failed"] = queue.failed
        reply[b"paused"] = int(queue.paused)
    return reply


@command("QUEUE.PAUSE", arity=2, flags=WRITE, group="queue")
def queue_pause(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.PAUSE queue

    Stop handing out the queue's jobs (pushes are still accepted).

    Reply: `OK`, once durable.
    """
    s.server.check_job_writes()
    engine_of(s).set_paused(text(argv[1]), True)
    return s.server.durable(OK)


@command("QUEUE.RESUME", arity=2, flags=WRITE, group="queue")
def queue_resume(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.RESUME queue

    Hand out the queue's jobs again; blocked fetchers are served at once.

    Reply: `OK`, once durable.
    """
    s.server.check_job_writes()
    engine_of(s).set_paused(text(argv[1]), False)
    return s.server.durable(OK)


@command("QUEUE.PURGE", arity=2, flags=WRITE, group="queue")
def queue_purge(s: Session, argv: list[bytes]) -> Any:
    """QUEUE.PURGE queue

    Delete the queue's jobs that wait to run (pending, queued, retrying); running and finished
    jobs stay.

    Reply: the number of jobs deleted, once durable.
    """
    s.server.check_job_writes()
    return s.server.durable(engine_of(s).purge(text(argv[1])))


@command("DLQ.LIST", arity=-1, flags=READONLY, group="dlq")
def dlq_list(s: Session, argv: list[bytes]) -> Any:
    """DLQ.LIST [QUEUE queue] [COUNT count]

    The dead jobs (retries exhausted or NORETRY), oldest first, at most COUNT (default 100).

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
    return [job_reply(j, full=True) for j in engine_of(s).dead_jobs(queue)[:count]]


@command("DLQ.REQUEUE", arity=-2, flags=WRITE, group="dlq")
def dlq_requeue(s: Session, argv: list[bytes]) -> Any:
    """DLQ.REQUEUE <id | ALL> [QUEUE queue]

    Queue dead jobs again: one by id, or ALL (optionally of one queue). Their error history
    is kept and their attempts count on, but each gets its full RETRIES again.

    Reply: the number of jobs requeued, once durable.
    """
    engine = engine_of(s)
    s.server.check_job_writes()
    args = Args(argv, 2)
    queue = None
    while args:
        if args.next_upper() != b"QUEUE":
            raise SyntaxErr()
        queue = text(args.next())
    if argv[1].upper() == b"ALL":
        ids = [j.id for j in engine.dead_jobs(queue)]
    else:
        job = engine.get(text(argv[1]))
        ids = [job.id] if job is not None and job.state is State.DEAD else []
    for job_id in ids:
        engine.retry(job_id)
    return s.server.durable(len(ids))


@command("DLQ.PURGE", arity=-1, flags=WRITE, group="dlq")
def dlq_purge(s: Session, argv: list[bytes]) -> Any:
    """DLQ.PURGE [QUEUE queue] [OLDER ms]

    Delete dead jobs, optionally only of one queue or only those dead for longer than OLDER.

    Reply: the number of jobs deleted, once durable.
    """
    s.server.check_job_writes()
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
    return s.server.durable(engine_of(s).dlq_purge(queue, older))
