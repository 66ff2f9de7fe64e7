"""Job commands: JOB.PUSH, FETCH, ACK, FAIL, BEAT, CANCEL, GET, WAIT, RETRY, LIST.

Handlers parse and validate arguments, call the job engine, and shape its answer into a reply;
the rules live in `jobs/engine.py` and `jobs/model.py`. Writes reply through `durable()`, so
the client hears back only once the change is as durable as `appendfsync` promises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jobcached.commands import replicas
from jobcached.commands.archived import drop_restored, from_archive, merge_pages, parse_state
from jobcached.commands.args import Args, to_int
from jobcached.commands.durable import durably
from jobcached.commands.keyspec import after_keyword, at_index
from jobcached.commands.registry import BLOCKING, DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.jobs.engine import JobEngine, PushOptions
from jobcached.jobs.model import DEFAULT_RETRIES, TERMINAL, Job, retry_policy
from jobcached.net.replies import OK, Deferred, Encoded, Simple
from jobcached.net.resp import encode
from jobcached.server.session import Session

#: RETRIES above this is almost certainly a mistake (25 retries already span ~3 weeks).
MAX_RETRIES = 1000
#: JOB.FETCH COUNT and JOB.LIST COUNT upper bound: one reply stays a reasonable size.
MAX_COUNT = 10_000


def engine_of(s: Session) -> JobEngine:
    engine = s.server.jobs
    if engine is None:
        raise CommandError("the job engine is not running")
    return engine


def text(raw: bytes) -> str:
    """A name, id, type, key or META string of a job command: UTF-8 text, or an error before
    anything changes. These become log records, replies, INFO lines and metric labels, all
    of which carry text; a payload or result is bytes and may hold anything."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        shown = raw[:32].decode("utf-8", "backslashreplace")
        raise CommandError(f"invalid argument '{shown}': queue names, job ids, types, keys, "
                           f"META and other names in job commands must be UTF-8 "
                           f"text") from None


def free_text(raw: bytes) -> str:
    """A message meant for people (an error, a trace, a client's name): undecodable bytes
    are kept visible as \\xNN escapes rather than refusing what a failing worker reports."""
    return raw.decode("utf-8", "backslashreplace")


def non_negative(raw: bytes, what: str) -> int:
    value = to_int(raw)
    if value < 0:
        raise CommandError(f"{what} must not be negative")
    return value


def positive(raw: bytes, what: str) -> int:
    value = to_int(raw)
    if value <= 0:
        raise CommandError(f"{what} must be positive")
    return value


def check_size(s: Session, data: bytes, what: str) -> None:
    limit = s.server.config.job_max_payload
    if len(data) > limit:
        raise CommandError(f"{what} is {len(data)} bytes, more than job-max-payload ({limit})")


#: JOB.FETCH's job map in wire form, for `fetched_reply`: the same 9 fields, in this order,
#: as a map under RESP3 and a flat array of pairs under RESP2; `meta` (a map) is appended.
_FETCHED = (b"$2\r\nid\r\n$%d\r\n%b\r\n$5\r\nqueue\r\n$%d\r\n%b\r\n$4\r\ntype\r\n$%d\r\n%b\r\n"
            b"$7\r\npayload\r\n$%d\r\n%b\r\n$7\r\nattempt\r\n:%d\r\n$8\r\npriority\r\n:%d\r\n"
            b"$5\r\ntoken\r\n$%d\r\n%b\r\n$8\r\ndeadline\r\n:%d\r\n$4\r\nmeta\r\n")


def fetched_reply(job: Job, resp3: bool) -> Encoded:
    """What JOB.FETCH returns per job (id, queue, type, payload, attempt, priority, token,
    deadline, meta), formatted in one step: the generic encoder walked these maps item by
    item at about 5 us a job, a tenth of the whole push-fetch-ack cycle."""
    job_id, queue, type_, token = (job.id.encode(), job.queue.encode(), job.type.encode(),
                                   job.token.encode())
    body = _FETCHED % (len(job_id), job_id, len(queue), queue, len(type_), type_,
                       len(job.payload), job.payload, job.attempt, job.priority,
                       len(token), token, job.deadline_ms)
    meta = encode(_encoded(job.meta), resp3) if job.meta else (b"%0\r\n" if resp3
                                                              else b"*0\r\n")
    return Encoded((b"%9\r\n" if resp3 else b"*18\r\n") + body + meta)


def job_reply(job: Job) -> dict[bytes, Any]:
    """A job as a map (RESP2: flat pairs), everything known about it (JOB.GET, JOB.LIST)."""
    reply: dict[bytes, Any] = {
        b"id": job.id.encode(), b"queue": job.queue.encode(), b"type": job.type.encode(),
        b"payload": job.payload, b"attempt": job.attempt, b"priority": job.priority,
    }
    reply.update({
        b"state": job.state.value.encode(), b"result": job.result,
        b"retries": job.retry.retries, b"timeout": job.timeout_ms, b"run_at": job.run_at_ms,
        b"created": job.created_ms, b"enqueued": job.enqueued_ms, b"started": job.started_ms,
        b"finished": job.finished_ms, b"deadline": job.deadline_ms,
        b"worker": job.worker.encode(), b"key": job.key.encode() if job.key else None,
        b"reason": job.reason.encode(),
        b"meta": _encoded(job.meta),
        b"errors": [{k.encode(): v.encode() if isinstance(v, str) else v
                     for k, v in e.items()} for e in job.errors],
        b"after": [parent.encode() for parent in job.parents], b"batch": job.batch.encode(),
        b"expire": job.expire_ms, b"log_lines": job.log_base + len(job.logs),
    })
    return reply


def _encoded(meta: Mapping[str, str]) -> dict[bytes, bytes]:
    """META as the wire carries it."""
    return {k.encode(): v.encode() for k, v in meta.items()}


#: JOB.FETCH's option names, which no queue after QUEUES may be called (see job_fetch).
FETCH_OPTIONS = frozenset({"COUNT", "BLOCK", "LEASE", "WORKER", "QUEUES"})
#: AFTER takes at most this many parents.
MAX_PARENTS = 1000
#: JOB.PUSH options that make no sense for a job a cron entry pushes on each slot.
ONE_OFF_OPTIONS = frozenset({b"DELAY", b"AT", b"KEY", b"KEYTTL", b"AFTER", b"BATCH", b"EXPIRE"})


def parse_push_options(args: Args, opts: PushOptions, *,
                       extra: dict[bytes, Callable[[Args], None]] | None = None,
                       refused: frozenset[bytes] = frozenset()) -> None:
    """The JOB.PUSH options (also CRON.SET's, where `extra` adds TZ and MISSED and the
    `refused` one-off options are syntax errors)."""
    retries = backoff = None
    while args:
        option = args.next_upper()
        if option in refused:
            raise SyntaxErr()
        if extra and option in extra:
            extra[option](args)
        elif option == b"TYPE":
            opts.type = text(args.next())
        elif option == b"PRIORITY":
            opts.priority = args.next_int()
        elif option == b"DELAY" and opts.at_ms is None:
            opts.delay_ms = non_negative(args.next(), "DELAY")
        elif option == b"AT" and opts.delay_ms is None:
            opts.at_ms = non_negative(args.next(), "AT")
        elif option == b"RETRIES":
            retries = non_negative(args.next(), "RETRIES")
            if retries > MAX_RETRIES:
                raise CommandError(f"RETRIES must be at most {MAX_RETRIES}")
        elif option == b"BACKOFF":
            base = positive(args.next(), "BACKOFF base")
            cap = base * 2**20
            if args and args.argv[args.pos].isdigit():
                cap = positive(args.next(), "BACKOFF max")
                if cap < base:
                    raise CommandError("BACKOFF max must not be less than base")
            backoff = (base, cap)
        elif option == b"TIMEOUT":
            opts.timeout_ms = positive(args.next(), "TIMEOUT")
        elif option == b"KEY":
            opts.key = text(args.next())
        elif option == b"KEYTTL":
            opts.key_ttl_ms = positive(args.next(), "KEYTTL")
        elif option == b"META":
            field_name = text(args.next())
            opts.meta[field_name] = text(args.next())
        elif option == b"AFTER" and not opts.after:
            count = positive(args.next(), "AFTER count")
            if count > MAX_PARENTS:
                raise CommandError(f"AFTER takes at most {MAX_PARENTS} parent jobs")
            opts.after = list(dict.fromkeys(text(args.next()) for _ in range(count)))
        elif option == b"BATCH":
            opts.batch = text(args.next())
        elif option == b"EXPIRE":
            opts.expire_ms = positive(args.next(), "EXPIRE")
        else:
            raise SyntaxErr()
    if retries is not None or backoff is not None:  # else the shared default policy stays
        opts.retry = retry_policy(DEFAULT_RETRIES if retries is None else retries, backoff)


@command("JOB.PUSH", arity=-3, flags=WRITE | DENYOOM | FAST, group="job", keys=(1, 1, 1),
         key_specs=at_index(1, "RW", "insert"), acl=("job-produce",), durable=True)
def job_push(s: Session, argv: list[bytes]) -> Any:
    """JOB.PUSH queue payload [TYPE type] [PRIORITY priority] [DELAY ms | AT unix-ms]
    [RETRIES retries] [BACKOFF base-ms [max-ms]] [TIMEOUT ms] [KEY idempotency-key]
    [KEYTTL ms] [META field value [META field value ...]] [AFTER count id [id ...]]
    [BATCH batch-id] [EXPIRE unix-ms] [REPLICAS n [TIMEOUT ms]]

    Create a job. It is queued at once, or pending until DELAY or AT. Higher PRIORITY runs
    first, FIFO within a priority. RETRIES (default 25) failed attempts are retried: after
    15 + n^4 + rand(0, 30(n+1)) seconds, or with BACKOFF after a random delay up to
    min(max-ms, base-ms * 2^n). TIMEOUT is the lease a worker gets (default 60000 ms). A KEY
    already used within KEYTTL (default 24 h, kept across restarts) returns the existing job's
    id and creates nothing. META pairs (e.g. `traceparent`) are returned by JOB.FETCH.
    AFTER makes the job wait (pending) until all `count` parent jobs have succeeded; if one
    ends dead or canceled, the job is canceled with the reason `parent <id> is <state>`, and
    so are its own dependents. BATCH adds the job to an open batch (BATCH.NEW). EXPIRE cancels
    the job with the reason `expired` if it has not started by then. REPLICAS holds the reply
    until `n` followers have the job (TIMEOUT right after it: how long, default 1000 ms; the
    lease TIMEOUT goes elsewhere among the options); see "Synchronous replication".

    Reply: the job id (26 characters, time-ordered), once the job is as durable as
    `appendfsync` promises (and, with REPLICAS, on `n` followers).
    Errors: `NOTUNIQUE` when KEY was used with a different payload; `ERR` on a bad option, an
    unknown parent id, an unknown or committed batch, or an EXPIRE not in the future; `OOM`
    past `maxmemory`, where jobs count too and are never evicted (the cache evicts first);
    `NOREPL` with REPLICAS: fewer followers connected (nothing created), or the TIMEOUT ran
    out (the job is kept).

    Example: `JOB.PUSH deploy "{...}" AFTER 2 01J9Z...A 01J9Z...B EXPIRE 1767225600000`
    """
    engine = engine_of(s)
    check_size(s, argv[2], "payload")
    queue = text(argv[1])
    if len(argv) == 3:  # most pushes have no options: no parser, no closure
        return engine.push(queue, argv[2])[0].encode()
    opts = PushOptions()
    wanted: list[replicas.Replicas] = []
    parse_push_options(Args(argv, 3), opts,
                       extra={b"REPLICAS": lambda args: wanted.append(replicas.parse(args))})
    sync = wanted[-1] if wanted else None
    replicas.check(s, sync)

    def push(archived: dict[str, Job]) -> Any:
        job_id, _ = engine.push(queue, argv[2], opts,
                                {job_id: job.state for job_id, job in archived.items()})
        return job_id.encode()

    missing = [p for p in opts.after if p not in engine.jobs]
    if not missing:
        return push({}) if sync is None else replicas.hold(s, push({}), sync)
    then = durably(s, push)
    return from_archive(s, lambda archive: archive.get_many(missing),
                        then if sync is None else
                        lambda archived: replicas.hold(s, then(archived), sync),
                        dict[str, Job]())


@command("JOB.FETCH", arity=-3, flags=WRITE | BLOCKING, group="job",
         key_specs=after_keyword("QUEUES", "RW", "access", "delete", lastkey=-1),
         acl=("job-work",), durable=True)
def job_fetch(s: Session, argv: list[bytes]) -> Any:
    """JOB.FETCH [COUNT count] [BLOCK ms] [LEASE ms] [WORKER worker-id] QUEUES queue
    [queue ...]

    Lease up to COUNT (default 1) jobs, taking the queues strictly in the order given. With
    BLOCK, wait up to that long for a job (0 = forever); a push wakes the longest-waiting
    fetcher at once. LEASE overrides the job's TIMEOUT for this attempt. QUEUES comes last
    (as STREAMS in XREAD): an option name after it is an error, not a queue called `BLOCK`.

    Reply: an array of job maps with id, queue, type, payload, attempt, priority, token,
    deadline (unix ms) and meta, once the leases are durable; an empty array when nothing
    came within BLOCK.
    """
    engine = engine_of(s)
    count, block, lease, worker = 1, None, None, ""
    args = Args(argv)
    queues: list[str] = []
    while args:
        option = args.next_upper()
        if option == b"COUNT":
            count = positive(args.next(), "COUNT")
            if count > MAX_COUNT:
                raise CommandError(f"COUNT must be at most {MAX_COUNT}")
        elif option == b"BLOCK":
            block = non_negative(args.next(), "BLOCK")
        elif option == b"LEASE":
            lease = positive(args.next(), "LEASE")
        elif option == b"WORKER":
            worker = text(args.next())
        elif option == b"QUEUES":
            queues = [text(q) for q in args.rest()]
            misplaced = FETCH_OPTIONS.intersection(name.upper() for name in queues)
            if misplaced:
                raise CommandError(f"QUEUES must come last: {min(misplaced)} is an option, "
                                   f"not a queue name")
        else:
            raise SyntaxErr()
    if not queues:
        raise CommandError("JOB.FETCH needs QUEUES and at least one queue name")
    worker = worker or free_text(s.name)
    jobs = engine.fetch(queues, count, lease, worker)
    if jobs or block is None:
        return [fetched_reply(j, s.resp3) for j in jobs]
    reply = Deferred(blocking=True)

    def deliver(found: list[Job]) -> None:
        # The leases were just logged: answer once they are durable, so that after a crash
        # a job a worker holds is not handed to another before its lease runs out.
        reply.resolve_with(s.server.effects.durable([fetched_reply(j, s.resp3) for j in found]))

    waiter = engine.waiters.for_jobs(queues, count, lease, worker, block, deliver)
    reply.on_cancel = lambda: engine.waiters.cancel(waiter)
    reply.timeout_reply = []  # what a BLOCK that runs out answers (CLIENT UNBLOCK TIMEOUT)
    return reply


@command("JOB.ACK", arity=-3, flags=WRITE | FAST, group="job", acl=("job-work",), durable=True)
def job_ack(s: Session, argv: list[bytes]) -> Any:
    """JOB.ACK id token [RESULT result] [REPLICAS n [TIMEOUT ms]]

    Complete a running job, optionally storing its result. REPLICAS holds the reply until `n`
    followers have the completion (as JOB.PUSH's).

    Reply: `OK`, once durable.
    Errors: `STALE` when the token's lease expired and the job was handed out again (nothing
    changes: a slow worker can never complete a job twice); `ERR job <id> is canceled`;
    `NOREPL` as JOB.PUSH's.
    """
    engine = engine_of(s)
    result = sync = None
    if len(argv) > 3:  # most acks carry no option: no parser for them
        args = Args(argv, 3)
        while args:
            option = args.next_upper()
            if option == b"RESULT":
                result = args.next()
                check_size(s, result, "result")
            elif option == b"REPLICAS":
                sync = replicas.parse(args)
            else:
                raise SyntaxErr()
        replicas.check(s, sync)
    engine.ack(text(argv[1]), text(argv[2]), result)
    return OK if sync is None else replicas.hold(s, OK, sync)


@command("JOB.FAIL", arity=-4, flags=WRITE | FAST, group="job", acl=("job-work",), durable=True)
def job_fail(s: Session, argv: list[bytes]) -> Any:
    """JOB.FAIL id token message [ERRTYPE type] [TRACE trace] [RETRYIN ms | NORETRY]
    [REPLICAS n [TIMEOUT ms]]

    Report a failed attempt. The job is retried per its policy (RETRYIN sets the delay,
    NORETRY sends it straight to the dead-letter queue) or, with no retries left, is dead.
    REPLICAS holds the reply until `n` followers have the failure (as JOB.PUSH's).

    Reply: the state the job moved to: `retrying` or `dead`.
    Errors: `STALE` for a stale token, as JOB.ACK; `NOREPL` as JOB.PUSH's.
    """
    engine = engine_of(s)
    errtype, trace, retry_in, noretry, sync = "Error", "", None, False, None
    args = Args(argv, 4)
    while args:
        option = args.next_upper()
        if option == b"ERRTYPE":
            errtype = free_text(args.next())
        elif option == b"TRACE":
            trace = free_text(args.next())
        elif option == b"RETRYIN" and not noretry:
            retry_in = non_negative(args.next(), "RETRYIN")
        elif option == b"NORETRY" and retry_in is None:
            noretry = True
        elif option == b"REPLICAS":
            sync = replicas.parse(args)
        else:
            raise SyntaxErr()
    replicas.check(s, sync)
    state = engine.fail(text(argv[1]), text(argv[2]), free_text(argv[3]), errtype, trace,
                        retry_in, noretry)
    reply = Simple(state.value.encode())
    return reply if sync is None else replicas.hold(s, reply, sync)


@command("JOB.BEAT", arity=-3, flags=WRITE | FAST, group="job", acl=("job-work",), durable=True)
def job_beat(s: Session, argv: list[bytes]) -> Any:
    """JOB.BEAT id token [EXTEND ms]

    Heartbeat: extend the lease of a running job by EXTEND (default: its TIMEOUT) from now.

    Reply: the new deadline (unix ms), or `canceled` if the job was canceled meanwhile (the
    worker should stop).
    Errors: `STALE` for a stale token.
    """
    engine = engine_of(s)
    extend = None
    args = Args(argv, 3)
    while args:
        if args.next_upper() != b"EXTEND":
            raise SyntaxErr()
        extend = positive(args.next(), "EXTEND")
    deadline = engine.beat(text(argv[1]), text(argv[2]), extend)
    return Simple(b"canceled") if deadline is None else deadline


@command("JOB.CANCEL", arity=2, flags=WRITE | FAST, group="job", acl=("job-admin",), durable=True)
def job_cancel(s: Session, argv: list[bytes]) -> Any:
    """JOB.CANCEL id

    Cancel a job that has not finished. A running job's worker learns it from JOB.BEAT.

    Reply: `OK`, once durable.
    Errors: `ERR job <id> is <state>` for a finished job; `ERR no such job`.
    """
    engine = engine_of(s)
    engine.cancel(text(argv[1]))
    return OK


@command("JOB.GET", arity=2, flags=READONLY | FAST, group="job", acl=("job-produce",))
def job_get(s: Session, argv: list[bytes]) -> Any:
    """JOB.GET id

    Everything known about a job.

    Reply: a map with id, queue, type, state, payload, result, attempt, priority, retries,
    timeout, run_at, created, enqueued, started, finished, deadline, worker, key, reason, meta,
    errors (each with type, message, trace, time, attempt), after (parent ids), batch, expire
    and log_lines; nil for an unknown id. A finished job that moved to the archive
    (`job-hot-retention`) is read from there, the same.
    """
    job_id = text(argv[1])
    job = engine_of(s).get(job_id)
    if job is not None:
        return job_reply(job)
    return from_archive(s, lambda archive: archive.get(job_id),
                        lambda found: None if found is None else job_reply(found),
                        None, argv)


@command("JOB.WAIT", arity=-2, flags=READONLY | BLOCKING, group="job", acl=("job-produce",))
def job_wait(s: Session, argv: list[bytes]) -> Any:
    """JOB.WAIT id [TIMEOUT ms]

    Block until the job is finished (succeeded, dead or canceled), up to TIMEOUT
    (default: forever).

    Reply: the job as JOB.GET shows it; nil on timeout.
    Errors: `ERR no such job`.
    """
    engine = engine_of(s)
    timeout = 0
    args = Args(argv, 2)
    while args:
        if args.next_upper() != b"TIMEOUT":
            raise SyntaxErr()
        timeout = non_negative(args.next(), "TIMEOUT")
    job_id = text(argv[1])
    job = engine.get(job_id)
    if job is None:  # unknown, or finished long ago and archived
        return from_archive(s, lambda archive: archive.get(job_id), finished_or_unknown, None,
                            argv)
    if job.state in TERMINAL:
        return job_reply(job)
    reply = Deferred(blocking=True)
    waiter = engine.waiters.for_end(job.id, timeout, lambda done: reply.resolve(
        None if done is None else job_reply(done)))
    reply.on_cancel = lambda: engine.waiters.cancel(waiter)
    reply.timeout_reply = None
    return reply


def finished_or_unknown(job: Job | None) -> Any:
    if job is None:
        raise CommandError("no such job")
    return job_reply(job)


@command("JOB.RETRY", arity=2, flags=WRITE | DENYOOM | FAST, group="job", acl=("job-admin",),
         durable=True)
def job_retry(s: Session, argv: list[bytes]) -> Any:
    """JOB.RETRY id

    Run a finished job (succeeded, dead or canceled) again now, with its full RETRIES again
    (its attempt count and error history carry on).

    Reply: `OK`, once durable.
    Errors: `ERR job <id> is <state>` for a job that has not finished.
    """
    engine = engine_of(s)
    job_id = text(argv[1])
    if job_id in engine.jobs:
        engine.retry(job_id)
        return OK

    def restore(job: Job | None) -> Any:
        if job is None:
            raise CommandError(f"no such job {job_id}")
        engine.restore(job)
        engine.retry(job_id)
        return OK

    held = durably(s, restore)
    return from_archive(s, lambda archive: archive.get(job_id),
                        lambda job: drop_restored(s, [job_id], held(job)), None, argv)


@command("JOB.LIST", arity=-1, flags=READONLY, group="job",
         key_specs=after_keyword("QUEUE", "RO", "access"), acl=("job-admin",))
def job_list(s: Session, argv: list[bytes]) -> Any:
    """JOB.LIST [QUEUE queue] [STATE state] [CURSOR cursor] [COUNT count]

    Page through jobs in creation order, optionally only one queue or state. Like SCAN, a page
    may hold fewer than COUNT (default 100) jobs; continue until the cursor is 0.

    Reply: a two-element array: the next cursor, and an array of job maps as JOB.GET.
    """
    queue = state = None
    cursor, count = "0", 100
    args = Args(argv)
    while args:
        option = args.next_upper()
        if option == b"QUEUE":
            queue = text(args.next())
        elif option == b"STATE":
            state = parse_state(text(args.next()))
        elif option == b"CURSOR":
            cursor = text(args.next())
        elif option == b"COUNT":
            count = min(positive(args.next(), "COUNT"), MAX_COUNT)
        else:
            raise SyntaxErr()
    engine = engine_of(s)
    next_cursor, hot = engine.list_jobs(queue, state, cursor, count)
    scanned_to = None if next_cursor == "0" else next_cursor

    def page(archived: list[Job]) -> list[Any]:
        archived = [j for j in archived if j.id not in engine.jobs]  # memory is newer
        last, jobs = merge_pages(hot, scanned_to, archived, count)
        return [last.encode(), [job_reply(j) for j in jobs]]

    if state is not None and state not in TERMINAL:
        return page([])  # only finished jobs are ever archived
    return from_archive(
        s, lambda archive: archive.page(cursor, scanned_to, queue, state, count), page,
        list[Job]())
