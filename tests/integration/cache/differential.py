"""Differential testing: the same commands to redis-server and to jobcached, same replies.

`Pair.check(*argv)` sends one command to both servers over raw RESP (redis-py's connection
with no response callbacks, so nothing is reinterpreted) and asserts the replies are equal,
errors included (compared by their full text). Use it for every command the cache supports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import RedisServerProcess, ServerProcess


def raw_call(client: redis.Redis, *argv: Any) -> Any:
    """Send argv and return the decoded reply as the wire said it (ResponseError as a value)."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*argv)
        try:
            return conn.read_response()
        except redis.ResponseError as exc:
            return ("error", str(exc))
    finally:
        client.connection_pool.release(conn)


def normalize(reply: Any) -> Any:
    """Make replies comparable where the order is unspecified (sets)."""
    if isinstance(reply, set):
        return ("set", sorted(normalize(x) for x in reply))
    if isinstance(reply, list):
        return [normalize(x) for x in reply]
    if isinstance(reply, dict):
        return {normalize(k): normalize(v) for k, v in reply.items()}
    return reply


class Pair:
    """One client to each server, with the same protocol version."""

    def __init__(self, ours: redis.Redis, theirs: redis.Redis) -> None:
        self.ours = ours
        self.theirs = theirs

    def both(self, *argv: Any) -> tuple[Any, Any]:
        return raw_call(self.ours, *argv), raw_call(self.theirs, *argv)

    def check(self, *argv: Any, unordered: bool = False) -> Any:
        """Assert both servers give the same reply; return it."""
        ours, theirs = self.both(*argv)
        if unordered and isinstance(ours, list) and isinstance(theirs, list):
            ours, theirs = sorted(map(repr, ours)), sorted(map(repr, theirs))
        assert normalize(ours) == normalize(theirs), (
            f"{argv!r}: jobcached {ours!r} != redis {theirs!r}")
        return theirs

    def flush(self) -> None:
        self.both("FLUSHALL")


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pair(request: pytest.FixtureRequest, server: ServerProcess,
         redis_server: RedisServerProcess) -> Iterator[Pair]:
    ours = server.client(protocol=request.param)
    theirs = redis_server.client(protocol=request.param)
    p = Pair(ours, theirs)
    p.flush()
    yield p
    ours.close()
    theirs.close()
