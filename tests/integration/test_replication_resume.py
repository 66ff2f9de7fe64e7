"""Where a follower continues from: after a link broken inside a MULTI group, after a restart
within the backlog, after a SIGSTOP; and TTLs that end at the same absolute time everywhere.

The MULTI case needs the break to fall between two commands of one group, which a real leader
cannot be made to do on demand (a group leaves in one write): a scripted leader on a socket
plays the leader's side of the protocol instead.
"""

from __future__ import annotations

import random
import signal
import socket
import time
from collections.abc import Callable

import hiredis

from jobcached.replication import resume
from jobcached.replication.backlog import encode_command
from tests.conftest import ServerProcess
from tests.integration.test_replication import (
    cache_workload,
    dump_cache,
    dump_jobs,
    info,
    job_workload,
    wait_synced,
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


def restart(follower: ServerProcess, leader: ServerProcess) -> ServerProcess:
    """The follower's process again, on the same data dir and port, at log level info."""
    again = ServerProcess(follower.data_dir, "--port", str(follower.port), "--replicaof",
                          f"127.0.0.1 {leader.port}", "--loglevel", "info")
    again.port = follower.port
    return again.wait_ready()


def test_a_follower_restarted_within_the_backlog_continues_from_it(start_server: Start) -> None:
    leader = start_server()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    cache_workload(leader, random.Random(3))
    running = job_workload(leader)
    leader.client(db=2).set("db2-last", "x")  # the stream's selected db is 2 at the stop
    wait_synced(leader, follower)
    assert follower.stop() == 0
    assert (follower.data_dir / resume.FILE_NAME).exists()
    leader.client(db=2).set("while-down", "1")  # no SELECT: the follower must be in db 2
    leader.client().execute_command("JOB.ACK", *running[0])
    leader.client().lpush("l0", "while-down")
    again = restart(follower, leader)
    try:
        wait_synced(leader, again)
        stats = leader.client().info("stats")
        assert (stats["sync_full"], stats["sync_partial_ok"], stats["sync_partial_err"]) == \
            (1, 1, 0)
        assert "continuing from the leader's backlog (partial resync)" in again.log()
        assert not (follower.data_dir / resume.FILE_NAME).exists()  # taken at the start
        assert info(again)["master_replid"] == info(leader)["master_replid"]
        assert again.client(db=2).get("while-down") == b"1"
        assert dump_cache(again) == dump_cache(leader)
        assert dump_jobs(again) == dump_jobs(leader)
    finally:
        again.stop()


def test_a_killed_follower_or_a_damaged_place_syncs_in_full(start_server: Start) -> None:
    leader = start_server()
    leader.client().set("k", "v")
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    follower.stop(signal.SIGKILL)  # no clean stop: no place saved, whatever the data
    assert not (follower.data_dir / resume.FILE_NAME).exists()
    again = restart(follower, leader)
    wait_synced(leader, again)
    assert again.stop() == 0
    saved = follower.data_dir / resume.FILE_NAME
    saved.write_bytes(saved.read_bytes()[:-3])  # torn
    third = restart(follower, leader)
    try:
        wait_synced(leader, third)
        assert "ignoring the saved place in the leader's stream" in third.log()
        assert leader.client().info("stats")["sync_full"] == 3
        assert third.client().get("k") == b"v"
    finally:
        third.stop()


def test_a_promoted_or_unconfigured_server_leaves_no_place(start_server: Start) -> None:
    leader = start_server()
    follower = start_server("--replicaof", f"127.0.0.1 {leader.port}")
    wait_synced(leader, follower)
    follower.client().execute_command("REPLICAOF", "NO", "ONE")
    follower.stop()
    assert not (follower.data_dir / resume.FILE_NAME).exists()
