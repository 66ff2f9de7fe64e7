"""Job logs, CI style: JOB.LOG appends while a job runs, JOB.LOGS reads and follows.

Lines are numbered from 0 for the life of the job; a reader keeps the `next` number a reply
gives it and asks FROM there, with BLOCK to wait for more (`tail -f`). Logs are bounded per
job (`job-log-max-lines`, `job-log-max-bytes`): the oldest lines are dropped, and a reader
that asks for them gets one marker line saying how many it missed.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands.archived import from_archive
from jobcached.commands.args import Args, to_int
from jobcached.commands.jobs import MAX_COUNT, engine_of, non_negative, positive, text
from jobcached.commands.registry import BLOCKING, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.jobs.model import TERMINAL, Job
from jobcached.net.replies import Deferred
from jobcached.server.session import Session

#: JOB.LOGS COUNT default.
DEFAULT_LOG_COUNT = 1000


@command("JOB.LOG", arity=-4, flags=WRITE | FAST, group="job", acl=("job-work",), durable=True)
def job_log(s: Session, argv: list[bytes]) -> Any:
    """JOB.LOG id token line [line ...]

    Append lines to the log of a job the caller is running (the token is its lease, as for
    JOB.ACK). Followers blocked in JOB.LOGS wake at once.

    Reply: the number the next line will get (lines logged so far), once durable.
    Errors: `STALE` for a stale token; `ERR job <id> is <state>` once it ended.

    Example: `JOB.LOG 01J9Z... 9f3c... "step 1/3: build" "step 2/3: test"` → `(integer) 2`
    """
    engine = engine_of(s)
    lines = argv[3:]
    size = sum(map(len, lines))
    if size > s.server.config.job_max_payload:
        raise CommandError(f"log lines are {size} bytes, more than job-max-payload")
    return engine.log(text(argv[1]), text(argv[2]), lines)


@command("JOB.LOGS", arity=-2, flags=READONLY | BLOCKING, group="job", acl=("job-produce",))
def job_logs(s: Session, argv: list[bytes]) -> Any:
    """JOB.LOGS id [FROM n] [COUNT count] [BLOCK ms]

    Read a job's log from line FROM (default 0; negative counts back from the end, so
    `FROM -10` is the last ten lines), at most COUNT lines (default 1000). With BLOCK, when
    there is nothing new yet and the job has not finished, wait up to that long (0 = forever)
    for new lines or the job's end. Archived jobs are read from the archive.

    Reply: a map with `next` (the FROM to ask next), `lines` (an array; a first line saying
    how many were dropped if the log outgrew job-log-max-lines) and `state` (the job's state:
    once it is finished and `lines` is empty, there is nothing more to follow).
    Errors: `ERR no such job`.

    Example: `JOB.LOGS 01J9Z... FROM 2 BLOCK 5000` → `1# "next" => (integer) 3, 2# "lines" =>
    1) "step 3/3: deploy", 3# "state" => "running"`
    """
    engine = engine_of(s)
    job_id = text(argv[1])
    start, count, block = 0, DEFAULT_LOG_COUNT, None
    args = Args(argv, 2)
    while args:
        option = args.next_upper()
        if option == b"FROM":
            start = to_int(args.next())
        elif option == b"COUNT":
            count = min(positive(args.next(), "COUNT"), MAX_COUNT)
        elif option == b"BLOCK":
            block = non_negative(args.next(), "BLOCK")
        else:
            raise SyntaxErr()

    def page(job: Job | None) -> Any:
        if job is None:
            raise CommandError(f"no such job {job_id}")
        first = start if start >= 0 else max(0, job.log_base + len(job.logs) + start)
        following, lines = job.log_page(first, count)
        return {b"next": following, b"lines": lines, b"state": job.state.value.encode()}

    job = engine.get(job_id)
    if job is None:
        return from_archive(s, lambda archive: archive.get(job_id), page, None, argv)
    reply = page(job)
    if reply[b"lines"] or block is None or job.state in TERMINAL:
        return reply
    waiting = Deferred(blocking=True)
    waiter = engine.waiters.for_logs(job_id, block, lambda woken: waiting.resolve(
        reply if woken is None else page(woken)))
    waiting.on_cancel = lambda: engine.waiters.cancel(waiter)
    return waiting
