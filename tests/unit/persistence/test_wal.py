"""WAL: framing, rotation, torn tails vs. real corruption, repair, disk failures, compaction."""

from __future__ import annotations

import errno
import logging
import os
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.errors import WalCorruptError, WalError, WalVersionError, WalWriteError
from jobcached.persistence import wal as wal_module
from jobcached.persistence.wal import (
    COMPACT_TMP,
    FRAME_BYTES,
    HEADER_BYTES,
    MAGIC,
    WAL_VERSION,
    RealFs,
    Wal,
    base_name,
    segment_name,
    write_base,
)
from jobcached.persistence.walcheck import summarize


class FaultyFs(RealFs):
    """Counts calls and fails on demand: the seam the WAL leaves for exactly this."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: dict[str, OSError] = {}  # operation name -> error to raise (once per set)
        self.partial_write = False  # write half the data before failing

    def _check(self, op: str) -> None:
        self.calls.append(op)
        if op in self.fail:
            raise self.fail[op]

    def write(self, fd: int, data: bytes) -> None:
        if "write" in self.fail and self.partial_write:
            os.write(fd, data[: len(data) // 2])
        self._check("write")
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._check("fsync")
        super().fsync(fd)

    def fsync_dir(self, path: str) -> None:
        self._check("fsync_dir")
        super().fsync_dir(path)

    def rename(self, src: str, dst: str) -> None:
        self._check("rename")
        super().rename(src, dst)

    def remove(self, path: str) -> None:
        self._check("remove")
        super().remove(path)

    def truncate(self, fd: int, size: int) -> None:
        self._check("truncate")
        super().truncate(fd, size)


ENOSPC = OSError(errno.ENOSPC, "No space left on device")
EIO = OSError(errno.EIO, "Input/output error")


def open_wal(path: Path, **kwargs: object) -> tuple[Wal, list[bytes]]:
    wal = Wal(str(path), **kwargs)  # type: ignore[arg-type]
    bodies = list(wal.replay())
    wal.open_for_append()
    return wal, bodies


def rec(i: int) -> bytes:
    return b"record-%06d" % i


def segments(path: Path) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.endswith(".log"))


def test_round_trip_and_format(tmp_path: Path) -> None:
    wal, replayed = open_wal(tmp_path)
    assert replayed == []
    wal.write_batch([rec(1), rec(2)])
    wal.write_batch([rec(3)], sync=False)
    wal.close()
    assert segments(tmp_path) == [segment_name(1)] == ["wal-00000000000000000001.log"]
    data = (tmp_path / segment_name(1)).read_bytes()
    assert data[:HEADER_BYTES] == MAGIC + struct.pack("<II", WAL_VERSION, 0)
    assert struct.unpack_from("<I", data, HEADER_BYTES)[0] == len(rec(1))
    wal, replayed = open_wal(tmp_path)
    assert replayed == [rec(1), rec(2), rec(3)]
    assert wal.next_seq == 4
    assert wal.stats.records_replayed == 3


def test_one_write_call_per_batch_and_fsync_only_when_asked(tmp_path: Path) -> None:
    fs = FaultyFs()
    wal, _ = open_wal(tmp_path, fs=fs)
    fs.calls.clear()
    wal.write_batch([rec(i) for i in range(100)])
    assert fs.calls == ["write", "fsync"]
    wal.write_batch([rec(1)], sync=False)
    wal.write_batch([], sync=False)
    assert fs.calls == ["write", "fsync", "write"]
    wal.sync()
    wal.sync()  # nothing new to sync
    assert fs.calls == ["write", "fsync", "write", "fsync"]
    assert wal.stats.fsyncs == 2 and wal.stats.records_written == 101


def test_rotation_names_segments_by_first_sequence(tmp_path: Path) -> None:
    fs = FaultyFs()
    wal, _ = open_wal(tmp_path, segment_max_bytes=1, fs=fs)  # a new segment for every batch
    wal.write_batch([rec(0), rec(1), rec(2)], sync=False)
    for i in range(1, 10):
        fs.calls.clear()
        wal.write_batch([rec(3 * i + j) for j in range(3)], sync=False)
    # the full segment is fsynced before its successor exists, so only the last can be torn;
    # the successor's header is durable (file and directory) before any record goes in
    assert fs.calls == ["fsync", "write", "fsync", "fsync_dir", "write"]
    wal.close()
    names = segments(tmp_path)
    assert len(names) == wal.stats.segments == 10
    assert names[:3] == [segment_name(1), segment_name(4), segment_name(7)]
    _, replayed = open_wal(tmp_path)
    assert replayed == [rec(i) for i in range(30)]


def test_replay_must_finish_before_append_and_bodies_must_not_be_empty(tmp_path: Path) -> None:
    wal = Wal(str(tmp_path))
    with pytest.raises(WalError, match="replay"):
        wal.open_for_append()
    assert list(wal.replay()) == []
    wal.open_for_append()
    with pytest.raises(ValueError):  # zero length is how zero fill is told from a record
        wal.write_batch([b""])


def write_three(path: Path, **kwargs: object) -> Path:
    wal, _ = open_wal(path, **kwargs)
    wal.write_batch([rec(1), rec(2), rec(3)])
    wal.close()
    return path / segments(path)[-1]


TORN_TAILS = {
    "short body": lambda d: d[:-3],
    "short frame header": lambda d: d + b"\x05\x00",
    "zero fill": lambda d: d + b"\x00" * 4096,
    "garbage": lambda d: d + b"\xde\xad\xbe\xef" * 5,
    "bad crc on last record": lambda d: d[:-1] + bytes([d[-1] ^ 0xFF]),
}


@pytest.mark.parametrize("damage", TORN_TAILS)
def test_torn_tail_is_truncated_with_a_warning(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    seg = write_three(tmp_path)
    good = seg.read_bytes()
    seg.write_bytes(TORN_TAILS[damage](good))
    keep = 2 if damage in ("short body", "bad crc on last record") else 3
    with caplog.at_level(logging.WARNING, logger="jobcached.wal"):
        wal, replayed = open_wal(tmp_path)
    assert replayed == [rec(i) for i in range(1, keep + 1)]
    assert "torn tail" in caplog.text
    assert wal.stats.truncated_tail_bytes == len(TORN_TAILS[damage](good)) - seg.stat().st_size
    wal.write_batch([rec(9)])  # appends continue after the cut, and the log is clean again
    wal.close()
    wal, replayed = open_wal(tmp_path)
    assert replayed[-1] == rec(9) and wal.stats.truncated_tail_bytes == 0


def test_too_much_junk_after_a_bad_tail_record_is_not_called_torn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal_module, "TAIL_SCAN_MAX_BYTES", 64)
    seg = write_three(tmp_path)
    seg.write_bytes(seg.read_bytes() + b"\xff" * 200)
    with pytest.raises(WalCorruptError, match="unexplained"):
        open_wal(tmp_path)


@pytest.mark.parametrize("content", [b"", MAGIC[:5], b"\x00" * 40])
def test_torn_header_of_new_last_segment_is_rewritten(tmp_path: Path, content: bytes) -> None:
    write_three(tmp_path)
    (tmp_path / segment_name(4)).write_bytes(content)  # crash while creating the next segment
    wal, replayed = open_wal(tmp_path)
    assert replayed == [rec(1), rec(2), rec(3)]
    wal.write_batch([rec(4)])
    wal.close()
    assert open_wal(tmp_path)[1] == [rec(1), rec(2), rec(3), rec(4)]


def test_damage_followed_by_valid_records_refuses_then_repairs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seg = write_three(tmp_path)
    data = bytearray(seg.read_bytes())
    second = HEADER_BYTES + FRAME_BYTES + len(rec(1))
    data[second + FRAME_BYTES + 2] ^= 0x01  # one flipped bit inside record 2
    seg.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError) as info:
        open_wal(tmp_path)
    assert info.value.file.endswith(segment_name(1)) and info.value.offset == second
    assert f"{segment_name(1)}: corrupt WAL at byte offset {second}" in str(info.value)
    with caplog.at_level(logging.ERROR, logger="jobcached.wal"):
        wal, replayed = open_wal(tmp_path, repair=True)
    assert replayed == [rec(1)]
    assert "repair" in caplog.text and wal.stats.repaired_bytes > 0
    assert open_wal(tmp_path)[1] == [rec(1)]


def test_damage_in_an_earlier_segment_is_not_a_torn_tail(tmp_path: Path) -> None:
    wal, _ = open_wal(tmp_path, segment_max_bytes=1)
    for i in range(6):
        wal.write_batch([rec(2 * i), rec(2 * i + 1)])
    wal.close()
    first = tmp_path / segments(tmp_path)[0]
    first.write_bytes(first.read_bytes()[:-4])  # torn, but not the last segment
    with pytest.raises(WalCorruptError, match=segments(tmp_path)[0]):
        open_wal(tmp_path)
    wal, replayed = open_wal(tmp_path, repair=True)
    assert replayed == [rec(0)]
    assert segments(tmp_path) == [segment_name(1)]
    wal.write_batch([rec(99)])
    assert wal.next_seq == 3


def test_missing_segment_is_corruption(tmp_path: Path) -> None:
    wal, _ = open_wal(tmp_path, segment_max_bytes=1)
    for i in range(6):
        wal.write_batch([rec(2 * i), rec(2 * i + 1)])
    wal.close()
    names = segments(tmp_path)
    os.remove(tmp_path / names[1])
    with pytest.raises(WalCorruptError, match="missing"):
        open_wal(tmp_path)
    _, replayed = open_wal(tmp_path, repair=True)
    assert replayed == [rec(0), rec(1)] and segments(tmp_path) == names[:1]


def test_missing_first_segment_is_corruption(tmp_path: Path) -> None:
    wal, _ = open_wal(tmp_path, segment_max_bytes=1)
    for i in range(3):
        wal.write_batch([rec(i)])
    wal.close()
    os.remove(tmp_path / segment_name(1))  # only compaction may drop the start of the log
    with pytest.raises(WalCorruptError, match="sequence 1"):
        open_wal(tmp_path)


def test_unknown_version_is_never_repaired(tmp_path: Path) -> None:
    seg = write_three(tmp_path)
    data = bytearray(seg.read_bytes())
    data[8:12] = struct.pack("<I", WAL_VERSION + 1)
    seg.write_bytes(bytes(data))
    with pytest.raises(WalVersionError):
        open_wal(tmp_path, repair=True)
    assert seg.read_bytes() == bytes(data)


@pytest.mark.parametrize("partial", [False, True])
def test_write_failure_fails_every_batch_until_reset(tmp_path: Path, partial: bool) -> None:
    fs = FaultyFs()
    wal, _ = open_wal(tmp_path, fs=fs)
    wal.write_batch([rec(1)])  # acknowledged
    fs.fail["write"], fs.partial_write = ENOSPC, partial
    with pytest.raises(WalWriteError, match="No space"):
        wal.write_batch([rec(2), rec(3)])
    del fs.fail["write"]
    with pytest.raises(WalWriteError):  # the disk is fine again, but nobody said so
        wal.write_batch([rec(4)])
    assert wal.stats.failed and "No space" in (wal.stats.last_write_error or "")
    wal.reset_failure()
    wal.write_batch([rec(5)])
    wal.close()
    assert open_wal(tmp_path)[1] == [rec(1), rec(5)]


def test_fsync_failure_drops_the_unacknowledged_batch_on_reset(tmp_path: Path) -> None:
    fs = FaultyFs()
    wal, _ = open_wal(tmp_path, fs=fs)
    wal.write_batch([rec(1)])
    fs.fail["fsync"] = EIO
    with pytest.raises(WalWriteError, match="fsync"):
        wal.write_batch([rec(2)])
    assert "Input/output" in (wal.stats.last_fsync_error or "")
    with pytest.raises(WalWriteError, match="reset failed"):
        wal.reset_failure()  # still broken: stays failed
    with pytest.raises(WalWriteError):
        wal.write_batch([rec(3)])
    del fs.fail["fsync"]
    wal.reset_failure()
    assert wal.next_seq == 2
    wal.write_batch([rec(4)])
    wal.close()
    assert open_wal(tmp_path)[1] == [rec(1), rec(4)]


def compact(wal: Wal, snapshot: list[bytes], fs: RealFs | None = None) -> int:
    """The server's compaction steps, in order, on one thread: cut, write, install."""
    cut = wal.cut()
    tmp = os.path.join(wal.path, COMPACT_TMP)
    write_base(tmp, snapshot, fs=fs)
    wal.install_base(tmp, cut)
    return cut


def test_compaction_replaces_the_log(tmp_path: Path) -> None:
    wal, _ = open_wal(tmp_path, segment_max_bytes=100)
    for i in range(10):
        wal.write_batch([rec(i)])
    assert len(segments(tmp_path)) > 2
    assert compact(wal, [b"snapshot-a", b"snapshot-b"]) == 11
    assert sorted(os.listdir(tmp_path)) == [base_name(11), segment_name(11)]
    wal.write_batch([rec(100)])
    wal.close()
    report = summarize(str(tmp_path))
    assert (report["base_records"], report["records"]) == (2, 1)
    assert (report["first_seq"], report["last_seq"], report["ok"]) == (11, 11, True)
    wal, replayed = open_wal(tmp_path)
    assert replayed == [b"snapshot-a", b"snapshot-b", rec(100)]
    assert wal.next_seq == 12  # a base's records take no sequence numbers


def test_records_written_between_cut_and_install_follow_the_snapshot(tmp_path: Path) -> None:
    """The server keeps writing while the child writes the snapshot: those records land
    after the cut and replay after the base, each once."""
    wal, _ = open_wal(tmp_path)
    wal.write_batch([rec(1), rec(2)])
    cut = wal.cut()
    wal.write_batch([rec(3)])  # meanwhile, on the loop
    tmp = os.path.join(wal.path, COMPACT_TMP)
    write_base(tmp, [b"state-of-1-and-2"])
    wal.write_batch([rec(4)])
    wal.install_base(tmp, cut)
    wal.write_batch([rec(5)])
    wal.close()
    assert open_wal(tmp_path)[1] == [b"state-of-1-and-2", rec(3), rec(4), rec(5)]


def test_compacting_twice_and_an_empty_state(tmp_path: Path) -> None:
    wal, _ = open_wal(tmp_path)
    assert compact(wal, []) == 1  # nothing written: the active segment is the cut
    wal.write_batch([rec(1)])
    assert compact(wal, [b"snap"]) == 2
    assert compact(wal, [b"snap-again"]) == 2  # nothing since: same cut, base replaced
    wal.write_batch([rec(2)])
    wal.close()
    assert sorted(os.listdir(tmp_path)) == [base_name(2), segment_name(2)]
    assert open_wal(tmp_path)[1] == [b"snap-again", rec(2)]


@pytest.mark.parametrize("step", ["write", "fsync", "rename"])
def test_compaction_failure_before_rename_leaves_the_log_unchanged(
    tmp_path: Path, step: str
) -> None:
    fs = FaultyFs()
    wal, _ = open_wal(tmp_path, fs=fs)
    wal.write_batch([rec(1), rec(2)])
    cut = wal.cut()
    tmp = os.path.join(wal.path, COMPACT_TMP)
    fs.fail[step] = ENOSPC
    with pytest.raises((OSError, WalWriteError)):  # from the write, or the rename
        write_base(tmp, [b"snap"], fs=fs)
        wal.install_base(tmp, cut)
    del fs.fail[step]
    assert not wal.stats.failed
    assert not [n for n in os.listdir(tmp_path) if n.endswith((".tmp", ".base"))]
    wal.write_batch([rec(3)])
    wal.close()
    assert open_wal(tmp_path)[1] == [rec(1), rec(2), rec(3)]


def test_crash_after_rename_before_deleting_old_segments(tmp_path: Path) -> None:
    fs = FaultyFs()
    wal, _ = open_wal(tmp_path, segment_max_bytes=60, fs=fs)
    for i in range(5):
        wal.write_batch([rec(i)])
    old = segments(tmp_path)
    fs.fail["remove"] = EIO  # the deletions after the commit point do not happen
    compact(wal, [b"snap"])
    wal.write_batch([rec(9)])
    wal.close()
    assert set(old) < set(segments(tmp_path))
    _, replayed = open_wal(tmp_path)  # the base wins; leftovers are deleted
    assert replayed == [b"snap", rec(9)]
    assert sorted(os.listdir(tmp_path)) == [base_name(6), segment_name(6)]


def test_crash_before_install_replays_the_old_log(tmp_path: Path) -> None:
    wal, _ = open_wal(tmp_path)
    wal.write_batch([rec(1)])
    wal.cut()
    wal.write_batch([rec(2)])
    write_base(os.path.join(wal.path, COMPACT_TMP), [b"snap"])  # written, never installed
    wal.close()
    assert open_wal(tmp_path)[1] == [rec(1), rec(2)]
    assert segments(tmp_path) == [segment_name(1), segment_name(2)]
    assert len(os.listdir(tmp_path)) == 2  # the tmp file is gone


def test_damaged_base_is_corruption_never_a_torn_tail(tmp_path: Path) -> None:
    wal, _ = open_wal(tmp_path)
    wal.write_batch([rec(1)])
    compact(wal, [b"snap-1", b"snap-2"])
    wal.close()
    base = tmp_path / base_name(2)
    base.write_bytes(base.read_bytes()[:-1])
    with pytest.raises(WalCorruptError, match=base_name(2)):
        open_wal(tmp_path)
    assert open_wal(tmp_path, repair=True)[1] == [b"snap-1"]


def test_leftover_tmp_from_a_crash_during_compaction_is_ignored(tmp_path: Path) -> None:
    write_three(tmp_path)
    (tmp_path / COMPACT_TMP).write_bytes(MAGIC + b"\x01\x00\x00\x00\x01")
    assert open_wal(tmp_path)[1] == [rec(1), rec(2), rec(3)]
    assert segments(tmp_path) == [segment_name(1)] and len(os.listdir(tmp_path)) == 1


def test_summarize_reports_without_changing_anything(tmp_path: Path) -> None:
    wal, _ = open_wal(tmp_path, segment_max_bytes=100)
    for i in range(6):
        wal.write_batch([rec(2 * i), rec(2 * i + 1)])
    wal.close()
    last = tmp_path / segments(tmp_path)[-1]
    last.write_bytes(last.read_bytes() + b"\x00\x01\x02")
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    report = summarize(str(tmp_path))
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before
    assert report["records"] == 12 and report["first_seq"] == 1 and report["last_seq"] == 12
    assert len(report["segments"]) == len(before)
    assert report["corruption"] == [
        {"file": last.name, "offset": last.stat().st_size - 3, "reason": "short record header",
         "torn_tail": True}
    ]
    assert report["ok"] is True
    first = tmp_path / segments(tmp_path)[0]
    first.write_bytes(first.read_bytes()[:-1])
    report = summarize(str(tmp_path))
    assert report["ok"] is False and report["corruption"][0]["file"] == first.name


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=20),
    cut=st.integers(0, 10_000),
    zeros=st.integers(0, 600),
)
def test_any_torn_tail_replays_a_prefix(sizes: list[int], cut: int, zeros: int) -> None:
    """Cut the log at ANY byte and zero-fill: replay never fails and yields a prefix."""
    bodies = [bytes([i % 251 + 1]) * n for i, n in enumerate(sizes)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        wal, _ = open_wal(path)
        wal.write_batch(bodies)
        wal.close()
        seg = path / segment_name(1)
        data = seg.read_bytes()
        seg.write_bytes(data[: cut % (len(data) + 1)] + b"\x00" * zeros)
        wal, replayed = open_wal(path)
        assert replayed == bodies[: len(replayed)]
        wal.write_batch([b"next"])
        wal.close()
        assert open_wal(path)[1] == [*replayed, b"next"]


@pytest.mark.parametrize("tail", [b"", b"\x00" * 64, b"\x17garbage\x99" * 3])
def test_last_record_cut_at_every_byte_offset(tmp_path: Path, tail: bytes) -> None:
    """Every prefix of the last record (plus zeros or garbage) recovers the complete records,
    then appends and restarts cleanly."""
    bodies = [b"first record", b"second record", b"the last record, about to be torn"]
    source = tmp_path / "source"
    wal, _ = open_wal(source)
    wal.write_batch(bodies[:2])
    wal.close()
    before_last = (source / segment_name(1)).stat().st_size
    wal, _ = open_wal(source)
    wal.write_batch(bodies[2:])
    wal.close()
    data = (source / segment_name(1)).read_bytes()
    for cut in range(before_last, len(data)):
        case = tmp_path / f"cut{cut}"
        case.mkdir()
        (case / segment_name(1)).write_bytes(data[:cut] + tail)
        wal, replayed = open_wal(case)
        assert replayed == bodies[:2], cut
        wal.write_batch([b"after"])
        wal.close()
        assert open_wal(case)[1] == [*bodies[:2], b"after"], cut
