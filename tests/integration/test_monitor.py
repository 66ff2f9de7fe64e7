"""MONITOR against a real redis-server: the same commands must give the same lines.

Timestamps and client ports differ between the two servers, so each line is compared with the
time masked and the client address reduced to its kind (ip, lua, unix); everything else, the
database, the quoting of every argument, which commands are shown and in what order, must be
byte-for-byte Redis'.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.conftest import RawClient, RedisServerProcess, ServerProcess, require_tool

#: `+<secs>.<usecs> [<db> <origin>] <args>`
LINE = re.compile(rb"^\+(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)\r\n$")

#: Every kind of argument and command whose line could differ: escapes, integers, databases,
#: credentials, transactions, scripts, errors at run time, refusals before running (not
#: shown), admin commands (not shown), pub/sub.
SEQUENCE: list[list[bytes]] = [
    [b"SET", b"k", b"v"],
    [b"SET", b"n", b"123"],
    [b"GET", b'a"b\\c\n\x01\xff \t\r\x07\x08'],
    [b"SELECT", b"1"],
    [b"SET", b"in-db-1", b"x"],
    [b"SELECT", b"0"],
    [b"AUTH", b"secret"],
    [b"AUTH", b"user", b"secret"],
    [b"HELLO", b"2", b"AUTH", b"default", b"secret"],
    [b"MULTI"], [b"SET", b"a", b"1"], [b"INCR", b"a"], [b"EXEC"],
    [b"EVAL", b"redis.call('set','x','1'); return redis.call('get','x')", b"0"],
    [b"EVAL", b"return 1", b"not-a-number"],
    [b"CONFIG", b"GET", b"maxmemory"],
    [b"CLIENT", b"LIST"],
    [b"CLIENT", b"ID"],
    [b"NOSUCHCOMMAND", b"x"],
    [b"GET"],
    [b"LPUSH", b"a", b"x"],
    [b"PING"],
    [b"SLOWLOG", b"LEN"],
    [b"SET", b"12345678901234567890", b"-5"],
    [b"PUBLISH", b"channel", b"message"],
    [b"BLPOP", b"empty", b"0.01"],
    [b"DEL", b"k", b"n", b"a", b"x", b"12345678901234567890"],
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The module's server, listening on a unix socket too."""
    data = tmp_path_factory.mktemp("monitor")
    proc = ServerProcess(data, "--unixsocket", str(data / "j.sock")).wait_ready()
    yield proc
    proc.stop()


def command_bytes(argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in argv)


def read_reply(client: RawClient) -> bytes:
    """One whole reply (enough of RESP for this module: simple values and flat arrays)."""
    line = client.recv_line()
    if line[:1] == b"$" and line != b"$-1\r\n":
        return line + client.recv_exactly(int(line[1:]) + 2)
    if line[:1] == b"*" and line != b"*-1\r\n":
        return line + b"".join(read_reply(client) for _ in range(int(line[1:])))
    return line


def start_monitor(port: int) -> RawClient:
    monitor = RawClient(port)
    monitor.transcript(command_bytes([b"MONITOR"]), b"+OK\r\n")
    return monitor


def masked(line: bytes) -> tuple[bytes, bytes, bytes]:
    """(db, origin kind, arguments) of a monitor line."""
    match = LINE.match(line)
    assert match, line
    origin = match.group(4)
    kind = origin if origin == b"lua" else origin.split(b":")[0]
    return match.group(3), kind, match.group(5)


def run_and_collect(port: int, sequence: list[list[bytes]], expected_lines: int) -> list[bytes]:
    monitor = start_monitor(port)
    client = RawClient(port)
    for argv in sequence:
        client.send(command_bytes(argv))
        read_reply(client)
    client.send(command_bytes([b"ECHO", b"last"]))
    read_reply(client)
    lines = []
    while True:
        line = monitor.recv_line()
        lines.append(line)
        if line.endswith(b'"ECHO" "last"\r\n'):
            break
        assert len(lines) <= expected_lines, lines
    return lines


def test_lines_match_redis_server(server: ServerProcess,
                                  redis_server: RedisServerProcess) -> None:
    ours = run_and_collect(server.port, SEQUENCE, len(SEQUENCE) + 8)
    theirs = run_and_collect(redis_server.port, SEQUENCE, len(SEQUENCE) + 8)
    assert [masked(line) for line in ours] == [masked(line) for line in theirs]
    assert masked(ours[0]) == (b"0", b"127.0.0.1", b'"SET" "k" "v"')
    for line in ours:  # a plausible wall-clock time in microseconds
        match = LINE.match(line)
        assert match and abs(int(match.group(1)) - time.time()) < 60


def test_monitoring_client_state_matches_redis(server: ServerProcess,
                                               redis_server: RedisServerProcess) -> None:
    """What a monitoring client may still run, and how RESET ends monitoring."""
    transcripts = []
    for port in (server.port, redis_server.port):
        monitor = start_monitor(port)
        replies = []
        for argv in ([b"GET", b"k"], [b"SET", b"k", b"v"], [b"EVAL", b"return 1", b"0"],
                     [b"PING"], [b"ECHO", b"hi"], [b"RESET"], [b"GET", b"k"]):
            monitor.send(command_bytes(argv))
            reply = read_reply(monitor)
            replies.append(reply)
            if argv[0] in (b"PING", b"ECHO"):  # its own commands come back as lines, after
                replies.append(masked(monitor.recv_line())[2])
        transcripts.append(replies)
    assert transcripts[0] == transcripts[1]
    assert transcripts[0][0] == b"-ERR Replica can't interact with the keyspace\r\n"


def test_second_monitor_gets_no_reply_and_flag_o(server: ServerProcess) -> None:
    monitor = start_monitor(server.port)
    monitor.send(command_bytes([b"MONITOR"]) + command_bytes([b"CLIENT", b"INFO"]))
    info = read_reply(monitor)
    assert b" flags=O " in info  # the second MONITOR answered nothing: this is CLIENT INFO's


def test_unix_socket_client_shows_as_unix_path(server: ServerProcess) -> None:
    path = server.data_dir / "j.sock"
    monitor = start_monitor(server.port)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(command_bytes([b"SET", b"via", b"unix"]))
        assert sock.recv(64) == b"+OK\r\n"
    line = monitor.recv_line()
    assert LINE.match(line)
    assert f"[0 unix:{path}] \"SET\" \"via\" \"unix\"".encode() in line


def test_redis_cli_monitor(server: ServerProcess) -> None:
    cli = require_tool("redis-cli")
    proc = subprocess.Popen([cli, "-p", str(server.port), "monitor"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"OK\n"
        r = server.client()
        r.set("from-cli-test", "value 1")
        line = proc.stdout.readline()
        while b'"SET"' not in line:  # the client's handshake (HELLO, CLIENT SETINFO) first
            line = proc.stdout.readline()
        assert re.match(rb'^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "from-cli-test" '
                        rb'"value 1"\n$', line), line
        r.close()
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_redis_py_monitor(server: ServerProcess) -> None:
    r = server.client()
    with r.monitor() as monitor:
        r.set("from-redis-py", "v")
        seen = monitor.next_command()
        while not seen["command"].startswith("SET"):  # the connection's handshake first
            seen = monitor.next_command()
    assert seen["command"] == "SET from-redis-py v"
    assert seen["db"] == 0 and seen["client_type"] == "tcp"
    assert abs(seen["time"] - time.time()) < 60


def test_monitor_ends_with_its_connection(server: ServerProcess) -> None:
    """A closed monitor stops being fed (and stops costing the dispatcher its checks)."""
    monitor = start_monitor(server.port)
    monitor.close()
    r = server.client()
    deadline = time.monotonic() + 5
    while b"flags=O" in r.execute_command("CLIENT", "LIST"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert r.set("after-monitor", "1") is True
    assert r.get("after-monitor") == b"1"
