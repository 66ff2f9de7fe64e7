"""Generic key commands."""

from __future__ import annotations

from jobcached.commands.registry import FAST, READONLY, WRITE, command
from jobcached.net.session import Session


@command("DEL", arity=-2, flags=WRITE, group="generic", keys=(1, -1, 1))
def del_(s: Session, argv: list[bytes]) -> int:
    """DEL key [key ...]

    Delete keys.

    Reply: integer: how many of the keys existed.
    """
    keyspace = s.server.keyspace
    deleted = [key for key in argv[1:] if keyspace.delete(key)]
    if deleted:
        s.server.propagate([b"DEL", *deleted], deleted)
    return len(deleted)


@command("EXISTS", arity=-2, flags=READONLY | FAST, group="generic", keys=(1, -1, 1))
def exists(s: Session, argv: list[bytes]) -> int:
    """EXISTS key [key ...]

    Count how many of the keys exist (a key named twice counts twice).

    Reply: integer.
    """
    keyspace = s.server.keyspace
    return sum(1 for key in argv[1:] if keyspace.exists(key))
