"""Function libraries survive a restart, as Redis keeps them in its RDB and AOF.

Each test restarts a real server process on the same data directory; the libraries are in
`functions.rdb` (FUNCTION DUMP's payload), which a damaged copy or a library that no longer
loads must never stop the server from starting.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobcached.scripting import rdbdump
from tests.conftest import ServerProcess


def library(name: str, function: str, returns: str) -> str:
    return (f"#!lua name={name}\n"
            f"redis.register_function('{function}', function() return '{returns}' end)")


class Restarts:
    """One data directory, one server at a time, restarted on demand."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc = ServerProcess(data_dir).wait_ready()

    def client(self) -> redis.Redis:
        return self.proc.client()

    def restart(self) -> redis.Redis:
        assert self.proc.stop() == 0
        self.proc = ServerProcess(self.data_dir).wait_ready()
        return self.client()


@pytest.fixture
def restarts(tmp_path: Path) -> Iterator[Restarts]:
    server = Restarts(tmp_path / "data")
    yield server
    server.proc.stop()


def test_load_replace_delete_flush_and_restore_survive_restarts(restarts: Restarts) -> None:
    r = restarts.client()
    r.function_load(library("one", "f1", "first"))
    r.function_load(library("two", "f2", "second"))
    r = restarts.restart()
    assert (r.fcall("f1", 0), r.fcall("f2", 0)) == (b"first", b"second")
    r.function_load(library("one", "f1", "replaced"), replace=True)
    r.function_delete("two")
    payload = r.function_dump()
    r = restarts.restart()
    assert r.fcall("f1", 0) == b"replaced"
    with pytest.raises(redis.ResponseError, match="Function not found"):
        r.fcall("f2", 0)
    r.function_flush("ASYNC")
    r = restarts.restart()
    assert r.function_list() == []
    r.function_restore(payload)
    assert r.fcall("f1", 0) == b"replaced"
    assert (restarts.data_dir / "functions.rdb").read_bytes() == payload  # what a start loads


def test_a_damaged_file_or_a_library_that_fails_to_load_never_stops_a_start(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    saved = data_dir / "functions.rdb"
    saved.write_bytes(b"not a dump at all")
    proc = ServerProcess(data_dir).wait_ready()
    try:
        r = proc.client()
        assert r.function_list() == []
        assert "could not read the saved function libraries" in proc.log()
        r.function_load(library("good", "g", "ok"))  # a change saves a good file again
        [good] = rdbdump.load(saved.read_bytes())
        r.close()
    finally:
        proc.stop()
    # As another version might leave it: a first library that does not load here.
    broken = library("bad", "b", "ok").replace("register_function", "no_such_function")
    saved.write_bytes(rdbdump.dump([broken.encode(), good]))
    proc = ServerProcess(data_dir).wait_ready()
    try:
        r = proc.client()
        assert r.fcall("g", 0) == b"ok"
        assert [lib[1] for lib in r.function_list()] == [b"good"]  # library_name
        assert "a saved function library failed to load: skipped" in proc.log()
        r.close()
    finally:
        proc.stop()
