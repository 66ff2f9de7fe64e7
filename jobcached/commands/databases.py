"""Database commands: SELECT, MOVE and SWAPDB (COPY ... DB is in keys.py, FLUSHDB in server.py).

A session works in one numbered database (`Session.db`, and `Session.keyspace` for handlers);
jobs are one namespace whatever it is. Indexes are read as Redis reads them, a C int, with its
error texts. See cache/databases.py for what the databases share.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import to_c_int
from jobcached.commands.blocking import signal_db_ready
from jobcached.commands.registry import (
    FAST,
    LOADING,
    STALE,
    WRITE,
    command,
)
from jobcached.errors import CommandError
from jobcached.net.replies import OK
from jobcached.server.notify import GENERIC, notify
from jobcached.server.session import Session

OUT_OF_RANGE = "DB index is out of range"


def db_index(s: Session, raw: bytes, error: str | None = None) -> int:
    """A database index argument: a C int, then within 0..databases-1."""
    index = to_c_int(raw, error)
    if not 0 <= index < len(s.server.dbs):
        raise CommandError(OUT_OF_RANGE)
    return index


@command("SELECT", arity=2, flags=LOADING | STALE | FAST, group="connection")
def select(s: Session, argv: list[bytes]) -> Any:
    """SELECT index

    Select the logical database the connection's cache commands work in (0 when connected;
    `databases` sets how many there are). Job commands ignore it.

    Reply: `OK`.
    Errors: `ERR DB index is out of range`; `ERR value is not an integer or out of range`.
    """
    s.select(db_index(s, argv[1]))
    return OK


@command("MOVE", arity=3, flags=WRITE | FAST, group="generic", keys=(1, 1, 1))
def move(s: Session, argv: list[bytes]) -> int:
    """MOVE key db

    Move a key, with its TTL, to another database.

    Reply: integer: 1 if moved, 0 if the key does not exist or exists in the target database.
    Errors: `ERR DB index is out of range`; `ERR source and destination objects are the same`.
    """
    key = argv[1]
    target = db_index(s, argv[2])
    if target == s.db:
        raise CommandError("source and destination objects are the same")
    if not s.keyspace.move_to(key, s.server.dbs[target]):
        return 0
    server = s.server
    server.effects.cache([b"MOVE", key, argv[2]], (key,))
    server.effects.touch(key, target)
    notify(server, GENERIC, b"move_from", key)
    notify(server, GENERIC, b"move_to", key, target)
    return 1


@command("SWAPDB", arity=3, flags=WRITE | FAST, group="server")
def swapdb(s: Session, argv: list[bytes]) -> Any:
    """SWAPDB index1 index2

    Exchange the contents of two databases: clients connected to one see the other's keys.

    Reply: `OK`.
    Errors: `ERR invalid first DB index`; `ERR invalid second DB index`;
    `ERR DB index is out of range`.
    """
    first = to_c_int(argv[1], "invalid first DB index")
    second = to_c_int(argv[2], "invalid second DB index")
    server = s.server
    if not (0 <= first < len(server.dbs) and 0 <= second < len(server.dbs)):
        raise CommandError(OUT_OF_RANGE)
    server.effects.touch_db(first, second)
    server.effects.touch_db(second, first)
    server.dbs.swap(first, second)
    server.effects.cache([b"SWAPDB", argv[1], argv[2]])
    signal_db_ready(server, first)
    signal_db_ready(server, second)
    return OK
