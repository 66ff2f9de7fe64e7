"""functions.rdb: written whole and atomically, read back; a save the disk refuses is an
error reply while the change stays in memory."""

from __future__ import annotations

from pathlib import Path

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.functions import restore_functions
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.net.replies import ErrorReply
from jobcached.scripting import persisted, rdbdump
from jobcached.server.session import Session
from jobcached.server.state import ServerState
from tests.unit.scripting.test_effects import Quiet

CODE = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)"


def session_saving_to(path: Path) -> Session:
    load_all()
    server = ServerState(Config(), clock=ManualClock(1_000_000))
    restore_functions(server, str(path))
    return Session(server, Quiet(), "test", "", True)


def test_save_replaces_the_file_and_load_reads_it(tmp_path: Path) -> None:
    path = str(tmp_path / persisted.FILE_NAME)
    assert persisted.load(path) == []
    persisted.save(path, [CODE])
    persisted.save(path, [CODE, CODE.replace(b"lib", b"other")])
    assert persisted.load(path)[1].startswith(b"#!lua name=other")
    assert sorted(p.name for p in tmp_path.iterdir()) == [persisted.FILE_NAME]  # no tmp left


def test_each_change_is_saved(tmp_path: Path) -> None:
    path = tmp_path / persisted.FILE_NAME
    s = session_saving_to(path)
    assert execute(s, [b"FUNCTION", b"LOAD", CODE]) == b"lib"
    assert rdbdump.load(path.read_bytes()) == [CODE]
    execute(s, [b"FUNCTION", b"DELETE", b"lib"])
    assert rdbdump.load(path.read_bytes()) == []


def test_a_save_the_disk_refuses_is_an_error_and_memory_keeps_the_change(
        tmp_path: Path) -> None:
    s = session_saving_to(tmp_path / "missing-dir" / persisted.FILE_NAME)
    reply = execute(s, [b"FUNCTION", b"LOAD", CODE])
    assert isinstance(reply, ErrorReply)
    assert reply.text.startswith("MISCONF the functions changed in memory but could not be "
                                 "saved to functions.rdb")
    assert execute(s, [b"FCALL", b"f", b"0"]) == 1
