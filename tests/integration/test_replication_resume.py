"""Where a follower continues from: after a link broken inside a MULTI group, after a restart
within the backlog, after a SIGSTOP; and TTLs that end at the same absolute time everywhere.

The MULTI case needs the break to fall between two commands of one group, which a real leader
cannot be made to do on demand (a group leaves in one write): a scripted leader on a socket
plays the leader's side of the protocol instead.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import hiredis

from jobcached.replication.backlog import encode_command
from tests.conftest import ServerProcess
from tests.integration.test_replication import (
    info,
)

Start = Callable[..., ServerProcess]
REPLID = "a" * 40


class ScriptedLeader:
    """A listening socket that answers one follower's handshake as a leader would."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(15)
        self.port = self.listener.getsockname()[1]

    def accept_psync(self) -> tuple[socket.socket, list[bytes]]:
        """Accept the follower, answer up to its PSYNC; the connection and PSYNC's argv."""
        conn, _ = self.listener.accept()
        conn.settimeout(15)
        parser = hiredis.Reader()
        while True:
            argv = parser.gets()
            while argv is False:
                parser.feed(conn.recv(4096))
                argv = parser.gets()
            if argv[0].upper() == b"PSYNC":
                return conn, argv
            conn.sendall(b"+PONG\r\n" if argv[0].upper() == b"PING" else b"+OK\r\n")


def test_a_link_broken_inside_multi_continues_from_before_the_group(start_server: Start) -> None:
    leader = ScriptedLeader()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    conn, psync = leader.accept_psync()
    assert psync == [b"PSYNC", b"?", b"-1"]
    conn.sendall(b"+FULLRESYNC %s 100\r\n$0\r\n" % REPLID.encode())
    group = [encode_command(argv) for argv in
             ([b"MULTI"], [b"SET", b"a", b"1"], [b"INCR", b"n"], [b"EXEC"])]
    conn.sendall(encode_command([b"SET", b"before", b"1"]) + b"".join(group[:2]))
    deadline = time.monotonic() + 10
    while follower.client().get("before") is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    conn.close()  # the link breaks after MULTI and one of its commands
    applied = 100 + len(encode_command([b"SET", b"before", b"1"]))
    conn, psync = leader.accept_psync()
    assert psync == [b"PSYNC", REPLID.encode(), str(applied + 1).encode()]
    assert follower.client().get("a") is None
    conn.sendall(b"+CONTINUE %s\r\n" % REPLID.encode() + b"".join(group))
    while follower.client().get("n") is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert follower.client().mget("a", "n") == [b"1", b"1"]
    assert info(follower)["slave_repl_offset"] == applied + len(b"".join(group))
    conn.close()
    leader.listener.close()
