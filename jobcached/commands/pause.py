"""CLIENT PAUSE, UNPAUSE, UNBLOCK and NO-EVICT: an operator's hold on the other clients.

Why pausing holds rather than refuses: it exists for failovers and upgrades, where clients must
simply wait a few seconds and then carry on, as with Redis. So a paused command becomes a
blocking `Deferred` (the client's connection runs nothing more meanwhile, as a blocked Redis
client), queued in arrival order; when the pause ends (its timeout, or CLIENT UNPAUSE) each is
run through the dispatcher as if it had just arrived.

Which commands wait (Redis 7.0's processCommand): under ALL, every command; under WRITE, those
that may change data or be replicated: write commands (job commands that write included), EVAL,
EVALSHA, FCALL, PUBLISH, SPUBLISH, PFCOUNT, and EXEC when a queued command is one of those.
Monitoring clients are replicas for Redis and never wait. While paused the dataset does not
change by itself either: active expiry stops (the cron checks `ServerState.pause`), reads see
a key past its TTL as gone without deleting it (`Keyspace.keep_expired`), and eviction, which
only writes trigger, waits with them.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from jobcached.commands.args import to_int
from jobcached.commands.dispatch import execute, resolve
from jobcached.commands.monitor import MAY_REPLICATE
from jobcached.commands.registry import ADMIN, LOADING, STALE, Command, Flag, subcommand
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import OK, UNBLOCKABLE, Deferred, ErrorReply
from jobcached.server.session import Session

if TYPE_CHECKING:
    from jobcached.jobs.timerwheel import TimerHandle
    from jobcached.server.state import ServerState

UNBLOCKED = "client unblocked via CLIENT UNBLOCK"


def _may_replicate(cmd: Command) -> bool:
    return bool(cmd.flags & Flag.WRITE) or cmd.name in MAY_REPLICATE


class ClientPause:
    """The pause in force: its mode, its deadline and the commands it holds."""

    def __init__(self, server: ServerState, writes_only: bool, end_ms: int) -> None:
        self.server = server
        self.writes_only = writes_only
        self.end_ms = end_ms
        self.held: deque[tuple[Session, list[bytes], Deferred]] = deque()
        self.timer: TimerHandle[Any] | None = None

    def holds(self, s: Session, cmd: Command) -> bool:
        """Whether `cmd` from `s` must wait for the pause to end."""
        if not self.writes_only:
            return True
        if cmd.name == "EXEC" and s.multi:
            queued = (resolve(argv) for argv in s.multi)
            return any(isinstance(q, Command) and _may_replicate(q) for q in queued)
        return _may_replicate(cmd)

    def hold(self, s: Session, argv: list[bytes]) -> Deferred:
        """Queue argv until the pause ends; its reply is the Deferred returned."""
        self.server.stats.total_commands_processed -= 1  # counted again when it runs
        reply = Deferred(blocking=True)
        entry = (s, argv, reply)
        self.held.append(entry)

        def forget() -> None:
            if entry in self.held:
                self.held.remove(entry)

        reply.on_cancel = forget
        return reply

    def extend(self, writes_only: bool, end_ms: int) -> None:
        """A second CLIENT PAUSE: the stricter mode and the later end win (pauseClients)."""
        self.writes_only = self.writes_only and writes_only
        if end_ms > self.end_ms:
            self.end_ms = end_ms
            self._schedule()

    def start(self) -> None:
        self.server.pause = self
        self.server.refresh_gate()
        self.server.dbs.keep_expired(True)
        self._schedule()

    def _schedule(self) -> None:
        timers = self.server.timers
        if self.timer is not None:
            timers.cancel(self.timer)
        self.timer = timers.schedule(self.end_ms, self.end)

    def end(self) -> None:
        """Lift the pause and run what it held, oldest first."""
        server = self.server
        if server.pause is not self:
            return
        if self.timer is not None:
            server.timers.cancel(self.timer)
            self.timer = None
        server.pause = None
        server.refresh_gate()
        server.dbs.keep_expired(server.follower is not None)  # a follower keeps them anyway
        while self.held and server.pause is None:
            s, argv, reply = self.held.popleft()
            if s.closing:
                continue
            reply.on_cancel = None
            result = execute(s, argv)
            if isinstance(result, Deferred) and not result.done:
                # It blocks now (BLPOP...): the held reply stands for it.
                reply.on_cancel = result.cancel
                reply.timeout_reply = result.timeout_reply
            reply.resolve_with(result)
        if server.pause is not None:  # a command it released paused again: hand over
            server.pause.held.extendleft(reversed(self.held))
            self.held.clear()


@subcommand("CLIENT", "PAUSE", arity=-3, flags=ADMIN | LOADING | STALE)
def client_pause(s: Session, argv: list[bytes]) -> Any:
    """CLIENT PAUSE timeout [WRITE | ALL]

    Hold the commands of every client (ALL, the default) or only those that may change data
    (WRITE) for `timeout` milliseconds; held commands run when the pause ends. A pause during
    a pause keeps the stricter mode and the later end.

    Reply: `OK`.
    Errors: `ERR CLIENT PAUSE mode must be WRITE or ALL`; `ERR timeout is not an integer or
    out of range`; `ERR timeout is negative`.
    """
    writes_only = False
    if len(argv) == 4:
        mode = argv[3].upper()
        if mode not in (b"WRITE", b"ALL"):
            raise CommandError("CLIENT PAUSE mode must be WRITE or ALL")
        writes_only = mode == b"WRITE"
    elif len(argv) > 4:
        raise SyntaxErr()
    try:
        timeout = to_int(argv[2])
    except CommandError:
        raise CommandError("timeout is not an integer or out of range") from None
    if timeout < 0:
        raise CommandError("timeout is negative")
    server = s.server
    end_ms = server.clock.now_ms() + timeout
    if server.pause is not None:
        server.pause.extend(writes_only, end_ms)
    else:
        ClientPause(server, writes_only, end_ms).start()
    return OK


@subcommand("CLIENT", "UNPAUSE", arity=2, flags=ADMIN | LOADING | STALE)
def client_unpause(s: Session, argv: list[bytes]) -> Any:
    """CLIENT UNPAUSE

    End the pause in force, if any: the commands it held run now.

    Reply: `OK`.
    """
    if s.server.pause is not None:
        s.server.pause.end()
    return OK


@subcommand("CLIENT", "UNBLOCK", arity=-3, flags=ADMIN | LOADING | STALE)
def client_unblock(s: Session, argv: list[bytes]) -> Any:
    """CLIENT UNBLOCK client-id [TIMEOUT | ERROR]

    End the wait of a client blocked in BLPOP, BZPOPMIN, XREAD ... BLOCK, JOB.FETCH ... BLOCK
    or JOB.WAIT: it gets the reply its timeout would give (TIMEOUT, the default) or the error
    `UNBLOCKED client unblocked via CLIENT UNBLOCK` (ERROR).

    Reply: 1 if the client was unblocked, 0 if it was not blocked in such a command.
    Errors: `ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR`.
    """
    as_error = False
    if len(argv) == 4:
        reason = argv[3].upper()
        if reason not in (b"TIMEOUT", b"ERROR"):
            raise CommandError("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        as_error = reason == b"ERROR"
    elif len(argv) > 4:
        raise SyntaxErr()
    target = s.server.clients.get(to_int(argv[2]))
    waiting = target.blocked_on if target is not None else None
    if waiting is None or waiting.done or waiting.timeout_reply is UNBLOCKABLE:
        return 0
    if as_error:
        s.server.stats.total_error_replies += 1
        s.server.count_error("UNBLOCKED")
        waiting.interrupt(ErrorReply(CommandError(UNBLOCKED, code="UNBLOCKED").wire))
    else:
        waiting.interrupt(waiting.timeout_reply)
    return 1


@subcommand("CLIENT", "NO-EVICT", arity=3, flags=ADMIN | LOADING | STALE)
def client_no_evict(s: Session, argv: list[bytes]) -> Any:
    """CLIENT NO-EVICT <ON | OFF>

    Mark this connection as exempt from client eviction (shown as flag `e` in CLIENT LIST);
    jobcached does not evict clients for memory, so only the flag changes.

    Reply: `OK`.
    Errors: `ERR syntax error` for another value.
    """
    value = argv[2].upper()
    if value not in (b"ON", b"OFF"):
        raise SyntaxErr()
    s.no_evict = value == b"ON"
    return OK
