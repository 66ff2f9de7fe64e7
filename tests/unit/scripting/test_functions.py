"""Functions without a server: library metadata, loading rules, and effects.

FUNCTION LOAD / DELETE / FLUSH / RESTORE propagate as themselves (a replica loads the same
code); FCALL propagates the effects of the commands its function ran, never the call.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from jobcached.commands.dispatch import execute
from jobcached.net.replies import ErrorReply, Simple
from jobcached.scripting.engine import ScriptError
from jobcached.scripting.functions import parse_metadata
from jobcached.server.session import Session
from tests.unit.scripting.test_effects import effects, session  # noqa: F401

LIB = ("#!lua name=lib\n"
       "redis.register_function('setget', function(keys, args)\n"
       "  redis.call('set', keys[1], args[1]) redis.call('incr', keys[2])\n"
       "  return redis.call('get', keys[1]) end)\n"
       "redis.register_function{function_name='peek', callback=function(keys) "
       "return redis.call('get', keys[1]) end, flags={'no-writes'}}")


def run(s: Session, *argv: str | int | bytes) -> Any:
    return execute(s, [a if isinstance(a, bytes) else str(a).encode() for a in argv])


def test_metadata_keeps_the_shebang_newline_for_line_numbers() -> None:
    assert parse_metadata(b"#!lua name=a_1\nreturn") == (b"a_1", b"\nreturn")
    assert parse_metadata(b"#!LUA   NAME=b  \nx") == (b"b", b"\nx")


@pytest.mark.parametrize(("code", "error"), [
    (b"return 1", "Missing library metadata"),
    (b"#!lua name=x", "Invalid library metadata"),
    (b"#!lua\nx", "Library name was not given"),
    (b"#!lua name=a name=b\nx", "Invalid metadata value, name argument was given multiple times"),
    (b"#!lua name=a flags=x\nx", "Invalid metadata value given: flags=x"),
    (b"#!js name=a\nx", "Engine 'js' not found"),
    (b"#!lua name=a-b\nx", "Library names can only contain letters, numbers, or underscores(_) "
                           "and must be at least one character long"),
])
def test_metadata_errors(code: bytes, error: str) -> None:
    with pytest.raises(ScriptError, match=f"^{re.escape(error)}$"):
        parse_metadata(code)


def test_load_and_fcall_propagate_code_and_effects(session: Session) -> None:  # noqa: F811
    assert run(session, "FUNCTION", "LOAD", LIB) == b"lib"
    assert run(session, "FCALL", "setget", 2, "k1", "k2", "v") == b"v"
    assert run(session, "FCALL_RO", "peek", 1, "k1") == b"v"
    assert effects(session) == [
        [b"FUNCTION", b"LOAD", LIB.encode()],
        [b"MULTI"], [b"SET", b"k1", b"v"], [b"INCR", b"k2"], [b"EXEC"],
    ]


def test_failed_changes_propagate_nothing(session: Session) -> None:  # noqa: F811
    run(session, "FUNCTION", "LOAD", LIB)
    assert isinstance(run(session, "FUNCTION", "LOAD", LIB), ErrorReply)
    assert isinstance(run(session, "FUNCTION", "DELETE", "nosuch"), ErrorReply)
    assert isinstance(run(session, "FUNCTION", "RESTORE", "bad"), ErrorReply)
    assert isinstance(run(session, "FCALL_RO", "setget", 2, "a", "b", "c"), ErrorReply)
    assert len(effects(session)) == 1


def test_delete_flush_restore_propagate_as_themselves(session: Session) -> None:  # noqa: F811
    run(session, "FUNCTION", "LOAD", LIB)
    payload = run(session, "FUNCTION", "DUMP")
    assert run(session, "FUNCTION", "DELETE", "lib") == Simple(b"OK")
    assert run(session, "FUNCTION", "RESTORE", payload) == Simple(b"OK")
    assert run(session, "FUNCTION", "FLUSH", "ASYNC") == Simple(b"OK")
    assert effects(session)[1:] == [[b"FUNCTION", b"DELETE", b"lib"],
                                    [b"FUNCTION", b"RESTORE", payload],
                                    [b"FUNCTION", b"FLUSH", b"ASYNC"]]


def test_replace_keeps_the_old_library_when_the_new_one_fails(
        session: Session) -> None:  # noqa: F811
    run(session, "FUNCTION", "LOAD", LIB)
    broken = "#!lua name=lib\nredis.register_function('other', function() return 2 end) error"
    reply = run(session, "FUNCTION", "LOAD", "REPLACE", broken)
    assert isinstance(reply, ErrorReply)
    assert reply.text.startswith("ERR Error compiling function: user_function:2:")
    assert run(session, "FCALL", "peek", 1, "nokey") is None
    assert isinstance(run(session, "FCALL", "other", 0), ErrorReply)


def test_restore_is_all_or_nothing(session: Session) -> None:  # noqa: F811
    run(session, "FUNCTION", "LOAD", LIB)
    payload = run(session, "FUNCTION", "DUMP")
    run(session, "FUNCTION", "DELETE", "lib")
    run(session, "FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('peek', "
        "function() return 0 end)")
    reply = run(session, "FUNCTION", "RESTORE", payload)
    assert reply == ErrorReply("ERR Function peek already exists")
    assert run(session, "FCALL", "peek", 0) == 0
    assert isinstance(run(session, "FCALL", "setget", 0), ErrorReply)
    assert run(session, "FUNCTION", "RESTORE", payload, "FLUSH") == Simple(b"OK")
    assert run(session, "FCALL", "peek", 1, "k") is None
