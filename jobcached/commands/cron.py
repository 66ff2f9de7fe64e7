"""Cron commands: CRON.SET, DEL, GET, LIST, PAUSE, RESUME (rules in jobs/cron.py)."""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import Args
from jobcached.commands.jobs import (
    ONE_OFF_OPTIONS,
    check_size,
    engine_of,
    parse_push_options,
    text,
)
from jobcached.commands.keyspec import at_index
from jobcached.commands.registry import READONLY, WRITE, command
from jobcached.errors import CommandError
from jobcached.jobs.cron import MISSED_POLICIES, CronEntry
from jobcached.jobs.engine import PushOptions
from jobcached.net.replies import OK
from jobcached.server.session import Session


@command("CRON.SET", arity=-5, flags=WRITE, group="cron", keys=(3, 3, 1),
         key_specs=at_index(3, "RW", "insert"), acl=("job-admin",), durable=True)
def cron_set(s: Session, argv: list[bytes]) -> Any:
    """CRON.SET name expression queue payload [TZ zone] [MISSED skip|once] [TYPE type]
    [PRIORITY priority] [RETRIES retries] [BACKOFF base-ms [max-ms]] [TIMEOUT ms]
    [META field value [META field value ...]]

    Create or replace the cron entry `name`: on every slot of the expression, push a job to
    `queue` with `payload` and the JOB.PUSH options given. The expression has 5 fields
    (minute hour day month weekday), 6 with seconds first, or is an alias (@yearly,
    @monthly, @weekly, @daily, @hourly); TZ is an IANA zone (default UTC). Each job carries
    the idempotency key `cron:<name>:<slot>` and META `cron` and `cron_slot` (unix ms), and a
    slot never fires twice: not after a restart, a clock step or CRON.SET of the same name.
    MISSED decides what happens to slots that passed more than `cron-missed-grace` (default
    one minute) ago while the server was down: `skip` (default) drops them, `once` runs one
    job for the newest of them. Of the slots still within the grace, the newest runs.

    Reply: `OK`, once durable.
    Errors: `ERR invalid cron expression`, `ERR unknown time zone`; DELAY, AT, KEY, KEYTTL,
    AFTER, BATCH and EXPIRE are syntax errors here.

    Example: `CRON.SET nightly-report "30 2 * * *" reports "{}" TZ Europe/Paris RETRIES 3`
    """
    engine = engine_of(s)
    check_size(s, argv[4], "payload")
    settings = {"tz": "UTC", "missed": "skip"}

    def zone(args: Args) -> None:
        settings["tz"] = text(args.next())

    def missed(args: Args) -> None:
        policy = text(args.next()).lower()
        if policy not in MISSED_POLICIES:
            raise CommandError("MISSED must be skip or once")
        settings["missed"] = policy

    opts = PushOptions()
    parse_push_options(Args(argv, 5), opts, extra={b"TZ": zone, b"MISSED": missed},
                       refused=ONE_OFF_OPTIONS)
    options = {"type": opts.type, "priority": opts.priority, "retries": opts.retry.retries,
               "backoff": opts.retry.backoff_ms and list(opts.retry.backoff_ms),
               "timeout": opts.timeout_ms, "meta": opts.meta}
    entry = CronEntry(text(argv[1]), text(argv[2]), settings["tz"], text(argv[3]), argv[4],
                      options, settings["missed"])
    engine.crons.set(entry)
    return OK


@command("CRON.DEL", arity=2, flags=WRITE, group="cron", acl=("job-admin",), durable=True)
def cron_del(s: Session, argv: list[bytes]) -> Any:
    """CRON.DEL name

    Delete a cron entry (jobs it already pushed are not touched).

    Reply: 1 if it existed, else 0; once durable.

    Example: `CRON.DEL nightly-report` → `(integer) 1`
    """
    engine = engine_of(s)
    return int(engine.crons.delete(text(argv[1])))


def entry_reply(entry: CronEntry) -> dict[bytes, Any]:
    options = entry.options
    return {
        b"name": entry.name.encode(), b"expression": entry.expr.encode(),
        b"tz": entry.tz.encode(), b"queue": entry.queue.encode(), b"payload": entry.payload,
        b"missed": entry.missed.encode(), b"paused": int(entry.paused),
        b"next": 0 if entry.paused else entry.next_ms, b"last_slot": entry.last_slot,
        b"last_job": entry.last_job.encode(),
        b"type": (options.get("type") or entry.queue).encode(),
        b"priority": options.get("priority", 0), b"retries": options.get("retries"),
        b"backoff": list(options["backoff"]) if options.get("backoff") else None,
        b"timeout": options.get("timeout"),
        b"meta": {k.encode(): v.encode() for k, v in options.get("meta", {}).items()},
    }


@command("CRON.GET", arity=2, flags=READONLY, group="cron", acl=("job-admin",))
def cron_get(s: Session, argv: list[bytes]) -> Any:
    """CRON.GET name

    One cron entry.

    Reply: a map with name, expression, tz, queue, payload, missed, paused (0 or 1), next
    (the next slot, unix ms; 0 while paused), last_slot, last_job (the id of the job the last
    slot pushed), type, priority, retries, backoff ([base-ms, max-ms] or nil), timeout (nil:
    the default) and meta; nil for an unknown name.

    Example: `CRON.GET nightly-report` → `1# "name" => "nightly-report", 2# "expression" =>
    "30 2 * * *", 3# "tz" => "Europe/Paris", ..., 8# "next" => (integer) 1767231000000, ...`
    """
    entry = engine_of(s).crons.get(text(argv[1]))
    return None if entry is None else entry_reply(entry)


@command("CRON.LIST", arity=1, flags=READONLY, group="cron", acl=("job-admin",))
def cron_list(s: Session, argv: list[bytes]) -> Any:
    """CRON.LIST

    Every cron entry, by name.

    Reply: an array of maps as CRON.GET shows them.

    Example: `CRON.LIST` → `1) 1# "name" => "nightly-report" ...`
    """
    crons = engine_of(s).crons.entries
    return [entry_reply(crons[name]) for name in sorted(crons)]


@command("CRON.PAUSE", arity=2, flags=WRITE, group="cron", acl=("job-admin",), durable=True)
def cron_pause(s: Session, argv: list[bytes]) -> Any:
    """CRON.PAUSE name

    Stop firing an entry until CRON.RESUME. Slots that pass while it is paused are not owed
    later.

    Reply: `OK`, once durable.
    Errors: `ERR no such cron entry`.

    Example: `CRON.PAUSE nightly-report` → `OK`
    """
    engine = engine_of(s)
    engine.crons.pause(text(argv[1]), True)
    return OK


@command("CRON.RESUME", arity=2, flags=WRITE, group="cron", acl=("job-admin",), durable=True)
def cron_resume(s: Session, argv: list[bytes]) -> Any:
    """CRON.RESUME name

    Fire a paused entry again, from its next slot on.

    Reply: `OK`, once durable.
    Errors: `ERR no such cron entry`.

    Example: `CRON.RESUME nightly-report` → `OK`
    """
    engine = engine_of(s)
    engine.crons.pause(text(argv[1]), False)
    return OK
