"""Generic key commands, on the placeholder dict until the cache engine lands."""

from __future__ import annotations

from jobcached.commands.registry import FAST, READONLY, WRITE, command
from jobcached.net.session import Session


@command("DEL", arity=-2, flags=WRITE, group="generic", keys=(1, -1, 1))
def del_(s: Session, argv: list[bytes]) -> int:
    """DEL key [key ...]

    Delete keys.

    Reply: integer: how many of the keys existed.
    """
    db = s.server.db
    return sum(1 for key in argv[1:] if db.pop(key, None) is not None)


@command("EXISTS", arity=-2, flags=READONLY | FAST, group="generic", keys=(1, -1, 1))
def exists(s: Session, argv: list[bytes]) -> int:
    """EXISTS key [key ...]

    Count how many of the keys exist (a key named twice counts twice).

    Reply: integer.
    """
    db = s.server.db
    return sum(1 for key in argv[1:] if key in db)
