"""Real clients against a real server: redis-py (RESP2 and RESP3) and redis-cli."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis

from tests.conftest import ServerProcess, require_tool


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_basic_commands(server: ServerProcess, protocol: int) -> None:
    r = server.client(protocol=protocol)
    assert r.ping() is True
    assert r.echo(b"hi") == b"hi"
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == b"hello"
    assert r.get("missing") is None
    assert r.exists("greeting", "greeting", "missing") == 2
    assert r.delete("greeting", "missing") == 1
    assert r.client_id() > 0
    assert r.client_setname("worker-1") is True
    assert r.client_getname() in ("worker-1", b"worker-1")  # redis-py decodes only in RESP2
    assert any(c["name"] == "worker-1" for c in r.client_list())
    assert r.execute_command("SELECT", 0) in (b"OK", True, "OK")
    seconds, micros = r.time()
    assert seconds > 1_600_000_000 and 0 <= micros < 1_000_000
    info = r.info()
    assert info["redis_version"] == "7.0.0"
    assert info["connected_clients"] >= 1
    assert "total_commands_processed" in r.info("stats")
    assert r.config_get("maxclients") == {"maxclients": "10000"}
    r.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_errors(server: ServerProcess, protocol: int) -> None:
    r = server.client(protocol=protocol)
    with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCH'"):
        r.execute_command("NOSUCH", "a")
    with pytest.raises(redis.ResponseError,
                       match=r"wrong number of arguments for 'get' command"):
        r.execute_command("GET")
    with pytest.raises(redis.ResponseError, match=r"unknown subcommand 'NOPE'. Try CLIENT HELP."):
        r.execute_command("CLIENT", "NOPE")
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", 16)  # databases 0..15
    assert r.ping() is True  # the connection survived every error
    r.close()


def test_hello_switches_protocol(server: ServerProcess) -> None:
    r = server.client(protocol=2)
    reply = r.execute_command("HELLO", "3")
    assert reply[b"proto"] == 3 and reply[b"server"] == b"jobcached"
    with pytest.raises(redis.ResponseError, match="NOPROTO"):
        r.execute_command("HELLO", "4")
    r.close()


def test_config_set_changes_and_validates(server: ServerProcess) -> None:
    r = server.client()
    assert r.config_set("timeout", 0) is True
    with pytest.raises(redis.ResponseError, match=r"CONFIG SET failed .*'maxclients'"):
        r.config_set("maxclients", "lots")
    with pytest.raises(redis.ResponseError, match="Unknown option"):
        r.config_set("no-such-key", "1")
    with pytest.raises(redis.ResponseError, match=r"can.t set immutable config"):
        r.config_set("port", "1")
    assert r.config_get("maxclients") == {"maxclients": "10000"}
    r.close()


def test_command_introspection(server: ServerProcess) -> None:
    r = server.client()
    count = r.command_count()
    assert count >= 15
    info = r.execute_command("COMMAND", "INFO", "get", "client|id")
    assert info["get"]["arity"] == 2 and "readonly" in info["get"]["flags"]
    assert info["client|id"]["arity"] == 2
    conn = r.connection_pool.get_connection()  # raw reply: redis-py's COMMAND callback
    conn.send_command("COMMAND", "DOCS", "set")  # only understands COMMAND INFO
    docs = conn.read_response()
    if isinstance(docs, list):
        docs = dict(zip(docs[::2], docs[1::2], strict=True))
    entry = docs[b"set"]
    if isinstance(entry, list):
        entry = dict(zip(entry[::2], entry[1::2], strict=True))
    assert entry[b"summary"] == b"Set the string value of a key"  # Redis' own docs
    r.connection_pool.release(conn)
    r.close()


def redis_cli(server: ServerProcess, *args: str) -> str:
    cli = require_tool("redis-cli")
    done = subprocess.run([cli, "-p", str(server.port), *args], capture_output=True,
                          timeout=10, check=False)
    return done.stdout.decode()


def test_redis_cli_one_shot_commands(server: ServerProcess) -> None:
    assert redis_cli(server, "PING") == "PONG\n"
    assert redis_cli(server, "SET", "cli-key", "some value") == "OK\n"
    assert redis_cli(server, "GET", "cli-key") == "some value\n"
    assert redis_cli(server, "GET", "cli-missing") == "\n"
    assert redis_cli(server, "EXISTS", "cli-key") == "1\n"
    assert redis_cli(server, "NOSUCH").startswith("ERR unknown command 'NOSUCH'")
    assert "redis_version:7.0.0" in redis_cli(server, "INFO", "server")
    assert redis_cli(server, "-3", "HELLO", "3").startswith("server jobcached\n")
    assert redis_cli(server, "--no-raw", "DBSIZE").startswith("(integer) ")


def test_redis_cli_reads_command_docs_without_error(server: ServerProcess) -> None:
    out = redis_cli(server, "COMMAND", "DOCS", "client")
    assert "A container for client connection commands" in out


def test_interactive_redis_cli_shows_hints(server: ServerProcess) -> None:
    """redis-cli builds its hints from COMMAND DOCS at start; a reply it cannot read makes it
    abort, so drive it on a pseudo-terminal and look for the hint text."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios

    cli = require_tool("redis-cli")
    pid, fd = pty.fork()
    if pid == 0:  # the child: become redis-cli
        os.execv(cli, [cli, "-p", str(server.port)])
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
        time.sleep(0.5)  # let it connect and read COMMAND DOCS
        os.write(fd, b"JOB.FETCH ")
        seen = b""
        deadline = time.monotonic() + 10
        while b"QUEUES queue" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 4096)
                if b"\x1b[6n" in chunk:  # linenoise asks where the cursor is
                    os.write(fd, b"\x1b[1;1R")
                seen += chunk
        assert b"[COUNT count] [BLOCK ms]" in seen and b"QUEUES queue [queue ...]" in seen
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
