"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (redis-py's default pipeline uses them).

Commands sent after MULTI are checked (name, arity, auth) and queued; EXEC runs the queue
back to back, nothing else interleaving, since the server is single-threaded. A queued command
that was rejected aborts the whole EXEC (EXECABORT); a command that fails while running returns
its error inside EXEC's array and the others still run, as in Redis. WATCH is optimistic
locking: every cache mutation goes through `Effects.cache` (server/effects.py), which marks the
sessions watching the touched keys, and EXEC then returns a null array without running anything.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands import blocking
from jobcached.commands.aclcheck import check as acl_check
from jobcached.commands.dispatch import call, resolve
from jobcached.commands.registry import (
    ALLOW_BUSY,
    FAST,
    LOADING,
    NO_MULTI,
    STALE,
    command,
)
from jobcached.errors import CommandError
from jobcached.net.replies import NULL_ARRAY, OK, Deferred, ErrorReply
from jobcached.server.session import Session


@command("MULTI", arity=1, flags=LOADING | STALE | FAST | NO_MULTI | ALLOW_BUSY,
         group="transactions")
def multi(s: Session, argv: list[bytes]) -> Any:
    """MULTI

    Start a transaction: the following commands are queued until EXEC or DISCARD.

    Reply: `OK`.
    Errors: `ERR MULTI calls can not be nested`.
    """
    if s.multi is not None:
        raise CommandError("MULTI calls can not be nested")
    s.multi = []
    s.multi_error = False
    return OK


@command("DISCARD", arity=1, flags=LOADING | STALE | FAST | NO_MULTI | ALLOW_BUSY,
         group="transactions")
def discard(s: Session, argv: list[bytes]) -> Any:
    """DISCARD

    Drop the queued commands and leave the transaction; forget WATCHed keys.

    Reply: `OK`.
    Errors: `ERR DISCARD without MULTI`.
    """
    if s.multi is None:
        raise CommandError("DISCARD without MULTI")
    s.multi = None
    s.multi_error = False
    s.unwatch()
    return OK


@command("EXEC", arity=1, flags=LOADING | STALE | NO_MULTI,
         group="transactions")
def exec_(s: Session, argv: list[bytes]) -> Any:
    """EXEC

    Run the queued commands atomically.

    Reply: an array with each command's reply (errors included in place); a null array if a
    WATCHed key changed (nothing ran).
    Errors: `ERR EXEC without MULTI`; `EXECABORT` if a queued command was rejected.
    """
    if s.multi is None:
        raise CommandError("EXEC without MULTI")
    queued, aborted = s.multi, s.multi_error
    s.multi = None
    s.multi_error = False
    for db, key in s.watched:
        s.server.dbs[db].exists(key)  # a key that expired meanwhile counts as changed
    dirty = s.watch_dirty
    s.unwatch()
    if aborted:
        raise CommandError("Transaction discarded because of previous errors.", code="EXECABORT")
    if dirty:
        return NULL_ARRAY
    replies: list[Any] = []
    # Inside atomic(), blocking commands answer at once with their timeout reply, and clients
    # blocked on keys this transaction fills are served only after all of it has run. Its
    # effects reach the log as one MULTI ... EXEC, as Redis replicates a transaction.
    effects = s.server.effects
    effects.begin_group()
    with blocking.atomic(s.server):
        try:
            _run_queued(s, queued, replies)
        finally:
            effects.end_group()
    return _when_resolved(replies)


def _run_queued(s: Session, queued: list[list[bytes]], replies: list[Any]) -> None:
    """EXEC's loop: each queued command through the dispatcher, its reply appended."""
    for queued_argv in queued:
        cmd = resolve(queued_argv)
        if isinstance(cmd, ErrorReply):
            reply = cmd
        else:
            # The user's rules may have changed since the command was queued (Redis
            # checks again at EXEC).
            refused = None if s.unchecked else acl_check(s, cmd, queued_argv, "multi")
            reply = refused if refused is not None else call(s, cmd, queued_argv)
        if isinstance(reply, Deferred) and reply.blocking:
            reply.cancel()  # a blocking job command (JOB.FETCH BLOCK) does not block here
            reply = NULL_ARRAY
        replies.append(reply)


def _when_resolved(replies: list[Any]) -> Any:
    """EXEC's array, or a Deferred for it if some replies wait for durability."""
    pending = [r for r in replies if isinstance(r, Deferred) and not r.done]
    if not pending:
        return [r.value if isinstance(r, Deferred) else r for r in replies]
    whole = Deferred()
    remaining = len(pending)

    def one_done(_: Deferred) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            whole.resolve([r.value if isinstance(r, Deferred) else r for r in replies])

    for deferred in pending:
        deferred.add_callback(one_done)
    return whole


@command("WATCH", arity=-2, flags=LOADING | STALE | FAST | NO_MULTI | ALLOW_BUSY,
         group="transactions",
         keys=(1, -1, 1))
def watch(s: Session, argv: list[bytes]) -> Any:
    """WATCH key [key ...]

    Make the next EXEC fail if any of these keys changes before it.

    Reply: `OK`.
    Errors: `ERR WATCH inside MULTI is not allowed`.
    """
    if s.multi is not None:
        raise CommandError("WATCH inside MULTI is not allowed")
    for key in argv[1:]:
        db_key = (s.db, key)
        s.watched.add(db_key)
        s.server.watchers.setdefault(db_key, set()).add(s)
    return OK


@command("UNWATCH", arity=1, flags=LOADING | STALE | FAST | ALLOW_BUSY,
         group="transactions")
def unwatch(s: Session, argv: list[bytes]) -> Any:
    """UNWATCH

    Forget all WATCHed keys.

    Reply: `OK`.
    """
    s.unwatch()
    return OK
