"""Wal.sync (the everysec fsync) runs outside the WAL lock: appends made while it is in
progress neither wait for it nor get counted as synced by it. The fsync is held with events,
not timed."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from jobcached.errors import WalWriteError
from jobcached.persistence.wal import RealFs, Wal

WAIT_S = 10  # only bounds a broken test; nothing below depends on timing


class HeldFs(RealFs):
    """An fsync that, once armed, waits inside until the test releases it."""

    def __init__(self) -> None:
        self.fsyncs = 0
        self.hold = False
        self.inside = threading.Event()
        self.release = threading.Event()
        self.error: OSError | None = None

    def fsync(self, fd: int) -> None:
        self.fsyncs += 1
        if self.hold:
            self.hold = False
            self.inside.set()
            assert self.release.wait(WAIT_S)
        if self.error is not None:
            raise self.error
        super().fsync(fd)


def open_wal(path: Path, fs: HeldFs) -> Wal:
    wal = Wal(str(path), fs=fs)
    assert list(wal.replay()) == []
    wal.open_for_append()
    return wal


def test_appends_go_on_during_a_sync_and_stay_dirty(tmp_path: Path) -> None:
    fs = HeldFs()
    wal = open_wal(tmp_path, fs)
    wal.write_batch([b"before"], sync=False)
    fs.hold = True
    syncing = threading.Thread(target=wal.sync)
    syncing.start()
    assert fs.inside.wait(WAIT_S)
    writer = threading.Thread(target=wal.write_batch, args=([b"during"],),
                              kwargs={"sync": False})
    writer.start()
    writer.join(WAIT_S)
    done_while_held = not writer.is_alive()
    fs.release.set()
    syncing.join(WAIT_S)
    assert done_while_held, "an append waited for the fsync"
    synced = fs.fsyncs
    wal.sync()  # "during" was written after that fsync began: it still needs one
    assert fs.fsyncs == synced + 1
    wal.sync()  # now nothing is left
    assert fs.fsyncs == synced + 1
    wal.close()
    assert list(Wal(str(tmp_path)).replay()) == [b"before", b"during"]


def test_a_failed_sync_fails_the_wal(tmp_path: Path) -> None:
    fs = HeldFs()
    wal = open_wal(tmp_path, fs)
    wal.write_batch([b"x"], sync=False)
    fs.error = OSError(errno.EIO, "Input/output error")
    with pytest.raises(WalWriteError, match="fsync"):
        wal.sync()
    with pytest.raises(WalWriteError, match="refuses"):
        wal.write_batch([b"y"], sync=False)
    with pytest.raises(WalWriteError, match="refuses"):
        wal.sync()
