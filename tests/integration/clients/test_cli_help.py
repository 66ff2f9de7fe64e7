"""`jobcached-cli help CMD`: the syntax line, summary, version and group from the server's
COMMAND DOCS, the same text redis-cli prints for the same server (its colours aside)."""

from __future__ import annotations

import re
import subprocess

import pytest
from jobcached_client.cli.repl import Repl
from jobcached_client.cli.target import Target

from tests.conftest import ServerProcess, require_tool
from tests.integration.clients.test_cli import cli

_ANSI = re.compile(rb"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("words", [["JOB.PUSH"], ["job.fetch"], ["SET"], ["DEL"],
                                   ["CLIENT", "KILL"], ["QUEUE.STATS"], ["PING"]],
                         ids=" ".join)
def test_help_is_redis_clis(server: ServerProcess, words: list[str]) -> None:
    done = subprocess.run([require_tool("redis-cli"), "-p", str(server.port), "help", *words],
                          capture_output=True, timeout=30, check=True)
    expected = _ANSI.sub(b"", done.stdout).replace(b"\r\n", b"\n")
    ours = cli("-p", str(server.port), "help", *words)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == expected


def test_help_shows_the_syntax_line(server: ServerProcess) -> None:
    lines = cli("-p", str(server.port), "help", "JOB.PUSH").stdout.decode().splitlines()
    assert lines[1].startswith("  JOB.PUSH queue payload [TYPE type] [PRIORITY priority] ")
    assert lines[2] == "  summary: Create a job."


def test_help_for_an_unknown_command_exits_1(server: ServerProcess) -> None:
    done = cli("-p", str(server.port), "help", "NOSUCH")
    assert done.returncode == 1
    assert done.stdout.decode() == "no help for 'NOSUCH'\n"


def test_help_at_the_prompt(server: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    target = Target("127.0.0.1", server.port, None, None, None, False)
    repl = Repl(target, target.connect(), "tty")
    repl.handle("help job.push")
    repl.conn.close()
    assert "\n  JOB.PUSH queue payload [TYPE type]" in capsys.readouterr().out
