"""The cache snapshot without a server process: the file's framing (whole, torn, damaged, not a
snapshot), `save` points, and the Saver's save, load and schedule on a ManualClock. No fork:
SAVE's in-process write is used, and the schedule's BGSAVE is recorded, not run."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from jobcached.clock import ManualClock
from jobcached.commands.dispatch import execute
from jobcached.commands.registry import load_all
from jobcached.config import Config, parse_save, save_points
from jobcached.errors import SnapshotError, StartupError
from jobcached.net.replies import ErrorReply, Simple
from jobcached.replication.snapshot import expire_at_of, read_snapshot, write_snapshot
from jobcached.server.follower import MasterConnection
from jobcached.server.saving import FILE_NAME, Saver, remove_stale_temporaries
from jobcached.server.session import Session
from jobcached.server.state import ServerState

NOW_MS = 1_800_000_000_000
COMMANDS = [[b"SELECT", b"0"], [b"RESTORE", b"k", b"0", b"payload", b"REPLACE", b"ABSTTL"]]


def nothing() -> None:
    """No parent to check on."""


def written(path: Path, commands: list[list[bytes]] = COMMANDS) -> bytes:
    assert write_snapshot(str(path), iter(commands), NOW_MS, nothing) == len(commands)
    return path.read_bytes()


def test_a_written_snapshot_reads_back_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    data = written(path)
    assert data.startswith(b"*3\r\n$18\r\nJOBCACHED-SNAPSHOT\r\n$1\r\n1\r\n")
    assert read_snapshot(str(path)) == COMMANDS
    assert os.listdir(tmp_path) == [FILE_NAME]
    assert read_snapshot(str(tmp_path / "none")) is None
    written(path, [])
    assert read_snapshot(str(path)) == []


@pytest.mark.parametrize("cut", [1, 40, -30, -1])
def test_a_torn_snapshot_is_refused(tmp_path: Path, cut: int) -> None:
    path = tmp_path / FILE_NAME
    data = written(path)
    path.write_bytes(data[:cut] if cut > 0 else data[:len(data) + cut])
    with pytest.raises(SnapshotError, match=r"torn|not a jobcached|damaged"):
        read_snapshot(str(path))


def test_a_changed_byte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    data = bytearray(written(path))
    data[data.index(b"payload")] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="damaged: its checksum"):
        read_snapshot(str(path))


@pytest.mark.parametrize("content", [b"", b"REDIS0010\xfa", b"*1\r\n$4\r\nPING\r\n",
                                     b"-ERR no\r\n", b"$-5\r\n"])
def test_other_files_are_not_snapshots(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(content)
    with pytest.raises(SnapshotError):
        read_snapshot(str(path))


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    old = written(path)

    def failing() -> Any:
        yield [b"SELECT", b"0"]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_snapshot(str(path), failing(), NOW_MS, nothing)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == [FILE_NAME]
    (tmp_path / f"{FILE_NAME}.123.tmp").write_bytes(b"half")
    remove_stale_temporaries(str(tmp_path))
    assert os.listdir(tmp_path) == [FILE_NAME]


def test_the_expiry_of_each_key_command() -> None:
    assert expire_at_of([b"SET", b"k", b"v"]) == 0
    assert expire_at_of([b"SET", b"k", b"v", b"PXAT", b"%d" % NOW_MS]) == NOW_MS
    assert expire_at_of([b"RESTORE", b"k", b"0", b"payload", b"REPLACE", b"ABSTTL"]) == 0
    assert expire_at_of([b"RESTORE", b"k", b"%d" % NOW_MS, b"p", b"REPLACE", b"ABSTTL"]) == NOW_MS
    assert expire_at_of([b"SELECT", b"3"]) == 0


def test_save_points_are_redis_pairs() -> None:
    assert parse_save("") == "" and save_points("") == []
    assert parse_save(" 3600 1  300 100 ") == "3600 1 300 100"
    assert save_points("3600 1 300 100") == [(3600, 1), (300, 100)]
    for bad in ("10", "10 x", "10 -2", "1 2 3"):
        with pytest.raises(ValueError, match="Invalid save parameters"):
            parse_save(bad)


# ------------------------------------------------------------------ the Saver


def server(tmp_path: Path, **settings: str) -> tuple[ServerState, Session]:
    load_all()
    config = Config()
    config.dir = str(tmp_path)
    for name, value in settings.items():
        config.set(name.replace("_", "-"), value)
    state = ServerState(config, ManualClock(NOW_MS))
    session = Session(state, MasterConnection(), "test", "", True)
    return state, session


def run(s: Session, *argv: str | int) -> Any:
    reply = execute(s, [str(a).encode() for a in argv])
    assert not isinstance(reply, ErrorReply), (argv, reply)
    return reply


def load(state: ServerState) -> None:
    asyncio.run(state.saver.load(lambda s, argv: execute(s, argv)))


def test_save_then_load_keeps_keys_databases_and_absolute_ttls(tmp_path: Path) -> None:
    state, s = server(tmp_path)
    run(s, "SET", "plain", "v")
    run(s, "SET", "soon", "v", "PX", 1000)
    run(s, "SET", "later", "v", "PX", 60_000)
    run(s, "SELECT", 3)
    run(s, "RPUSH", "list", "a", "b")
    assert state.saver.changes() == 5  # RPUSH counts its elements, as Redis
    state.saver.save()
    assert state.saver.changes() == 0 and state.last_save_ms == NOW_MS

    fresh, s2 = server(tmp_path)
    assert isinstance(fresh.clock, ManualClock)
    fresh.clock.advance(2000)  # "soon" expired while the server was down
    load(fresh)
    assert fresh.saver.loaded_keys == 3 and fresh.saver.expired_at_load == 1
    assert run(s2, "GET", "soon") is None
    assert run(s2, "PEXPIRETIME", "later") == NOW_MS + 60_000
    run(s2, "SELECT", 3)
    assert run(s2, "LRANGE", "list", 0, -1) == [b"a", b"b"]
    assert fresh.saver.changes() == 0 and fresh.saver.file_current
    assert fresh.backlog.offset == 0  # loading logs nothing for followers


def test_a_damaged_snapshot_stops_the_load_and_stays(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(b"garbage")
    state, _ = server(tmp_path)
    with pytest.raises(StartupError, match=f"{FILE_NAME}: not a jobcached cache snapshot.*"
                                           "move it away"):
        load(state)
    assert path.read_bytes() == b"garbage"


def test_the_stop_saves_when_configured_and_not_current(tmp_path: Path) -> None:
    state, s = server(tmp_path)
    path = tmp_path / FILE_NAME
    assert state.saver.save_at_stop() and not path.exists()  # nothing configured
    state.config.cache_persistence = "snapshot"
    assert state.saver.save_at_stop() and path.exists()
    before = path.stat().st_mtime_ns
    assert state.saver.save_at_stop() and path.stat().st_mtime_ns == before  # current
    run(s, "SET", "k", "v")
    state.saver.at_shutdown = False  # SHUTDOWN NOSAVE
    assert state.saver.save_at_stop() and path.stat().st_mtime_ns == before
    state.saver.at_shutdown = True
    assert state.saver.save_at_stop() and read_snapshot(str(path)) is not None
    assert state.saver.changes() == 0


def test_a_failed_save_is_reported_and_the_old_file_kept(tmp_path: Path) -> None:
    state, s = server(tmp_path, save="60 1")
    state.saver.save()
    old = (tmp_path / FILE_NAME).read_bytes()
    run(s, "SET", "k", "v")
    (tmp_path / f"{FILE_NAME}.{os.getpid()}.tmp").mkdir()  # the temporary cannot be opened
    with pytest.raises(OSError):
        state.saver.save()
    assert not state.saver.save_at_stop()
    assert dict(state.saver.info_rows())["rdb_last_bgsave_status"] == "err"
    assert (tmp_path / FILE_NAME).read_bytes() == old


class Spy(Saver):
    """A Saver whose background saves are recorded instead of forked."""

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        self.started: list[int] = []
        self.fail = False

    def bgsave(self) -> None:
        self.started.append(self.state.clock.now_ms())
        self.last_try_ms = self.state.clock.now_ms()
        if self.fail:
            self.last_ok = False
            raise OSError("cannot fork")
        self._saved(self.state.cache_stats.dirty, self.state.clock.now_ms())


def test_save_points_start_background_saves_as_redis_cron(tmp_path: Path) -> None:
    state, s = server(tmp_path, save="10 3 100 1")
    clock = state.clock
    assert isinstance(clock, ManualClock)
    spy = state.saver = Spy(state)
    run(s, "SET", "a", 1)
    run(s, "SET", "b", 1)
    clock.advance(10_000)
    spy.cron()
    assert spy.started == []  # 2 changes, and exactly 10 s is not more than 10 s
    clock.advance(1)
    run(s, "SET", "c", 1)
    spy.cron()
    assert spy.started == [NOW_MS + 10_001]
    run(s, "SET", "d", 1)
    clock.advance(50_000)
    spy.cron()
    assert len(spy.started) == 1  # one change: the 100 s point only
    clock.advance(50_001)
    spy.fail = True
    spy.cron()
    assert len(spy.started) == 2
    clock.advance(5_000)
    spy.cron()
    assert len(spy.started) == 2  # a failed save waits RETRY_DELAY_MS before the next try
    clock.advance(1)
    spy.fail = False
    spy.cron()
    assert len(spy.started) == 3 and spy.changes() == 0


def test_a_scheduled_bgsave_starts_at_the_next_turn(tmp_path: Path) -> None:
    state, s = server(tmp_path)
    spy = state.saver = Spy(state)
    run(s, "MULTI")
    run(s, "BGSAVE")
    assert run(s, "EXEC") == [Simple(b"Background saving scheduled")]
    assert spy.scheduled and spy.started == []
    spy.cron()
    assert spy.started == [NOW_MS] and not spy.scheduled
