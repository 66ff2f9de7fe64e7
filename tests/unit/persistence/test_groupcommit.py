"""Group commit: grouping under a slow fsync, the three policies, errors, ordering, shutdown.

No test sleeps or relies on timing: the writer thread is held inside fsync with events, the
everysec clock is a fake, and results come back through a queue.
"""

from __future__ import annotations

import ast
import errno
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from jobcached.errors import WalError, WalWriteError
from jobcached.persistence.groupcommit import GroupCommitter
from jobcached.persistence.wal import RealFs, Wal

TIMEOUT_S = 10  # generous bound for a thread hand-off on a loaded machine; never reached


class GateFs(RealFs):
    """Counts writes and fsyncs; can hold the next fsync until released, and fail fsyncs."""

    def __init__(self) -> None:
        self.writes = 0
        self.fsyncs = 0
        self.hold_next_fsync = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fsync_error: OSError | None = None

    def write(self, fd: int, data: bytes) -> None:
        self.writes += 1
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self.fsyncs += 1
        if self.hold_next_fsync:
            self.hold_next_fsync = False
            self.entered.set()
            assert self.release.wait(TIMEOUT_S)
        if self.fsync_error is not None:
            raise self.fsync_error
        super().fsync(fd)


class Results:
    """Stands in for loop.call_soon_threadsafe: callbacks are queued, then run by the test."""

    def __init__(self) -> None:
        self.callbacks: queue.Queue[Callable[[], None]] = queue.Queue()
        self.outcomes: list[Exception | None] = []

    def notify(self, callback: Callable[[], None]) -> None:
        self.callbacks.put(callback)

    def on_done(self, error: Exception | None) -> None:
        self.outcomes.append(error)

    def wait_for(self, count: int) -> list[Exception | None]:
        while len(self.outcomes) < count:
            self.callbacks.get(timeout=TIMEOUT_S)()
        return self.outcomes


def make(tmp_path: Path) -> tuple[Wal, GateFs]:
    fs = GateFs()
    wal = Wal(str(tmp_path), fs=fs)
    list(wal.replay())
    wal.open_for_append()
    fs.writes = fs.fsyncs = 0
    return wal, fs


def replay(tmp_path: Path) -> list[bytes]:
    return list(Wal(str(tmp_path)).replay())


def test_always_writes_fsyncs_then_reports(tmp_path: Path) -> None:
    wal, fs = make(tmp_path)
    results = Results()
    committer = GroupCommitter(wal, "always", results.notify)
    committer.submit([b"a", b"b"], results.on_done)
    assert results.wait_for(1) == [None]
    assert (fs.writes, fs.fsyncs) == (1, 1)  # on disk before on_done ran
    committer.close()
    assert replay(tmp_path) == [b"a", b"b"]


def test_submissions_during_a_slow_fsync_share_the_next_one(tmp_path: Path) -> None:
    wal, fs = make(tmp_path)
    results = Results()
    committer = GroupCommitter(wal, "always", results.notify)
    fs.hold_next_fsync = True
    committer.submit([b"first"], results.on_done)
    assert fs.entered.wait(TIMEOUT_S)  # the writer thread is now inside fsync
    for i in range(1000):
        committer.submit([b"r%d" % i], results.on_done)
    fs.release.set()
    committer.close()
    assert results.wait_for(1001) == [None] * 1001
    assert (fs.writes, fs.fsyncs) == (2, 2)  # 1001 submissions, 2 write+fsync rounds
    assert committer.stats.largest_group == 1000
    assert replay(tmp_path) == [b"first"] + [b"r%d" % i for i in range(1000)]


def test_a_failed_fsync_fails_every_waiting_batch_and_later_ones(tmp_path: Path) -> None:
    wal, fs = make(tmp_path)
    results = Results()
    committer = GroupCommitter(wal, "always", results.notify)
    committer.submit([b"acked"], results.on_done)
    assert results.wait_for(1) == [None]
    fs.hold_next_fsync = True
    fs.fsync_error = OSError(errno.EIO, "Input/output error")
    committer.submit([b"doomed"], results.on_done)
    assert fs.entered.wait(TIMEOUT_S)
    for _ in range(10):
        committer.submit([b"queued"], results.on_done)
    fs.release.set()
    outcomes = results.wait_for(12)[1:]
    assert all(isinstance(e, WalWriteError) for e in outcomes), outcomes
    fs.fsync_error = None
    wal.reset_failure()  # the operator's action
    committer.submit([b"after reset"], results.on_done)
    assert results.wait_for(13)[-1] is None
    committer.close()
    assert replay(tmp_path) == [b"acked", b"after reset"]


def test_everysec_reports_after_write_and_fsyncs_at_most_once_per_interval(
    tmp_path: Path,
) -> None:
    wal, fs = make(tmp_path)
    results = Results()
    now = [0.0]
    # A huge interval on a fake clock: the thread's real wait never times out by itself.
    committer = GroupCommitter(
        wal, "everysec", results.notify, sync_interval_s=1000.0, monotonic=lambda: now[0]
    )
    committer.submit([b"a"], results.on_done)  # first write: an fsync is due at once
    results.wait_for(1)
    committer.submit([b"b"], results.on_done)  # same instant: written, not fsynced
    results.wait_for(2)
    now[0] = 1000.0
    committer.submit([b"c"], results.on_done)  # interval over: fsynced after the write
    results.wait_for(3)
    committer.submit([b"d"], results.on_done)  # not due: left for close()
    committer.close()
    assert results.wait_for(4) == [None] * 4
    assert fs.writes == 4
    # With the thread idle each batch is written inline and reported at once; the thread then
    # fsyncs at most once per interval (two intervals here) and once more at close, however
    # the four writes happen to interleave with its wake-ups.
    assert committer.stats.inline_writes == 4
    assert 1 <= fs.fsyncs <= 3
    assert fs.fsyncs <= committer.stats.periodic_fsyncs  # a sync with nothing new is free


def test_no_policy_never_fsyncs(tmp_path: Path) -> None:
    wal, fs = make(tmp_path)
    results = Results()
    committer = GroupCommitter(wal, "no", results.notify)
    for i in range(20):
        committer.submit([b"x%d" % i], results.on_done)
    committer.close()
    assert results.wait_for(20) == [None] * 20
    assert fs.fsyncs == 0
    assert replay(tmp_path) == [b"x%d" % i for i in range(20)]


def test_actions_are_ordered_with_batches(tmp_path: Path) -> None:
    wal, _ = make(tmp_path)
    results = Results()
    committer = GroupCommitter(wal, "always", results.notify)
    cuts: list[int] = []
    committer.submit([b"old-1", b"old-2"], results.on_done)
    committer.run(lambda: cuts.append(wal.cut()), results.on_done)
    committer.submit([b"new"], results.on_done)
    committer.run(lambda: 1 / 0, results.on_done)
    committer.close()
    outcomes = results.wait_for(4)
    assert outcomes[:3] == [None, None, None] and isinstance(outcomes[3], ZeroDivisionError)
    assert cuts == [3]  # after the two records submitted before it, before the one after
    assert replay(tmp_path) == [b"old-1", b"old-2", b"new"]


def test_bad_input_and_use_after_close(tmp_path: Path) -> None:
    wal, _ = make(tmp_path)
    results = Results()
    with pytest.raises(ValueError, match="policy"):
        GroupCommitter(wal, "sometimes", results.notify)  # type: ignore[arg-type]
    committer = GroupCommitter(wal, "always", results.notify)
    with pytest.raises(ValueError):
        committer.submit([b"ok", b""], results.on_done)
    committer.close()
    committer.close()
    with pytest.raises(WalError, match="closed"):
        committer.submit([b"late"], results.on_done)
    assert results.outcomes == []


def test_a_failing_notify_does_not_kill_the_writer_thread(tmp_path: Path) -> None:
    wal, _ = make(tmp_path)
    lost: list[Callable[[], None]] = []
    delivered: list[Exception | None] = []

    def notify(callback: Callable[[], None]) -> None:
        if not lost:
            lost.append(callback)
            raise RuntimeError("Event loop is closed")
        callback()

    committer = GroupCommitter(wal, "always", notify)
    committer.submit([b"one"], delivered.append)
    committer.submit([b"two"], delivered.append)
    committer.close()
    assert len(lost) == 1 and delivered == [None]  # one result lost, the thread lived on


def test_durability_modules_never_import_asyncio() -> None:
    package = Path(__file__).parents[3] / "jobcached"
    for name in ("jobs/timerwheel.py", "persistence/wal.py", "persistence/groupcommit.py"):
        tree = ast.parse((package / name).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] == "asyncio"}, name
