"""The command table: declarations, dispatch errors, and SPEC.md kept in step."""

from __future__ import annotations

from pathlib import Path

from jobcached.commands.dispatch import resolve
from jobcached.commands.docs import arguments
from jobcached.commands.registry import load_all, lookup, walk
from jobcached.commands.spec import render
from jobcached.net.replies import ErrorReply, Simple

load_all()
SPEC = Path(__file__).resolve().parents[3] / "protocol" / "SPEC.md"


def test_spec_md_matches_the_command_table() -> None:
    assert SPEC.read_text() == render(), "protocol/SPEC.md is stale: run `make spec`"


def test_every_command_is_documented() -> None:
    for cmd in walk():
        assert cmd.summary, cmd.display_name
        assert cmd.syntax.upper().startswith(cmd.display_name), cmd.display_name


def test_lookup_is_case_insensitive() -> None:
    assert lookup(b"get") is lookup(b"GET") is lookup(b"GeT")


def test_resolve_errors_have_redis_texts() -> None:
    assert resolve([b"nope", b"a", b"b"]) == ErrorReply(
        "ERR unknown command 'nope', with args beginning with: 'a' 'b' ")
    assert resolve([b"GET"]) == ErrorReply("ERR wrong number of arguments for 'get' command")
    assert resolve([b"CLIENT"]) == ErrorReply(
        "ERR wrong number of arguments for 'client' command")
    assert resolve([b"CLIENT", b"KILL"]) == ErrorReply(
        "ERR wrong number of arguments for 'client|kill' command")
    assert resolve([b"client", b"nope"]) == ErrorReply(
        "ERR unknown subcommand 'nope'. Try CLIENT HELP.")


def test_arguments_derived_from_syntax() -> None:
    cmd = lookup(b"CLIENT")
    assert cmd is not None
    reply_args = arguments(cmd.subcommands[b"REPLY"])
    assert reply_args == [{b"name": b"on-off-skip", b"type": b"oneof", b"arguments": [
        {b"name": b"on", b"type": b"pure-token", b"token": b"ON"},
        {b"name": b"off", b"type": b"pure-token", b"token": b"OFF"},
        {b"name": b"skip", b"type": b"pure-token", b"token": b"SKIP"}]}]
    echo = lookup(b"PING")
    assert echo is not None
    assert arguments(echo) == [{b"name": b"message", b"type": b"string",
                                b"flags": {Simple(b"optional")}}]
