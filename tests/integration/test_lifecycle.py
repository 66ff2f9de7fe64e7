"""Starting, configuring, securing and stopping a real server process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import RawClient, ServerProcess


def test_sigterm_stops_gracefully_with_exit_0(start_server: object) -> None:
    proc: ServerProcess = start_server()  # type: ignore[operator]
    client = RawClient(proc.port)
    client.transcript(b"PING\r\n", b"+PONG\r\n")
    assert proc.stop(signal.SIGTERM) == 0
    assert client.recv_until_closed() == b""  # our connection was closed by the server


def test_shutdown_command_exits_0(start_server: object) -> None:
    proc: ServerProcess = start_server()  # type: ignore[operator]
    client = RawClient(proc.port)
    client.send(b"SHUTDOWN\r\n")
    assert proc.proc.wait(15) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "abc"], "port: 'abc' is not an integer"),
    (["--maxclients", "-1"], "must not be negative"),
    (["--protected-mode", "maybe"], "is not yes or no"),
    (["--loglevel", "loud"], "is not one of"),
    (["--proto-max-bulk-len", "12zb"], "is not a memory size"),
    (["--port", "0"], "nothing to listen on"),
    (["--config", "/nonexistent/jobcached.conf"], "cannot read config file"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "jobcached", "serve", "--dir", str(tmp_path),
                           *args], capture_output=True, timeout=30, check=False)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]


def test_config_precedence_file_env_flag(start_server: object, tmp_path: Path) -> None:
    conf = tmp_path / "jobcached.conf"
    conf.write_text("# test\nmaxclients 100\ntimeout 7\nproto-max-bulk-len 1mb\n")
    proc: ServerProcess = start_server(  # type: ignore[operator]
        "--config", str(conf), "--timeout", "9",
        env={"JOBCACHED_MAXCLIENTS": "200", "JOBCACHED_TIMEOUT": "8"})
    r = proc.client()
    assert r.config_get("maxclients") == {"maxclients": "200"}  # env beats file
    assert r.config_get("timeout") == {"timeout": "9"}  # flag beats env
    assert r.config_get("proto-max-bulk-len") == {"proto-max-bulk-len": str(1024**2)}  # file
    r.close()


def test_requirepass(start_server: object) -> None:
    proc: ServerProcess = start_server("--requirepass", "s3cret")  # type: ignore[operator]
    client = RawClient(proc.port)
    client.transcript(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n")
    client.transcript(b"AUTH wrong\r\n",
                      b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
    client.transcript(b"AUTH s3cret\r\n", b"+OK\r\n")
    client.transcript(b"GET k\r\n", b"$-1\r\n")
    client.transcript(b"RESET\r\n", b"+RESET\r\n")
    client.transcript(b"PING\r\n", b"-NOAUTH Authentication required.\r\n")
    client.close()
    r = proc.client(password="s3cret")
    assert r.ping() is True
    r.close()
    # Before AUTH only tiny requests are buffered (CVE-2021-32675).
    client = RawClient(proc.port)
    client.send(b"*11\r\n")
    assert client.recv_until_closed() == (b"-ERR Protocol error: unauthenticated multibulk "
                                          b"length\r\n")
    client = RawClient(proc.port)
    client.send(b"*2\r\n$4\r\nAUTH\r\n$100000\r\n")
    assert client.recv_until_closed() == b"-ERR Protocol error: unauthenticated bulk length\r\n"


def test_hello_with_auth_and_setname(start_server: object) -> None:
    proc: ServerProcess = start_server("--requirepass", "pw")  # type: ignore[operator]
    client = RawClient(proc.port)
    client.send(b"HELLO 3\r\n")
    assert client.recv_line().startswith(b"-NOAUTH HELLO must be called with the client")
    client.send(b"HELLO 3 AUTH default pw SETNAME me\r\n")
    assert client.recv_line() == b"%8\r\n"
    assert client.recv_line() + client.recv_line() == b"$6\r\nserver\r\n"
    while client.recv_line() != b"modules\r\n":
        pass
    assert client.recv_line() == b"*0\r\n"
    client.transcript(b"CLIENT GETNAME\r\n", b"$2\r\nme\r\n")
    # redis-py authenticates with HELLO 3 AUTH when given a password and protocol 3
    r = redis.Redis(port=proc.port, protocol=3, password="pw")
    assert r.ping() is True
    r.close()


def test_maxclients(start_server: object) -> None:
    proc: ServerProcess = start_server("--maxclients", "2")  # type: ignore[operator]
    first, second = RawClient(proc.port), RawClient(proc.port)
    first.transcript(b"PING\r\n", b"+PONG\r\n")
    second.transcript(b"PING\r\n", b"+PONG\r\n")
    third = RawClient(proc.port)
    assert third.recv_until_closed() == b"-ERR max number of clients reached\r\n"
    first.close()
    time.sleep(0.2)
    fourth = RawClient(proc.port)
    fourth.transcript(b"PING\r\n", b"+PONG\r\n")


def test_idle_timeout_closes_clients(start_server: object) -> None:
    proc: ServerProcess = start_server("--timeout", "1")  # type: ignore[operator]
    client = RawClient(proc.port)
    client.transcript(b"PING\r\n", b"+PONG\r\n")
    client.sock.settimeout(10)
    assert client.recv_until_closed() == b""  # closed by the server after ~1-2 s idle


def test_unix_socket(start_server: object, tmp_path: Path) -> None:
    path = tmp_path / "jobcached.sock"
    proc: ServerProcess = start_server("--unixsocket", str(path))  # type: ignore[operator]
    assert oct(path.stat().st_mode & 0o777) == oct(0o770)
    r = redis.Redis(unix_socket_path=str(path))
    assert r.ping() is True
    assert r.set("via-unix", "1") is True
    r.close()
    assert proc.stop() == 0
    assert not path.exists()


def test_client_kill_and_reply_modes(server: ServerProcess) -> None:
    victim = RawClient(server.port)
    victim.transcript(b"CLIENT SETNAME victim\r\n", b"+OK\r\n")
    victim.send(b"CLIENT ID\r\n")
    victim_id = int(victim.sock.recv(64)[1:-2])
    killer = RawClient(server.port)
    killer.transcript(b"CLIENT KILL ID %d\r\n" % victim_id, b":1\r\n")
    assert victim.recv_until_closed() == b""
    killer.transcript(b"CLIENT KILL 1.2.3.4:5\r\n", b"-ERR No such client\r\n")
    killer.transcript(b"CLIENT REPLY SKIP\r\nECHO skipped\r\nECHO shown\r\n",
                      b"$5\r\nshown\r\n")
    killer.transcript(b"CLIENT REPLY OFF\r\nECHO a\r\nECHO b\r\nCLIENT REPLY ON\r\n", b"+OK\r\n")
    killer.transcript(b"QUIT\r\n", b"+OK\r\n")
    assert killer.recv_until_closed() == b""
