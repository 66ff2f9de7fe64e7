"""Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD | EXISTS | FLUSH | KILL.

The Lua side lives in `jobcached/scripting/` (runtime, sandbox, conversions); this module
connects it to the server:

* `redis.call` runs our own command table through `dispatch.call`, as a client's command does,
  as a fake client (Redis' Lua client), after the checks Redis makes for scripts (unknown
  command, arity, commands not allowed from scripts, writes from read-only scripts). Blocking
  commands are refused, as in Redis 7.0 (their `noscript` flag), except BLMPOP and BZMPOP,
  which 7.0 lets scripts call and which then do not block; XREAD and XREADGROUP run and refuse
  their BLOCK option themselves (`Session.script`), as Redis' do; JOB.FETCH and JOB.LOGS are
  refused only with BLOCK, in the same words.
* Job commands: a script's job writes are applied and logged like a client's, but a script
  cannot wait in the middle for the WAL; so `redis.call` takes the value of a job write's
  held reply (`Deferred.pending`) at once, and the script's own reply is held instead, once,
  until every job record it logged is as durable as `appendfsync` promises (as EXEC's is).
  Only the script's own reply changes: a worker blocked in JOB.FETCH that a push inside the
  script serves still hears back once its lease is durable. The job archive is not read from
  a script (SQLite answers later): scripts see the jobs in memory. A job command refused
  because the WAL is failing returns its -MISCONF like any error (pcall catches it); the
  script's earlier cache writes stand, as every write before a failing command in Redis does.
* Effects: while a script runs, the effect sink keeps its effects in a group
  (`Effects.begin_group`); when the script ends, what it wrote is logged as its commands'
  effects, wrapped in MULTI/EXEC when there are several (Redis 7's effects replication), never
  as the EVAL itself.
* Atomicity: a script runs inside `blocking.atomic`, like EXEC: blocked clients served by its
  writes are served after it. Past `busy-reply-threshold` a script is suspended between
  slices (see `scripting/engine.py`); meanwhile `ServerState.busy_script` makes the dispatcher
  answer -BUSY to everything but SCRIPT KILL, SHUTDOWN and Redis' other `allow_busy` commands.
* Functions (FCALL, `commands/functions.py`) run through the same `Scripting.execute`; a busy
  function's -BUSY names FUNCTION KILL, and SCRIPT KILL refuses to stop it.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import _get_running_loop
from typing import TYPE_CHECKING, Any

from jobcached import REDIS_COMPAT_VERSION
from jobcached.commands import blocking
from jobcached.commands.aclcheck import script_check
from jobcached.commands.dispatch import NOREPLICAS_ERROR, READONLY_ERROR, call
from jobcached.commands.registry import (
    ALLOW_BUSY,
    BLOCKING,
    COMMANDS,
    READONLY,
    STALE,
    WRITE,
    Command,
    command,
    container,
    subcommand,
)
from jobcached.errors import CommandError
from jobcached.net.replies import OK, UNKNOWN, Deferred, ErrorReply
from jobcached.scripting.engine import Script, ScriptEngine, ScriptError, ScriptRun
from jobcached.scripting.functions import Libraries
from jobcached.server.session import Session

if TYPE_CHECKING:
    from jobcached.server.state import ServerState

#: Commands Redis 7.0 flags `noscript` (among those we have), by top-level name; blocking
#: commands are refused through their flag.
NOSCRIPT_COMMANDS = frozenset({
    "AUTH", "HELLO", "QUIT", "RESET", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH",
    "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE",
    "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "SCRIPT", "FCALL", "FCALL_RO", "FUNCTION",
    "SHUTDOWN", "SAVE", "BGSAVE", "WAIT", "MONITOR", "SYNC", "PSYNC", "REPLICAOF", "SLAVEOF",
    "MIGRATE",  # not in Redis' list: ours waits on the network, which a script cannot do
})
#: Blocking commands Redis 7.0 does not flag `noscript`: a script may call them, and they
#: answer at once (scripts run atomically), with data or as on a timeout.
SCRIPT_BLOCKING_ALLOWED = frozenset({"BLMPOP", "BZMPOP", "XREAD", "XREADGROUP"})
#: Command groups of the job server: their replies wait for the WAL (see the module docstring).
JOB_GROUPS = frozenset({"job", "queue", "dlq", "cron", "batch"})
#: Blocking job commands a script may run without their BLOCK option, by name: the index of
#: their first option (options are name-value pairs).
BLOCK_OPTION_COMMANDS = {"JOB.FETCH": 1, "JOB.LOGS": 2}

BUSY = ErrorReply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
                  "SHUTDOWN NOSAVE.")
#: What others get while a function (FCALL) is busy.
FUNCTION_BUSY = ErrorReply("BUSY Redis is busy running a script. You can only call FUNCTION "
                           "KILL or SHUTDOWN NOSAVE.")
UNKILLABLE = ("Sorry the script already executed write commands against the dataset. You can "
              "either wait the script termination or kill the server in a hard way using the "
              "SHUTDOWN NOSAVE command.")


class _NoConnection:
    """The script client's transport: it never has a socket (Redis' fake Lua client)."""

    def close_after_reply(self) -> None:
        """A script cannot close a connection (QUIT and CLIENT KILL of self are refused)."""

    def abort(self) -> None:
        """Nothing to drop."""

    def push(self, value: Any, pubsub: bool = False) -> None:
        """Pushes to the script client go nowhere (it subscribes to nothing)."""

    def push_after_reply(self, value: Any) -> None:
        """Nor do tracking invalidations (it never turns tracking on)."""

    def query_buffer_bytes(self) -> int:
        return 0

    def output_buffer_bytes(self) -> int:
        return 0


#: What a client may still run while a script is busy: Redis 7.0's `allow_busy` commands.
BUSY_ALLOWED = frozenset({b"AUTH", b"HELLO", b"RESET", b"MULTI", b"QUIT", b"WATCH", b"UNWATCH",
                          b"DISCARD", b"SHUTDOWN"})


#: Subcommands that run while a script is busy (SCRIPT KILL, FUNCTION KILL, FUNCTION STATS):
#: each answers for itself when the busy script is not of its kind.
BUSY_SUBCOMMANDS = frozenset({(b"SCRIPT", b"KILL"), (b"FUNCTION", b"KILL"),
                              (b"FUNCTION", b"STATS")})


class BusyScript:
    """The script past its threshold, as the dispatcher sees it: what other clients may run,
    and what FUNCTION STATS tells of it (the command that started it, for how long)."""

    def __init__(self, run: ScriptRun, argv: list[bytes]) -> None:
        self.run = run
        self.argv = argv
        self.busy = BUSY if run.script.library is None else FUNCTION_BUSY

    def duration_ms(self) -> int:
        return int((time.monotonic() - self.run.started) * 1000)

    def refuse(self, s: Session, argv: list[bytes]) -> ErrorReply | None:
        """-BUSY for `argv`, or None if it may run now. As in Redis, a command refused inside
        MULTI makes EXEC fail, and EXEC itself is refused with EXECABORT."""
        name = argv[0].upper()
        if name in BUSY_ALLOWED:
            return None
        if len(argv) == 2 and (name, argv[1].upper()) in BUSY_SUBCOMMANDS:
            return None
        if name == b"EXEC":
            if s.multi is not None:
                s.multi = None
                s.multi_error = False
                s.unwatch()
            return ErrorReply("EXECABORT Transaction discarded because of: " + self.busy.text)
        if s.multi is not None:
            s.multi_error = True
        return self.busy


class Scripting:
    """Per-server scripting state: the engine, the client scripts run as, buffered effects."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.session = Session(server, _NoConnection(), "lua", "", True)
        self.session.script = True
        self.engine = ScriptEngine(self._call, lambda: server.config.busy_reply_threshold,
                                   server.config.lua_max_memory, REDIS_COMPAT_VERSION)
        #: the libraries of Redis 7 functions (commands/functions.py)
        self.libraries = Libraries()
        #: command -> (its refusal from scripts or None, is it a write): flag tests cost a
        #: Python-level call each, and redis.call is the hot path of a script
        self._policies: dict[Command, tuple[ErrorReply | None, bool, bool]] = {}
        #: the blocked-keys registry, looked up once: every run enters and leaves it
        self._blocked = blocking.registry(server)

    def _call(self, argv: list[bytes], run: ScriptRun) -> Any:
        """`redis.call`: Redis' checks for scripts (scriptCall), then the dispatcher's call."""
        cmd = COMMANDS.get(argv[0]) or COMMANDS.get(argv[0].upper())
        if cmd is not None and cmd.subcommands and len(argv) >= 2:
            cmd = cmd.subcommands.get(argv[1].upper())
        if cmd is None:
            return ErrorReply("ERR Unknown Redis command called from script")
        if not cmd.min_argc <= len(argv) <= cmd.max_argc:
            return ErrorReply("ERR Wrong number of args calling Redis command from script")
        policy = self._policies.get(cmd)
        if policy is None:
            policy = self._policies[cmd] = _policy(cmd)
        refusal, writes, job = policy
        if refusal is not None:
            return refusal
        caller = self.server.current_client
        if caller is not None and not caller.unchecked:
            refused = script_check(caller, cmd, argv)
            if refused is not None:
                return refused
        first_option = BLOCK_OPTION_COMMANDS.get(cmd.name)
        if first_option is not None and _blocks(argv, first_option):
            return ErrorReply(f"ERR {cmd.fullname} command is not allowed with BLOCK option "
                              f"from scripts")
        may_oom = run.wrote  # Redis checks maxmemory at a script's first write only
        if writes:
            if run.readonly:
                return ErrorReply("ERR Write commands are not allowed from read-only scripts.")
            if self.server.follower is not None:
                return ErrorReply(READONLY_ERROR)
            if self.server.gated and self.server.leader.refuses_writes():
                return ErrorReply(NOREPLICAS_ERROR)
            run.wrote = True
        if not may_oom and cmd.denyoom:
            flags = run.script.flags
            may_oom = flags is not None and "allow-oom" in flags
        self.session.resp3 = run.resp3
        if not job:
            return call(self.session, cmd, argv, may_oom)
        server = self.server
        effects = server.effects
        logged = effects.job_records
        server.in_script_job_call = True
        try:
            reply = call(self.session, cmd, argv, may_oom)
            # The script's reply waits for the records instead (see `_finish`).
            if type(reply) is Deferred and reply.pending is not UNKNOWN:
                return reply.pending
            return reply
        finally:
            server.in_script_job_call = False
            # It logged records (a refused write logged none): the reply waits for them.
            if effects.job_records != logged:
                run.durable = True

    # ------------------------------------------------------------------ one run

    def execute(self, s: Session, script: Script, keys: list[bytes], args: list[bytes],
                readonly: bool, argv: list[bytes]) -> Any:
        """Run `script` (or a function) for client `s`, started by command `argv`: its
        reply, or a Deferred if it ran past the threshold (it then goes on in slices, one
        per event-loop turn)."""
        server = self.server
        flags = script.flags
        if (flags is not None and server.dbs.maxmemory and "allow-oom" not in flags
                and "no-writes" not in flags):  # Redis checks once, before the script runs
            try:
                server.dbs.ensure_memory()
            except CommandError as exc:
                return ErrorReply(exc.wire)
        if (flags is not None and "no-writes" not in flags and server.gated
                and server.leader.refuses_writes()):  # as Redis: once, before it runs
            return ErrorReply(NOREPLICAS_ERROR)
        if self.session.db != s.db:  # the script works in its caller's database, as in Redis
            self.session.select(s.db)
        loop = _get_running_loop()  # None without an event loop (unit tests): no slices
        blocked = self._blocked
        yieldable = loop is not None and s.multi is None and not blocked.atomic_depth
        blocked.atomic_depth += 1  # (`blocking.may_block`, inlined, and `blocking.atomic`)
        server.effects.begin_group()
        run = self.engine.start(script, keys, args, readonly=readonly, caller_resp3=s.resp3,
                                yieldable=yieldable)
        if not run.suspended:
            return self._finish(run)
        reply = Deferred(blocking=True)
        server.busy_script = BusyScript(run, argv)
        server.refresh_gate()
        assert loop is not None
        loop.call_soon(self._resume, loop, run, reply)
        return reply

    def _resume(self, loop: asyncio.AbstractEventLoop, run: ScriptRun, reply: Deferred) -> None:
        self.engine.resume(run)
        if run.suspended:
            loop.call_soon(self._resume, loop, run, reply)
            return
        self.server.busy_script = None
        self.server.refresh_gate()
        reply.resolve_with(self._finish(run))

    def _finish(self, run: ScriptRun) -> Any:
        """The script ended: log its effects (MULTI/EXEC around several), then let clients
        blocked on keys it filled be served. Its reply, held until its job records (if it
        wrote any) are durable."""
        server = self.server
        server.effects.end_group()
        blocked = self._blocked
        blocked.atomic_depth -= 1
        if not blocked.atomic_depth:
            blocked.serve_ready()
        return server.effects.durable(run.reply) if run.durable else run.reply


def _policy(cmd: Command) -> tuple[ErrorReply | None, bool, bool]:
    """Whether a script may run `cmd` (Redis' `noscript` flag; blocking commands), whether
    it writes, and whether it is a job command."""
    top = cmd.parent or cmd
    if top.name in NOSCRIPT_COMMANDS or (cmd.flags & BLOCKING
                                         and top.name not in SCRIPT_BLOCKING_ALLOWED
                                         and cmd.name not in BLOCK_OPTION_COMMANDS):
        return ErrorReply("ERR This Redis command is not allowed from script"), False, False
    return None, bool(cmd.flags & WRITE), top.group in JOB_GROUPS


def _blocks(argv: list[bytes], first_option: int) -> bool:
    """Whether a JOB.FETCH or JOB.LOGS command line has BLOCK among its options (name-value
    pairs from `first_option`, up to JOB.FETCH's QUEUES): a value is never taken for a name,
    so `WORKER block` does not count."""
    for i in range(first_option, len(argv), 2):
        name = argv[i].upper()
        if name == b"BLOCK":
            return True
        if name == b"QUEUES":
            return False
    return False


def scripting(server: ServerState) -> Scripting:
    """The server's scripting state, created on first use (the Lua runtime costs ~1 MB)."""
    scripts = server.scripts
    if isinstance(scripts, Scripting):
        return scripts
    created = server.scripts = Scripting(server)
    return created


def numkeys(argv: list[bytes]) -> int:
    """The numkeys argument of EVAL and FCALL, checked against the arguments that follow."""
    try:
        count = int(argv[2])
    except ValueError:
        raise CommandError("value is not an integer or out of range") from None
    if count > len(argv) - 3:
        raise CommandError("Number of keys can't be greater than number of args")
    if count < 0:
        raise CommandError("Number of keys can't be negative")
    return count


def _eval(s: Session, argv: list[bytes], by_sha: bool, readonly: bool) -> Any:
    count = numkeys(argv)
    state = scripting(s.server)
    if by_sha:
        sha = argv[1].decode("latin-1")
        found = state.engine.scripts.get(sha) or state.engine.scripts.get(sha.lower())
        if found is None:
            raise CommandError("No matching script. Please use EVAL.", code="NOSCRIPT")
        script = found
    else:
        try:
            script = state.engine.load(argv[1])
        except ScriptError as exc:
            raise CommandError(str(exc)) from None
    if readonly and script.flags is not None and not script.no_writes:
        raise CommandError("Can not execute a script with write flag using *_ro command.")
    return state.execute(s, script, argv[3:3 + count], argv[3 + count:], readonly, argv)


@command("EVAL", arity=-3, flags=STALE, group="scripting")
def eval_(s: Session, argv: list[bytes]) -> Any:
    """EVAL script numkeys [key [key ...]] [arg [arg ...]]

    Run a Lua 5.1 script atomically; it sees the keys as KEYS and the rest as ARGV. Job
    commands (JOB.*, QUEUE.*, CRON.*, BATCH.*, DLQ.*) run from `redis.call` too, in the same
    atomic step as its cache commands.

    Reply: the script's return value, converted as Redis 7.0 converts it; once the job
    records the script wrote, if any, are as durable as `appendfsync` promises.
    Errors: `ERR Error compiling script ...`; `ERR <message> script: <sha>, on
    @user_script:<line>.` when it fails while running; `OOM ...` past `lua-max-memory`.
    """
    return _eval(s, argv, by_sha=False, readonly=False)


@command("EVALSHA", arity=-3, flags=STALE, group="scripting")
def evalsha(s: Session, argv: list[bytes]) -> Any:
    """EVALSHA sha1 numkeys [key [key ...]] [arg [arg ...]]

    Run a script of the script cache by its SHA1 digest, as EVAL would.

    Reply: as EVAL.
    Errors: `NOSCRIPT No matching script. Please use EVAL.`; as EVAL.
    """
    return _eval(s, argv, by_sha=True, readonly=False)


@command("EVAL_RO", arity=-3, flags=READONLY | STALE, group="scripting")
def eval_ro(s: Session, argv: list[bytes]) -> Any:
    """EVAL_RO script numkeys [key [key ...]] [arg [arg ...]]

    Run a read-only script: a write command inside it fails.

    Reply: as EVAL.
    Errors: `ERR Write commands are not allowed from read-only scripts.`; `ERR Can not
    execute a script with write flag using *_ro command.` for a shebang script without
    `no-writes`; as EVAL.
    """
    return _eval(s, argv, by_sha=False, readonly=True)


@command("EVALSHA_RO", arity=-3, flags=READONLY | STALE, group="scripting")
def evalsha_ro(s: Session, argv: list[bytes]) -> Any:
    """EVALSHA_RO sha1 numkeys [key [key ...]] [arg [arg ...]]

    Run a cached script read-only, as EVAL_RO would.

    Reply: as EVAL.
    Errors: as EVALSHA and EVAL_RO.
    """
    return _eval(s, argv, by_sha=True, readonly=True)


container("SCRIPT", group="scripting", summary="Manage the script cache.")


@subcommand("SCRIPT", "LOAD", arity=3, flags=STALE)
def script_load(s: Session, argv: list[bytes]) -> Any:
    """SCRIPT LOAD script

    Compile a script and keep it in the script cache without running it.

    Reply: its SHA1 digest (what EVALSHA takes), as a bulk string.
    Errors: `ERR Error compiling script ...`.
    """
    try:
        return scripting(s.server).engine.load(argv[2]).sha.encode()
    except ScriptError as exc:
        raise CommandError(str(exc)) from None


@subcommand("SCRIPT", "EXISTS", arity=-3)
def script_exists(s: Session, argv: list[bytes]) -> Any:
    """SCRIPT EXISTS sha1 [sha1 ...]

    Tell which digests name a script of the cache.

    Reply: an array of integers, 1 for a cached script, 0 otherwise.
    """
    cached = scripting(s.server).engine.scripts
    return [int(sha.decode("latin-1").lower() in cached) for sha in argv[2:]]


@subcommand("SCRIPT", "FLUSH", arity=-2)
def script_flush(s: Session, argv: list[bytes]) -> Any:
    """SCRIPT FLUSH [ASYNC | SYNC]

    Empty the script cache (both modes free it at once: it is small).

    Reply: `OK`.
    Errors: `ERR SCRIPT FLUSH only support SYNC|ASYNC option`.
    """
    if len(argv) > 3 or (len(argv) == 3 and argv[2].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError("SCRIPT FLUSH only support SYNC|ASYNC option")
    scripting(s.server).engine.flush()
    return OK


@subcommand("SCRIPT", "KILL", arity=2, flags=ALLOW_BUSY)
def script_kill(s: Session, argv: list[bytes]) -> Any:
    """SCRIPT KILL

    Stop the script running past `busy-reply-threshold`, if it has not written yet.

    Reply: `OK`; the script's caller gets `ERR Script killed by user with SCRIPT KILL...`.
    Errors: `NOTBUSY No scripts in execution right now.`; `UNKILLABLE ...` once it wrote.
    """
    busy = s.server.busy_script
    if busy is None:
        raise CommandError("No scripts in execution right now.", code="NOTBUSY")
    if busy.run.wrote:
        raise CommandError(UNKILLABLE, code="UNKILLABLE")
    if busy.run.script.library is not None:  # a function: FUNCTION KILL stops it
        raise CommandError(FUNCTION_BUSY.text[5:], code="BUSY")
    scripting(s.server).engine.kill()
    return OK
