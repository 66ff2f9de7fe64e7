"""ACL enforcement: may this session's user run this command line? (Redis' ACLCheckAllPerm.)

Why here and not in acl.py: the answer needs the command table's key specs
(commandinfo.keys_and_flags) and, for job commands that name a job by id, the job engine: the
job's queue is the key those commands are checked against, so a worker limited to `~builds-*`
cannot ACK, CANCEL or RETRY a job of another queue. A queue name is checked as a key: `~builds-*`
grants the queues named `builds-*`.

Order and texts follow Redis 7.0: the command first, then each key with the access its key spec
declares (`access` needs read, `insert` / `update` / `delete` need write: `%R~` alone allows only
reads), then pub/sub channels; each refusal goes to ACL LOG.
"""

from __future__ import annotations

import functools

from jobcached.commands.commandinfo import variable_flags
from jobcached.commands.keyspec import KeySpec
from jobcached.commands.registry import Command, lookup
from jobcached.net.replies import ErrorReply
from jobcached.security.acl import READ, WRITE, Selector, User
from jobcached.security.acllog import LogEntry
from jobcached.server.session import Session
from jobcached.settings import redisconfig

#: job commands that take a job id: the id's position and the access they need on its queue
JOB_ID_COMMANDS = {"JOB.ACK": (1, READ | WRITE), "JOB.FAIL": (1, READ | WRITE),
                   "JOB.BEAT": (1, READ | WRITE), "JOB.LOG": (1, READ | WRITE),
                   "JOB.CANCEL": (1, WRITE), "JOB.RETRY": (1, WRITE),
                   "JOB.GET": (1, READ), "JOB.WAIT": (1, READ), "JOB.LOGS": (1, READ)}

#: command -> (first channel index, every argument after it too, the names are patterns)
CHANNEL_COMMANDS = {"PUBLISH": (1, False, False), "SPUBLISH": (1, False, False),
                    "SUBSCRIBE": (1, True, False), "SSUBSCRIBE": (1, True, False),
                    "PSUBSCRIBE": (1, True, True)}

_KEY_WRITES = frozenset({"insert", "update", "delete"})

#: a refusal: (reason, the object refused: command name, key or channel)
Denial = tuple[str, bytes]


def denial(s: Session, user: User, cmd: Command, argv: list[bytes],
           archived_queue: bytes | None = None) -> Denial | None:
    """Why `user` may not run argv, or None when one of its selectors allows it all. Of the
    selectors' refusals, Redis reports the most relevant: a channel before a key before the
    command, and among equals the one at the later argument. `archived_queue`: the queue of
    the job argv names when only the archive knows it (see `archived_job_refusal`)."""
    worst = _selector_denial(s, user.root, cmd, argv, archived_queue)
    if worst is None:
        return None
    for selector in user.selectors:
        found = _selector_denial(s, selector, cmd, argv, archived_queue)
        if found is None:
            return None
        if found[:2] > worst[:2]:
            worst = found
    return worst[2]


#: Redis' ACL_DENIED_* ranks, for picking the most relevant refusal
_RANK = {"command": 1, "key": 2, "channel": 4}


def _selector_denial(s: Session, selector: Selector, cmd: Command, argv: list[bytes],
                     archived_queue: bytes | None) -> tuple[int, int, Denial] | None:
    """(rank, argument index, denial) of what the selector refuses, or None."""
    # Commands allowed before AUTH (AUTH, HELLO, QUIT, RESET) are never refused, as Redis.
    if cmd.needs_auth and not selector.command_allowed(cmd, argv):
        return _RANK["command"], 0, ("command", cmd.fullname.encode())
    if not selector.allkeys:
        for spec, needed in _key_plan(cmd):
            indexes = spec.find(argv)
            if indexes is None:  # arguments the command itself will refuse: no keys
                break
            if needed is None:
                needed = _needed(variable_flags(cmd, argv) or spec.flags)
            for index in indexes:
                if not selector.key_allowed(argv[index], needed):
                    return _RANK["key"], index, ("key", argv[index])
        job_id = JOB_ID_COMMANDS.get(cmd.name)
        if job_id is not None:
            queue = _queue_of(s, argv, job_id[0]) or archived_queue
            if queue is not None and not selector.key_allowed(queue, job_id[1]):
                return _RANK["key"], job_id[0], ("key", queue)
    if not selector.allchannels:
        channels = CHANNEL_COMMANDS.get(cmd.name)
        if channels is not None and cmd.parent is None:
            first, many, patterns = channels
            last = len(argv) if many else first + 1
            for index in range(first, last):
                if not selector.channel_allowed(argv[index], patterns):
                    return _RANK["channel"], index, ("channel", argv[index])
    return None


@functools.cache
def _key_plan(cmd: Command) -> tuple[tuple[KeySpec, int | None], ...]:
    """The command's key specs with the access each needs (None: it depends on the
    arguments), worked out once per command: a pure function of the command table."""
    return tuple((spec, None if "variable_flags" in spec.flags else _needed(spec.flags))
                 for spec in cmd.specs() if "not_key" not in spec.flags)


def _needed(flags: tuple[str, ...]) -> int:
    """The access key-spec flags ask for: `access` reads, `insert` / `update` / `delete`
    write."""
    return (READ if "access" in flags else 0) | (WRITE if _KEY_WRITES.intersection(flags) else 0)


def _queue_of(s: Session, argv: list[bytes], index: int) -> bytes | None:
    """The queue of the job argv names (None when there is no such job: the command then
    answers for itself)."""
    engine = s.server.jobs
    if engine is None or index >= len(argv):
        return None
    job = engine.get(argv[index].decode("utf-8", "surrogateescape"))
    return None if job is None else job.queue.encode()


def refusal_text(reason: str, cmd: Command) -> str:
    """The -NOPERM error of dispatch and EXEC (Redis 7.0's processCommand)."""
    if reason == "command":
        return f"NOPERM this user has no permissions to run the '{cmd.fullname}' command"
    if reason == "key":
        return "NOPERM this user has no permissions to access one of the keys used as arguments"
    return "NOPERM this user has no permissions to access one of the channels used as arguments"


#: what a script's redis.call says instead (Redis 7.0's scriptCall)
SCRIPT_TEXTS = {
    "command": "The user executing the script can't run this command or subcommand",
    "key": "The user executing the script can't access at least one of the keys mentioned "
           "in the command arguments",
    "channel": "The user executing the script can't publish to the channel mentioned in the "
               "command",
}


def log_denial(s: Session, reason: str, context: str, obj: bytes,
               username: bytes | None = None) -> None:
    """Add an ACL LOG entry for a refusal (or a failed AUTH, reason `auth`)."""
    server = s.server
    max_len = int(server.config.redis_params.get("acllog-max-len",
                                                 redisconfig.default("acllog-max-len")))
    server.acl.log.add(LogEntry(reason, context, obj,
                                s.user.name if username is None else username,
                                server.clock.now_ms(), s.describe()), max_len)


def check(s: Session, cmd: Command, argv: list[bytes], context: str) -> ErrorReply | None:
    """dispatch / EXEC: the -NOPERM reply for a refused command (logged), or None."""
    found = denial(s, s.user, cmd, argv)
    if found is None:
        return None
    reason, obj = found
    log_denial(s, reason, context, obj)
    s.server.count_rejected(cmd, "NOPERM")
    return ErrorReply(refusal_text(reason, cmd))


def archived_job_refusal(s: Session, argv: list[bytes], queue: str) -> ErrorReply | None:
    """A job command whose job only the archive holds: dispatch could not see its queue, so
    the check runs again with it once the archive has answered (otherwise a user limited to
    `~builds-*` could read another queue's finished jobs). The -NOPERM reply, or None."""
    if s.unchecked:
        return None
    cmd = lookup(argv[0])
    if cmd is None:
        return None
    found = denial(s, s.user, cmd, argv, queue.encode())
    if found is None:
        return None
    log_denial(s, found[0], "toplevel", found[1])
    s.server.count_error("NOPERM")
    return ErrorReply(refusal_text(found[0], cmd))


def script_check(s: Session, cmd: Command, argv: list[bytes]) -> ErrorReply | None:
    """redis.call run by session s's script: the error for a refused command (logged, context
    lua), or None."""
    found = denial(s, s.user, cmd, argv)
    if found is None:
        return None
    log_denial(s, found[0], "lua", found[1])
    return ErrorReply("ERR " + SCRIPT_TEXTS[found[0]])
