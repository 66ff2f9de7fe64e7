"""String commands."""

from __future__ import annotations

from typing import Any

from jobcached.commands.registry import DENYOOM, FAST, READONLY, WRITE, command
from jobcached.errors import SyntaxErr
from jobcached.net.replies import OK
from jobcached.net.session import Session


@command("GET", arity=2, flags=READONLY | FAST, group="string", keys=(1, 1, 1))
def get(s: Session, argv: list[bytes]) -> Any:
    """GET key

    Get the value of a key.

    Reply: bulk string, or nil when the key does not exist.
    """
    return s.server.keyspace.get_string(argv[1])


@command("SET", arity=-3, flags=WRITE | DENYOOM, group="string", keys=(1, 1, 1))
def set_(s: Session, argv: list[bytes]) -> Any:
    """SET key value

    Set a key to a value (options arrive with the cache engine).

    Reply: `OK`.
    """
    if len(argv) != 3:
        raise SyntaxErr()
    s.server.keyspace.set(argv[1], argv[2])
    s.server.propagate(argv, (argv[1],))
    return OK
