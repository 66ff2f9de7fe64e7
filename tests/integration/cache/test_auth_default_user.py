"""AUTH and HELLO ... AUTH when no password is configured: the default user is `nopass`.

Redis 7.0 accepts any password for `default` then and answers WRONGPASS for any other user
name; only the one-argument form (`AUTH password`) is an error. Clients such as MIGRATE's
AUTH2 and connection pools that always send a user name depend on it. Compared line by line on
raw sockets, since redis-py turns these errors into connection errors.
"""

from __future__ import annotations

from tests.conftest import RawClient, RedisServerProcess, ServerProcess

COMMANDS = [
    b"AUTH anything\r\n",
    b"AUTH default anything\r\n",
    b'AUTH default ""\r\n',
    b"AUTH someone anything\r\n",
    b"AUTH a b c\r\n",
    b"HELLO 2 AUTH nobody whatever\r\n",
    b"PING\r\n",
]


def test_auth_without_a_configured_password_matches_redis(
        server: ServerProcess, redis_server: RedisServerProcess) -> None:
    ours, theirs = RawClient(server.port), RawClient(redis_server.port)
    for line in COMMANDS:
        ours.send(line)
        theirs.send(line)
        assert ours.recv_line() == theirs.recv_line(), line
    ours.send(b"HELLO 2 AUTH default whatever\r\n")
    theirs.send(b"HELLO 2 AUTH default whatever\r\n")
    # the same map, ours with one more field (jobcached_version)
    assert (ours.recv_line(), theirs.recv_line()) == (b"*16\r\n", b"*14\r\n")
