"""Server commands: INFO, TIME, DBSIZE, FLUSHALL, FLUSHDB, BGREWRITEAOF,
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


@command("SHUTDOWN", arity=-1, flags=ADMIN | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
         group="server")
def shutdown(s: Session, argv: list[bytes]) -> Any:
    """SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]

    Stop the server gracefully: stop accepting, flush replies, close the engines, exit 0.

    Reply: none on success (the connection closes).
    Errors: `ERR No shutdown in progress.` for ABORT.
    """
    options = {a.upper() for a in argv[1:]}
    if not options <= {b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"}:
        raise SyntaxErr()
    if b"ABORT" in options:
        if len(options) > 1:
            raise SyntaxErr()
        raise CommandError("No shutdown in progress.")
    s.server.request_shutdown()
    return NO_REPLY
