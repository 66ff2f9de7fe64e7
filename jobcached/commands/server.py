"""Server commands: INFO, TIME, DBSIZE, FLUSHALL, FLUSHDB, BGREWRITEAOF, SAVE, BGSAVE,
SHUTDOWN."""

from __future__ import annotations

import time
from typing import Any

from jobcached.commands.args import Args
from jobcached.commands.registry import (
    ADMIN,
    ALLOW_BUSY,
    FAST,
    LOADING,
    NO_MULTI,
    READONLY,
    STALE,
    WRITE,
    command,
    walk,
)
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import NO_REPLY, OK, Simple, Verbatim
from jobcached.observability.info import render_info
from jobcached.server.session import Session
from jobcached.server.tasks import spawn

# ------------------------------------------------------------------------------- INFO


@command("INFO", arity=-1, flags=LOADING | STALE,
         group="server")
def info(s: Session, argv: list[bytes]) -> Any:
    """INFO [section [section ...]]

    Server information and statistics, in Redis' sections and field names.

    Reply: verbatim string (a bulk string under RESP2).
    """
    return Verbatim(render_info(s.server, [a.decode(errors="replace") for a in argv[1:]], walk))


# ------------------------------------------------------------------------------- misc


@command("TIME", arity=1, flags=FAST | LOADING | STALE,
         group="server")
def time_(s: Session, argv: list[bytes]) -> Any:
    """TIME

    The server's clock.

    Reply: array of two bulk strings: unix seconds and microseconds.
    """
    now_us = time.time_ns() // 1000
    return [str(now_us // 1_000_000).encode(), str(now_us % 1_000_000).encode()]


@command("DBSIZE", arity=1, flags=READONLY | FAST,
         group="server")
def dbsize(s: Session, argv: list[bytes]) -> int:
    """DBSIZE

    The number of keys.

    Reply: integer.
    """
    return s.keyspace.dbsize()


def _flush_mode(argv: list[bytes]) -> None:
    """The optional ASYNC | SYNC (both free memory at once here: values are refcounted)."""
    args = Args(argv)
    if args:
        if args.next_upper() not in (b"ASYNC", b"SYNC"):
            raise SyntaxErr()
        args.finish()


@command("FLUSHALL", arity=-1, flags=WRITE,
         group="server")
def flushall(s: Session, argv: list[bytes]) -> Any:
    """FLUSHALL [ASYNC | SYNC]

    Delete every key of every database (jobs are not keys: they stay).

    Reply: `OK`.
    """
    _flush_mode(argv)
    server = s.server
    for db in range(len(server.dbs)):
        server.effects.touch_db(db)
    server.tracking.invalidate_all(s)
    server.dbs.flushall()
    server.effects.cache([b"FLUSHALL"])
    return OK


@command("FLUSHDB", arity=-1, flags=WRITE,
         group="server")
def flushdb(s: Session, argv: list[bytes]) -> Any:
    """FLUSHDB [ASYNC | SYNC]

    Delete every key of the selected database.

    Reply: `OK`.
    """
    _flush_mode(argv)
    s.server.effects.touch_db(s.db)
    s.server.tracking.invalidate_all(s)
    s.keyspace.flush()
    s.server.effects.cache([b"FLUSHDB"])
    return OK


@command("BGREWRITEAOF", arity=1, flags=ADMIN | NO_MULTI,
         group="server")
def bgrewriteaof(s: Session, argv: list[bytes]) -> Any:
    """BGREWRITEAOF

    Compact the job write-ahead log now, as Redis rewrites its AOF. The server also does this
    by itself once the log holds more than four times the records the live jobs need (and at least
    250,000). A forked child writes a snapshot of the live state while the server goes on
    serving and logging; the snapshot then replaces the older segments. `INFO persistence`
    shows `aof_rewrite_in_progress` and `aof_last_bgrewrite_status`.

    Reply: status `Background append only file rewriting started`.
    Errors: `ERR Background append only file rewriting already in progress`.
    Example: BGREWRITEAOF -> +Background append only file rewriting started
    """
    durability, engine = s.server.effects.durability, s.server.jobs
    if durability is None or engine is None:
        raise CommandError("this server keeps no job log")
    if durability.compacting:
        raise CommandError("Background append only file rewriting already in progress")
    spawn(s.server, durability.compact(engine.snapshot))
    return Simple(b"Background append only file rewriting started")


# ------------------------------------------------------------------------------- snapshots


@command("SAVE", arity=1, flags=ADMIN | NO_MULTI, group="server")
def save(s: Session, argv: list[bytes]) -> Any:
    """SAVE

    Write the cache snapshot (`cache.snapshot` in the data dir: the keys of every database)
    now, in the server itself: every client waits until it is written, as with Redis' SAVE,
    and the file holds exactly the state this reply is for. It is written whatever
    `cache-persistence` says (a backup); only `cache-persistence snapshot` loads it at start.
    Jobs are not in it (the WAL keeps them), nor function libraries (functions.rdb does).

    Reply: `OK`.
    Errors: `ERR Background save already in progress`; `ERR Error saving the snapshot: <reason>`
    (the previous file is kept).
    """
    saver = s.server.saver
    if saver.child is not None:
        raise CommandError("Background save already in progress")
    try:
        saver.save()
    except OSError as exc:
        raise CommandError(f"Error saving the snapshot: {exc}") from None
    return OK


@command("BGSAVE", arity=-1, flags=ADMIN, group="server")
def bgsave(s: Session, argv: list[bytes]) -> Any:
    """BGSAVE [SCHEDULE]

    Write the cache snapshot (see SAVE) from a forked child, while the server goes on: the
    file holds the state at this reply. LASTSAVE changes when the child is done, and INFO
    persistence shows `rdb_bgsave_in_progress` and `rdb_last_bgsave_status`. While the job
    WAL is being compacted (BGREWRITEAOF, Redis' other child) the save cannot start:
    SCHEDULE makes it start when the compaction ends; called inside MULTI, it starts after
    the transaction, as in Redis.

    Reply: status `Background saving started`, or `Background saving scheduled`.
    Errors: `ERR Background save already in progress`; `ERR Another child process is active
    (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever
    possible.`; `ERR syntax error`.
    Example: BGSAVE -> +Background saving started
    """
    if len(argv) > 2 or (len(argv) == 2 and argv[1].upper() != b"SCHEDULE"):
        raise SyntaxErr()
    server = s.server
    saver = server.saver
    if saver.child is not None:
        raise CommandError("Background save already in progress")
    if saver.compacting() or server.effects.grouped:
        if len(argv) == 2 or server.effects.grouped:
            saver.scheduled = True
            return Simple(b"Background saving scheduled")
        raise CommandError("Another child process is active (AOF?): can't BGSAVE right now. "
                           "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever "
                           "possible.")
    try:
        saver.bgsave()
    except OSError as exc:
        raise CommandError(f"cannot fork for the background save: {exc}") from None
    return Simple(b"Background saving started")


@command("SHUTDOWN", arity=-1, flags=ADMIN | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
         group="server")
def shutdown(s: Session, argv: list[bytes]) -> Any:
    """SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]

    Stop the server gracefully: stop accepting, flush replies, close the engines, exit 0.
    The cache snapshot is written first (see SAVE) with SAVE, or with neither SAVE nor NOSAVE
    when `save` has points or `cache-persistence` is `snapshot`, as Redis saves when it has
    save points; a save that fails keeps the server up (FORCE stops it anyway). Writes that
    other clients make before the server stops listening go into one more save at the stop.

    Reply: none on success (the connection closes).
    Errors: `ERR Errors trying to SHUTDOWN. Check logs.` (the save failed);
    `ERR No shutdown in progress.` for ABORT.
    """
    options = {a.upper() for a in argv[1:]}
    if not options <= {b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"} or \
            {b"SAVE", b"NOSAVE"} <= options:
        raise SyntaxErr()
    if b"ABORT" in options:
        if len(options) > 1:
            raise SyntaxErr()
        raise CommandError("No shutdown in progress.")
    saver = s.server.saver
    wanted = b"SAVE" in options or (b"NOSAVE" not in options and saver.saving_configured())
    saver.at_shutdown = wanted
    if wanted:
        saver.kill_child()
        try:
            saver.save()
        except OSError:
            if b"FORCE" not in options:
                saver.at_shutdown = None
                raise CommandError("Errors trying to SHUTDOWN. Check logs.") from None
            saver.at_shutdown = False  # FORCE: stop without the snapshot
    s.server.request_shutdown()
    return NO_REPLY
