"""jobcached-cli against a real server, its output compared with redis-cli's for the same
replies, and its prompt driven on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from jobcached_client import Client
from jobcached_client.cli.format import SplitError, split_args

from tests.conftest import ServerProcess, require_tool
from tests.integration.clients.conftest import script, unique


def cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([script("jobcached-cli"), *args], input=stdin, capture_output=True,
                          timeout=30, check=False, env={**os.environ, **(env or {})})


def redis_cli(*args: str) -> bytes:
    done = subprocess.run([require_tool("redis-cli"), *args], capture_output=True, timeout=30,
                          check=False)
    return done.stdout


@pytest.fixture(scope="module")
def fixed(server: ServerProcess) -> dict[str, str]:
    """Data whose replies do not change between two runs of the same command."""
    client = Client(port=server.port)
    client.set("cli:plain", "hello world")
    client.set("cli:tricky", b'quote" back\\slash\ttab\nnl\x00nul\x7f\xc3\xa9\xff')
    client.set("cli:empty", "")
    queue = unique("cli")
    done_id = client.jobs.push(queue, {"n": 1}, meta={"a": "b", "c": "d"}, retries=1,
                               backoff=(0.01, 0.01), type="report")
    [job] = client.jobs.fetch(queue)
    client.jobs.fail(job, "first\nsecond line", errtype="ValueError", trace="Traceback:\n  x")
    [job] = client.jobs.fetch(queue, block=5)
    client.jobs.ack(job, result=[1, {"deep": [True, None]}])
    client.close()
    return {"job": done_id, "queue": queue}


COMMANDS = [
    ["PING"], ["SET", "cli:status", "x"], ["GET", "cli:plain"], ["GET", "cli:tricky"],
    ["GET", "cli:empty"], ["GET", "cli:missing"], ["EXISTS", "cli:plain", "cli:missing"],
    ["STRLEN", "cli:tricky"], ["MGET", "cli:plain", "cli:missing", "cli:empty"],
    ["ECHO", "h\u00e9llo"], ["CONFIG", "GET", "maxclients"], ["COMMAND", "INFO", "get", "set"],
    ["COMMAND", "DOCS", "client"], ["COMMAND", "DOCS", "job.fetch"],
    ["JOB.GET", "{job}"], ["JOB.LIST", "QUEUE", "{queue}"], ["QUEUE.STATS", "{queue}"],
    ["JOB.FETCH", "QUEUES", "nothing-here"], ["JOB.GET", "no-such-job"],
    ["NOSUCH", "a", "b"], ["GET"], ["JOB.PUSH", "q", "p", "BOGUS"], ["INFO", "keyspace"],
]


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
@pytest.mark.parametrize("output", ["--no-raw", "raw"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_one_shot_output_is_redis_clis(server: ServerProcess, fixed: dict[str, str],
                                       command: list[str], output: str, resp3: bool) -> None:
    args = [word.format(**fixed) for word in command]
    ours = ["-p", str(server.port), *(["--resp3"] if resp3 else [])]
    theirs = ["-p", str(server.port), *(["-3"] if resp3 else [])]
    if output == "--no-raw":  # terminal formatting; otherwise stdout is a pipe: raw output
        ours.append("--no-raw")
        theirs.append("--no-raw")
    expected = redis_cli(*theirs, *args)
    done = cli(*ours, *args)
    assert done.stdout == expected
    assert done.returncode == (1 if expected.startswith((b"(error) ", b"ERR ")) else 0)


def test_formatting_of_every_shape(server: ServerProcess, fixed: dict[str, str]) -> None:
    """What the comparison above covers, spelled out once for readers."""
    port = ["-p", str(server.port), "--no-raw"]
    assert cli(*port, "EXISTS", "cli:plain").stdout == b"(integer) 1\n"
    assert cli(*port, "GET", "cli:missing").stdout == b"(nil)\n"
    assert cli(*port, "MGET", "cli:plain", "cli:missing").stdout == \
        b'1) "hello world"\n2) (nil)\n'
    assert cli(*port, "JOB.FETCH", "QUEUES", "none").stdout == b"(empty array)\n"
    assert cli(*port, "NOSUCH").stdout.startswith(b"(error) ERR unknown command 'NOSUCH'")
    nested = cli(*port, "COMMAND", "DOCS", "get").stdout.decode()
    assert '10) 1) 1) "name"\n          2) "key"\n' in nested
    resp3 = cli(*port, "--resp3", "QUEUE.STATS", fixed["queue"]).stdout.decode()
    assert resp3.startswith(' 1# "pending" => (integer) 0\n 2# "queued"')


def test_json_output(server: ServerProcess, fixed: dict[str, str]) -> None:
    port = ["-p", str(server.port), "--json"]
    assert json.loads(cli(*port, "GET", "cli:plain").stdout) == "hello world"
    assert json.loads(cli(*port, "GET", "cli:missing").stdout) is None
    assert json.loads(cli(*port, "EXISTS", "cli:plain").stdout) == 1
    job = json.loads(cli(*port, "--resp3", "JOB.GET", fixed["job"]).stdout)
    assert job["state"] == "succeeded" and job["meta"] == {"a": "b", "c": "d"}
    assert job["result"] == '[1,{"deep":[true,null]}]'
    assert job["errors"][0]["message"] == "first\nsecond line"
    flat = json.loads(cli(*port, "JOB.GET", fixed["job"]).stdout)  # RESP2: a flat array
    assert flat[:2] == ["id", fixed["job"]]
    error = cli(*port, "NOSUCH")
    assert json.loads(error.stdout)["error"].startswith("ERR unknown command")
    assert error.returncode == 1
    tricky = json.loads(cli(*port, "GET", "cli:tricky").stdout)
    assert tricky == 'quote" back\\slash\ttab\nnl\x00nul\x7f\u00e9\\xff'


def test_commands_from_stdin(server: ServerProcess) -> None:
    done = cli("-p", str(server.port), stdin=b'SET cli:stdin "two words"\nGET cli:stdin\n\n'
                                              b"EXISTS cli:stdin\n")
    assert done.stdout == b"OK\ntwo words\n1\n" and done.returncode == 0


def test_password_unix_socket_and_url(start_server: Any, tmp_path: Path) -> None:
    sock = tmp_path / "jc.sock"
    proc: ServerProcess = start_server("--requirepass", "pw", "--unixsocket", str(sock))
    denied = cli("-p", str(proc.port), "GET", "k")
    assert denied.stdout.startswith(b"NOAUTH")
    ok = cli("-p", str(proc.port), "-a", "pw", "SET", "k", "v")
    assert ok.stdout == b"OK\n" and b"may not be safe" in ok.stderr
    assert cli("-s", str(sock), "-a", "pw", "--no-auth-warning", "GET", "k").stdout == b"v\n"
    assert cli("-s", str(sock), "--resp3", "GET", "k", env={"JOBCACHEDCLI_AUTH": "pw"}
               ).stdout == b"v\n"
    assert cli("-u", f"jobcached://:pw@127.0.0.1:{proc.port}", "GET", "k").stdout == b"v\n"
    assert cli("-u", f"jobcached+unix://:pw@{sock}", "GET", "k").stdout == b"v\n"
    wrong = cli("-p", str(proc.port), "-a", "nope", "--no-auth-warning", "GET", "k")
    assert b"AUTH failed: WRONGPASS" in wrong.stderr


def test_unreachable_server(tmp_path: Path) -> None:
    done = cli("-s", str(tmp_path / "nothing.sock"), "PING")
    assert done.returncode == 1
    assert b"Could not connect to jobcached at" in done.stderr


def test_stat_shows_load_and_queue_depths(server: ServerProcess) -> None:
    client = Client(port=server.port)
    queue = unique("stat")
    client.jobs.push_many(queue, range(5))
    client.close()
    proc = subprocess.Popen([script("jobcached-cli"), "-p", str(server.port), "--stat",
                             "-i", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().decode() for _ in range(4)]
    finally:
        proc.kill()
        proc.communicate()
    assert lines[0].startswith("------- data ------ ---")
    assert lines[1].split()[:6] == ["keys", "mem", "clients", "blocked", "requests", "ops/s"]
    assert "waiting" in lines[1] and "queues" in lines[1]
    assert f"{queue}=5/0" in lines[2] + lines[3]
    requests = lines[3].split()[4:6]  # "1234 (+0)": the count and what it grew by
    assert int(requests[0]) > 0 and requests[1] == "(+0)"  # this tool's own are left out


def test_split_args_as_redis_cli() -> None:
    assert split_args('SET k "a b\\n\\x41" \'it\\\'s\'  x') == [b"SET", b"k", b"a b\nA",
                                                             b"it's", b"x"]
    assert split_args("  ") == []
    assert split_args('ECHO ""') == [b"ECHO", b""]
    for bad in ['GET "open', "GET 'open", 'GET "a"b']:
        with pytest.raises(SplitError):
            split_args(bad)


def test_interactive_prompt_on_a_terminal(server: ServerProcess, tmp_path: Path) -> None:
    """Drive the prompt as a user would: a pseudo-terminal, replies, Tab, history."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    history = tmp_path / "history"
    pid, fd = pty.fork()
    if pid == 0:  # the child: become jobcached-cli on the terminal
        os.environ.update({"TERM": "xterm", "JOBCACHEDCLI_HISTFILE": str(history)})
        os.execv(script("jobcached-cli"), ["jobcached-cli", "-p", str(server.port)])
    seen = bytearray()

    def expect(text: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < deadline, f"no {text!r} in {bytes(seen)[-800:]!r}"
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 4096)
                if b"\x1b[6n" in chunk:  # prompt_toolkit asks where the cursor is
                    os.write(fd, b"\x1b[1;1R")
                seen.extend(chunk)

    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        prompt = f"127.0.0.1:{server.port}>".encode()
        expect(prompt)
        os.write(fd, b"SET cli:repl 42\r")
        expect(b"OK\r\n")
        os.write(fd, b"GET cli:repl\r")
        expect(b'"42"\r\n')
        os.write(fd, b"EXISTS cli:repl\r")
        expect(b"(integer) 1\r\n")
        os.write(fd, b"MGET cli:repl cli:none\r")
        expect(b'1) "42"\r\n2) (nil)\r\n')
        os.write(fd, b"NOSUCH\r")
        expect(b"(error) ERR unknown command 'NOSUCH'")
        os.write(fd, b"JOB.FE\t")  # Tab completes the name from COMMAND DOCS
        expect(b"TCH")  # the terminal is sent only what changed: "TCH"
        os.write(fd, b" QUEUES nothing-here\r")
        expect(b"(empty array)\r\n")
        os.write(fd, b"quit\r")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert "+GET cli:repl" in history.read_text()
        assert "+JOB.FETCH QUEUES nothing-here" in history.read_text()
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
