"""Run one command: look it up, apply the table's policy, call the handler, count it.

The checks happen in Redis' `processCommand` order, with Redis 7's exact error texts: unknown
command or subcommand, then arity, then authentication, then ACL permissions (aclcheck.py),
then `min-replicas-to-write` (`-NOREPLICAS`), then a follower's refusal of writes (`-READONLY`).
Handlers raise `CommandError`; this is where an exception becomes an `ErrorReply` value, so
handlers never build error bytes.
"""

from __future__ import annotations

import logging
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from jobcached.commands.aclcheck import check as acl_check
from jobcached.commands.monitor import FEED_FIRST, feed, refuse_in_monitor_mode
from jobcached.commands.registry import COMMANDS, Command, Flag
from jobcached.commands.tracking import remember_read
from jobcached.errors import CommandError, NoAuthError
from jobcached.net.replies import QUEUED, ErrorReply
from jobcached.server.session import Session
from jobcached.server.state import FAILED, USEC

if TYPE_CHECKING:
    from jobcached.server.state import ServerState

log = logging.getLogger("jobcached.dispatch")

#: CLIENT: its subcommands (CLIENT CACHING among them) keep the CLIENT CACHING flag
_CLIENT = COMMANDS[b"CLIENT"]

#: Commands that run at once even inside MULTI (Redis' list in processCommand: UNWATCH is
#: queued, so it cannot rescue a transaction whose watched key already changed).
TRANSACTION_CONTROL = frozenset({"EXEC", "DISCARD", "MULTI", "WATCH", "QUIT", "RESET"})

#: What a RESP2 connection in subscribe mode may still run (Redis' list, S* included).
SUBSCRIBE_MODE_COMMANDS = frozenset({"SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE",
                                     "SSUBSCRIBE", "SUNSUBSCRIBE", "PING", "QUIT", "RESET"})

#: A client's write on a follower (Redis' text; the master session does not come here).
READONLY_ERROR = "READONLY You can't write against a read only replica."

#: A write while fewer followers than min-replicas-to-write are good (Redis' text).
NOREPLICAS_ERROR = "NOREPLICAS Not enough good replicas to write."

#: Redis truncates names and arguments quoted back in error messages to this many characters.
ERROR_ECHO_CHARS = 128


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def unknown_command(argv: list[bytes]) -> ErrorReply:
    args = ""
    for arg in argv[1:]:
        if len(args) >= ERROR_ECHO_CHARS:
            break
        args += f"'{_text(arg)[: ERROR_ECHO_CHARS - len(args)]}' "
    name = _text(argv[0])[:ERROR_ECHO_CHARS]
    return ErrorReply(f"ERR unknown command '{name}', with args beginning with: {args}")


def resolve(argv: list[bytes]) -> Command | ErrorReply:
    """The command (or subcommand) argv names, or the error Redis gives for it."""
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        cmd = COMMANDS.get(argv[0].upper())
        if cmd is None:
            return unknown_command(argv)
    if cmd.subcommands and len(argv) >= 2:
        sub = cmd.subcommands.get(argv[1].upper())
        if sub is None:
            return ErrorReply(f"ERR unknown subcommand '{_text(argv[1])[:ERROR_ECHO_CHARS]}'. "
                              f"Try {cmd.name} HELP.")
        cmd = sub
    arity = cmd.arity
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        return ErrorReply(f"ERR wrong number of arguments for '{cmd.fullname}' command")
    return cmd


def execute(s: Session, argv: list[bytes]) -> Any:
    """Run argv for session s and return its reply value (never raises CommandError).

    The common case, a known command with a valid argument count from a client authenticated
    as a user that may run anything (`unchecked`: the default user, unless ACL rules limit it),
    outside MULTI and subscribe mode, with no CLIENT PAUSE, MONITOR or busy script (`gated`),
    passes every check below by definition, so it goes straight to `call`; anything else
    takes `_execute_checked`, which finds the right error.
    """
    server = s.server
    server.stats.total_commands_processed += 1
    cmd = COMMANDS.get(argv[0])
    if (cmd is not None and cmd.min_argc <= len(argv) <= cmd.max_argc and s.unchecked
            and not server.gated and s.multi is None and not s.sub_channels and not s.sub_patterns
            and not s.sub_shard_channels):
        s.last_command = cmd.fullname
        return call(s, cmd, argv)
    return _execute_checked(s, argv)


def _execute_checked(s: Session, argv: list[bytes]) -> Any:
    """`execute` with every check, in Redis' order (the command is counted already)."""
    busy = s.server.busy_script
    if busy is not None:  # a script ran past busy-reply-threshold
        refused = busy.refuse(s, argv)
        if refused is not None:
            s.server.stats.total_error_replies += 1
            s.server.count_error("BUSY")
            return refused
    cmd = resolve(argv)
    stats = s.server.stats
    if type(cmd) is ErrorReply:
        stats.total_error_replies += 1
        s.server.count_error("ERR")
        if s.multi is not None:
            s.multi_error = True
        return cmd
    assert isinstance(cmd, Command)
    s.last_command = cmd.fullname  # CLIENT LIST `cmd`: what the client sent, not what EXEC ran
    if not s.authenticated and cmd.needs_auth:
        s.server.count_rejected(cmd, NoAuthError.code)
        return ErrorReply(NoAuthError().wire)
    if not s.unchecked and s.authenticated:
        refused = acl_check(s, cmd, argv, "multi" if s.multi is not None else "toplevel")
        if refused is not None:
            if s.multi is not None:
                s.multi_error = True
            return refused
    if s.server.gated and _writes(s, cmd) and s.server.leader.refuses_writes():
        s.server.count_rejected(cmd, "NOREPLICAS")
        if cmd.name == "EXEC" and s.multi is not None:  # Redis' execCommandAbort
            s.multi, s.multi_error = None, False
            s.unwatch()
            return ErrorReply(f"EXECABORT Transaction discarded because of: {NOREPLICAS_ERROR}")
        if s.multi is not None:
            s.multi_error = True
        return ErrorReply(NOREPLICAS_ERROR)
    if s.server.follower is not None and cmd.flags & Flag.WRITE:
        s.server.count_rejected(cmd, "READONLY")
        if s.multi is not None:
            s.multi_error = True
        return ErrorReply(READONLY_ERROR)
    if (s.subscribed and not s.resp3
            and (cmd.parent is not None or cmd.name not in SUBSCRIBE_MODE_COMMANDS)):
        s.server.count_rejected(cmd, "ERR")
        return ErrorReply(f"ERR Can't execute '{cmd.fullname}': only (P|S)SUBSCRIBE / "
                          "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
    if s.server.gated:
        gate = _gate(s, cmd, argv)
        if gate is not None:
            return gate
    if s.multi is not None and (cmd.parent is not None or cmd.name not in TRANSACTION_CONTROL):
        if cmd.flags & Flag.NO_MULTI:
            s.multi_error = True
            return ErrorReply("ERR Command not allowed inside a transaction")
        s.multi.append(argv)
        return QUEUED
    return call(s, cmd, argv)


def _writes(s: Session, cmd: Command) -> bool:
    """A write command, or an EXEC with a write queued (Redis' is_write_command)."""
    if cmd.flags & Flag.WRITE:
        return True
    if cmd.name != "EXEC" or s.multi is None:
        return False
    for queued in s.multi:
        found = resolve(queued)
        if isinstance(found, Command) and found.flags & Flag.WRITE:
            return True
    return False


def _gate(s: Session, cmd: Command, argv: list[bytes]) -> Any:
    """A monitoring client's refusal, or a command held by CLIENT PAUSE; None to go on."""
    if s.monitoring:  # a replica for Redis: never paused, kept off the keyspace
        refusal = refuse_in_monitor_mode(cmd)
        if refusal is None:
            return None
        s.server.count_rejected(cmd, refusal.code)
        return ErrorReply(refusal.wire)
    pause = s.server.pause
    if pause is not None and pause.holds(s, cmd):
        return pause.hold(s, argv)
    return None


def _record_slow(s: Session, cmd: Command, argv: list[bytes], usec: int) -> None:
    """A call that reached the slow log's threshold or the latency monitor's (or both)."""
    server = s.server
    now_s = server.clock.now_ms() // 1000
    if usec >= server.slowlog.threshold_us:
        server.slowlog.record(cmd.fullname, argv, usec, now_s, s.addr, s.name)
    if usec >= server.latency.threshold_us:
        server.latency.add("fast-command" if cmd.flags & Flag.FAST else "command", usec // 1000,
                           now_s)


def call(s: Session, cmd: Command, argv: list[bytes], may_oom: bool = False) -> Any:
    """Run a resolved, permitted command (EXEC and scripts run theirs through here too).

    A cache write whose handler changed the keyspace (`CacheStats.dirty` moved) and did not
    log an effect of its own has its argv logged as its effect (Redis' call() and
    propagateNow; server/effects.py); then clients blocked on keys it filled are served
    (blocking.py), so their pops follow it in the log, as in Redis' processCommand.

    Every call is timed once; the duration feeds the command's counters (INFO commandstats,
    metrics, LATENCY HISTOGRAM: one list increment, see state.USEC), past
    `slowlog-log-slower-than` the slow log, and past `latency-monitor-threshold` the latency
    monitor; then the monitors, if any, see it (commands/monitor.py), and a tracking client's
    reads are remembered (tracking.py). `may_oom` skips the maxmemory check: a script flagged
    `allow-oom`, or one that wrote already (it cannot stop halfway).

    One function, not a wrapper around another: this runs for every command, and each check
    that rarely applies (maxmemory, MONITOR, tracking) costs one test when it does not.
    """
    server = s.server
    server.db = s.db
    caller = server.current_client  # None unless a transaction or script runs this
    if caller is None:
        server.current_client = s
    if cmd.denyoom and server.dbs.maxmemory and not may_oom:
        refused = _make_room(server, cmd)
        if refused is not None:
            if caller is None:
                server.current_client = None
            return refused
    gated = server.gated  # a MONITOR or a CLIENT PAUSE is in force
    if gated and server.monitors and cmd.name in FEED_FIRST:
        feed(s, cmd, argv)
    propagates = cmd.propagates
    if propagates:  # a cache write: did it change anything, and did it log that itself?
        cache_stats = server.cache_stats
        dirty = cache_stats.dirty
        effects = server.effects
        effects.own = False
    started = perf_counter_ns()
    try:
        reply = cmd.handler(s, argv)  # type: ignore[misc]
    except CommandError as exc:
        server.command_stats[cmd][FAILED] += 1
        server.stats.total_error_replies += 1
        server.count_error(exc.code)
        reply = ErrorReply(exc.wire)
    except Exception:
        # A bug, not a client error: keep the connection and the server alive, and say so.
        log.exception("command failed", extra={"command": cmd.fullname})
        server.command_stats[cmd][FAILED] += 1
        server.stats.total_error_replies += 1
        server.stats.unexpected_error_replies += 1
        server.count_error("ERR")
        reply = ErrorReply(f"ERR internal error while running '{cmd.fullname}'")
    usec = (perf_counter_ns() - started) // 1000
    if propagates and cache_stats.dirty != dirty and not effects.own:
        effects.command(argv, cmd)
    stats = server.command_stats[cmd]
    stats[usec.bit_length()] += 1
    stats[USEC] += usec
    if usec >= server.notable_us:
        _record_slow(s, cmd, argv, usec)
    if caller is None:
        server.current_client = None
        if server.ready_keys:  # served after the effect that made them ready
            assert server.blocked_keys is not None
            server.blocked_keys.serve_ready()
    if gated and server.monitors and cmd.name not in FEED_FIRST:
        feed(s, cmd, argv)
    # Tracking remembers what a command read for the client that sent it: the script's
    # caller for the commands of a script (Redis' script_caller).
    if s.tracking is not None or (caller is not None and caller.tracking is not None):
        _remember(s, cmd, argv, caller)
    return reply


def _make_room(server: ServerState, cmd: Command) -> ErrorReply | None:
    """Evict down to maxmemory before a command that may grow memory; its -OOM if it cannot."""
    try:
        evicting = perf_counter_ns()
        if server.dbs.ensure_memory():
            server.latency.add("eviction-cycle", (perf_counter_ns() - evicting) // 1_000_000,
                               server.clock.now_ms() // 1000)
    except CommandError as exc:
        server.count_rejected(cmd, exc.code)
        return ErrorReply(exc.wire)
    return None


def _remember(s: Session, cmd: Command, argv: list[bytes], caller: Session | None) -> None:
    tracked = s if s.tracking is not None else caller
    assert tracked is not None and tracked.tracking is not None
    remember_read(tracked, cmd, argv, caller or s)
    # CLIENT CACHING lasts one command, or one transaction (Redis' resetClient).
    if caller is None and s.multi is None and cmd.parent is not _CLIENT:
        tracked.tracking.caching = False
