"""The write-ahead log: job effects survive a crash because they are on disk before we reply.

On disk: segments `wal-<sequence number of the first record, 20 digits>.log`, each starting with
`MAGIC | u32 WAL_VERSION | u32 flags`, then records `u32 length | u32 crc32c(body) | body`
(little-endian; body is the caller's msgpack, never empty). Records are numbered from 1 across
segments, so the names also prove none is missing. A base file `wal-<N>.base` (same format,
FLAG_BASE set) is a snapshot of the state that every record before N built: its records are not
numbered, and it supersedes every older segment and base.

Durability: a new segment gets its header, an fsync and a directory fsync before any record, and
the one before it is fsynced first, so only the last segment can have a torn tail. After a failed
write or fsync every write raises WalWriteError until an operator calls `reset_failure()`, which
cuts the file back to the last acknowledged record; acknowledged records are never touched.

Replay starts at the newest base (older bases, segments before it and `*.tmp` files are
leftovers of an interrupted compaction, and are deleted), or at sequence 1 without one. A bad
record (short header or body, zero length, crc mismatch) at the tail of the last segment, with
nothing valid after it, is a torn write: it is truncated with a warning and counted. Damage
anywhere else (a base is always whole: it is fsynced before it gets its name), or followed by a
valid record, raises WalCorruptError naming file and offset; `repair=True` cuts the log there
instead, dropping the rest.

Compaction, and what replay sees if we die after each step (the log never stops taking writes):
1. `cut()`: the writer starts segment N; the snapshot describes every record before N;
2. `write_base()` writes the snapshot to `wal-compact.base.tmp` and fsyncs it (the server does
   this in a forked child, so the event loop never waits for it): the old log, tmp deleted;
3. `install_base()` renames it to `wal-<N>.base` and fsyncs the directory: base + segments >= N;
4. it deletes the older segments and base: replay deletes what is left of them anyway.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import crc32c

from jobcached.errors import WalCorruptError, WalError, WalVersionError, WalWriteError

log = logging.getLogger("jobcached.wal")

WAL_VERSION = 1
# If you change the record or header format, bump WAL_VERSION and keep a reader for the old one
# (beanstalkd's procedure): keep the old parser as `_parse_records_v<N>` and dispatch on the
# header's version, so an upgraded server still replays an old log.
MAGIC = b"JCWAL\r\n\x1a"  # \r\n and ^Z expose a file mangled by a text-mode copy
_HEADER, _FRAME = struct.Struct("<8sII"), struct.Struct("<II")
HEADER_BYTES, FRAME_BYTES = _HEADER.size, _FRAME.size
FLAG_BASE = 1
# Rotate past this: it bounds one replay read and how long dead data waits for compaction.
SEGMENT_MAX_BYTES = 64 * 1024 * 1024
# Largest record body; requests are bounded far below this before they reach the WAL.
MAX_RECORD_BYTES = 64 * 1024 * 1024
# How far past a bad tail record we look for valid ones before calling it a torn write.
TAIL_SCAN_MAX_BYTES = 1024 * 1024
# Snapshot records are written in chunks of about this size, to bound memory.
COMPACT_CHUNK_BYTES = 4 * 1024 * 1024

_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux only; elsewhere pages fault in as read
_NAME = re.compile(r"^wal-(\d{20})\.log$")
_BASE_NAME = re.compile(r"^wal-(\d{20})\.base$")
COMPACT_TMP = "wal-compact.base.tmp"
"""Where the compaction child writes the snapshot before `install_base` names it."""
_APPEND = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
_CREATE = _APPEND | os.O_CREAT | os.O_TRUNC


def segment_name(first_seq: int) -> str:
    return f"wal-{first_seq:020d}.log"


def base_name(next_seq: int) -> str:
    return f"wal-{next_seq:020d}.base"


class RealFs:
    """The file operations behind every WAL change. Replaced by tests to simulate failures
    (ENOSPC from write, EIO from fsync). Reads and close use `os` directly: nothing to inject."""

    def open(self, path: str, flags: int) -> int:
        return os.open(path, flags, 0o644)

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a regular file takes it all in one call, save on a signal or a full disk
            view = view[os.write(fd, view) :]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        os.remove(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class WalStats:
    """Counters for metrics and `jobcached wal check`, updated in place."""

    segments: int = 0
    records_replayed: int = 0
    truncated_tail_bytes: int = 0
    repaired_bytes: int = 0
    records_written: int = 0
    bytes_written: int = 0
    fsyncs: int = 0
    compactions: int = 0
    failed: bool = False
    last_write_error: str | None = None
    last_fsync_error: str | None = None


@dataclass
class _Segment:
    """One segment as read: its intact records, and the first damage if any."""

    name: str
    first_seq: int
    size: int
    flags: int = 0
    bodies: list[bytes] = field(default_factory=list)
    good_end: int = 0  # length of the intact prefix
    error: str | None = None  # what is wrong at good_end
    follows: str | None = None  # why that is not a torn tail (valid data comes after it)


def _parse_records(data: bytes | mmap.mmap, pos: int,
                   out: list[bytes]) -> tuple[int, str | None]:
    """The replay hot loop: append intact bodies from `pos`; return where and why it stopped.

    Each intact record costs one test of the combined conditions; which one failed is worked
    out only for the bad record, by `_why_bad`."""
    unpack, crc, end, append = _FRAME.unpack_from, crc32c.crc32c, len(data), out.append
    while pos < end:
        start = pos + FRAME_BYTES
        if start <= end:
            length, want = unpack(data, pos)
            stop = start + length
            if length and stop <= end:
                body = data[start:stop]
                if crc(body) == want:
                    append(body)
                    pos = stop
                    continue
        return pos, _why_bad(data, pos)
    return pos, None


def _why_bad(data: bytes | mmap.mmap, pos: int) -> str:
    """What is wrong with the record at `pos` (which `_parse_records` found bad)."""
    if len(data) - pos < FRAME_BYTES:
        return "short record header"
    length = _FRAME.unpack_from(data, pos)[0]
    if length == 0:
        return "zero-length record"
    if pos + FRAME_BYTES + length > len(data):
        return "short record body"
    return "crc mismatch"


def _valid_data_after(data: bytes, bad: int) -> str | None:
    """Why damage at `bad` is not a torn tail, or None if only junk follows it."""
    last = len(data.rstrip(b"\x00"))  # zero fill is the usual torn tail
    if last <= bad + 1:
        return None
    # Try where the length says the next frame is first (a flipped bit in a body), then anywhere.
    guess = bad + 1
    if bad + FRAME_BYTES <= len(data):
        guess = bad + FRAME_BYTES + _FRAME.unpack_from(data, bad)[0]
    limit, size, crc = min(last, bad + 1 + TAIL_SCAN_MAX_BYTES), len(data), crc32c.crc32c
    for pos in (guess, *range(bad + 1, limit)):
        if pos + FRAME_BYTES <= size:
            length, want = _FRAME.unpack_from(data, pos)
            start, stop = pos + FRAME_BYTES, pos + FRAME_BYTES + length
            if length and stop <= size and crc(data[start:stop]) == want:  # no junk-sized slices
                return f"a valid record follows at offset {pos}"
    return f"{last - bad} bytes of unexplained data follow" if last > limit else None


def _read_segment(path: str, name: str, first_seq: int) -> _Segment:
    with open(os.path.join(path, name), "rb") as f:
        if not os.fstat(f.fileno()).st_size:
            return _parse_segment(b"", name, first_seq)
        # Mapped, not read: the pages come straight from the page cache, all in one call
        # (MAP_POPULATE), where read() would copy 64 MB into fresh memory page by page.
        with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE | _POPULATE,
                       prot=mmap.PROT_READ) as data:
            return _parse_segment(data, name, first_seq)


def _parse_segment(data: bytes | mmap.mmap, name: str, first_seq: int) -> _Segment:
    """Check and split one segment's contents (its bodies are copies: `data` may be unmapped
    once this returns)."""
    seg = _Segment(name, first_seq, len(data))
    magic, version, flags = _HEADER.unpack_from(data) if len(data) >= HEADER_BYTES else (b"", 0, 0)
    if magic != MAGIC or version == 0:  # no version 0 was ever written: that is zero fill
        seg.error = "short header" if len(data) < HEADER_BYTES else "bad header"
    elif version != WAL_VERSION:
        raise WalVersionError(f"{name}: WAL format {version}; this build reads {WAL_VERSION}")
    else:
        seg.flags = flags
        seg.good_end, seg.error = _parse_records(data, HEADER_BYTES, seg.bodies)
    if seg.error:
        seg.follows = _valid_data_after(data[:], seg.good_end)
    return seg


class Wal:
    """One WAL directory: `wal = Wal(path)`; `for body in wal.replay(): ...`;
    `wal.open_for_append()`; then `write_batch` (the group-commit thread), and `cut` and
    `install_base` to compact.

    Writing methods share one lock, so an operator's `reset_failure` from the event loop thread
    cannot interleave with the group-commit thread.
    """

    def __init__(self, path: str, *, repair: bool = False,
                 segment_max_bytes: int = SEGMENT_MAX_BYTES, fs: RealFs | None = None) -> None:
        self.path = path
        self.stats = WalStats()
        self.next_seq = 1  # sequence number of the next record
        self._repair, self._segment_max = repair, segment_max_bytes
        self._fs = fs if fs is not None else RealFs()
        self._lock = threading.Lock()
        self._replayed = False
        self._segments: list[int] = []  # first sequence numbers of the segment files
        self._base: str | None = None  # file name of the base the log starts with
        self._fd: int | None = None  # the active (last) segment, and its state:
        self._seg_first, self._size = 1, 0
        self._good = (0, 1)  # (size, next_seq) as of the last acknowledged write
        self._dirty = False  # written but not fsynced
        self._failed: OSError | None = None
        self._checking = False
        self.report: dict[str, Any] = {"segments": [], "corruption": [], "leftover_files": []}

    def replay(self, *, check: bool = False) -> Iterator[bytes]:
        """Yield every record body in order, fixing the tail as the module docstring says.

        Raises, mid-iteration, WalCorruptError for damage before the tail (unless `repair`) and
        WalVersionError for another format version. Exhaust it before `open_for_append`. With
        `check`, nothing on disk changes and nothing is raised: see `self.report`.
        """
        self._checking = check
        if not check:
            os.makedirs(self.path, exist_ok=True)
        segs, bases, leftovers = [], [], self.report["leftover_files"]
        for name in sorted(os.listdir(self.path)):
            if m := _NAME.match(name):
                segs.append((int(m.group(1)), name))
            elif m := _BASE_NAME.match(name):
                bases.append((int(m.group(1)), name))
            elif name.startswith("wal-") and name.endswith(".tmp"):
                leftovers.append(name)
        if bases:
            start = self.next_seq = bases[-1][0]
            leftovers += [name for _, name in bases[:-1]]
            leftovers += [name for first, name in segs if first < start]
            segs = [bases[-1]] + [(first, name) for first, name in segs if first >= start]
        for name in () if check else leftovers:
            log.info("removing %s: left over from an interrupted compaction", name)
            self._fs.remove(os.path.join(self.path, name))
        for i, (first_seq, name) in enumerate(segs):
            if first_seq != self.next_seq:
                why = f"should start at sequence {self.next_seq} (a segment is missing)"
                if self._damaged(segs, i, 0, why, cut=False):
                    break
            seg = _read_segment(self.path, name, first_seq)
            self.stats.records_replayed += len(seg.bodies)
            yield from seg.bodies
            is_base = name.endswith(".base")
            if is_base:  # its records are the state before first_seq: they take no numbers
                self._base = name
            else:
                self._segments.append(first_seq)
                self._seg_first, self._size = first_seq, seg.size
                self.next_seq = first_seq + len(seg.bodies)
            self.report["segments"].append({"file": name, "first_seq": first_seq,
                                            "records": len(seg.bodies), "bytes": seg.size,
                                            "base": is_base})
            if seg.error is None:
                continue
            why = seg.error + (f"; {seg.follows}" if seg.follows else "")
            if is_base or i < len(segs) - 1 or seg.follows is not None:
                if self._damaged(segs, i, seg.good_end, why, cut=True):
                    break
                continue
            self.report["corruption"].append(
                {"file": name, "offset": seg.good_end, "reason": why, "torn_tail": True})
            if not check:
                log.warning("%s: torn tail at byte offset %d (%s): truncating %d bytes",
                            name, seg.good_end, seg.error, seg.size - seg.good_end)
                self.stats.truncated_tail_bytes += seg.size - seg.good_end
                self._cut(name, seg.good_end)
        self.stats.segments = len(self._segments)
        self._good = (self._size, self.next_seq)
        self._replayed = not check

    def _damaged(self, segs: list[tuple[int, str]], i: int, offset: int, why: str, *,
                 cut: bool) -> bool:
        """Damage before the tail: refuse; or repair, keeping what precedes it (segment i cut
        at `offset`, or dropped whole) and deleting every later segment. Returns whether replay
        stops here (not in a check, which only reports)."""
        name, path = segs[i][1], os.path.join(self.path, segs[i][1])
        self.report["corruption"].append(
            {"file": name, "offset": offset, "reason": why, "torn_tail": False})
        if self._checking:
            return False
        if not self._repair:
            raise WalCorruptError(path, offset, why)
        dropped = self._size - offset if cut else 0
        if cut:
            self._cut(name, offset)
        for _, later in segs[i + 1 if cut else i :]:
            dropped += os.path.getsize(os.path.join(self.path, later))
            self._fs.remove(os.path.join(self.path, later))
        self._fs.fsync_dir(self.path)
        log.error("repair: %s at byte offset %d: %s; dropped %d bytes", path, offset, why, dropped)
        self.stats.repaired_bytes += dropped
        return True

    def _cut(self, name: str, size: int) -> None:
        """Truncate a segment to `size` bytes, rewriting the header if that was the damage."""
        fd = self._fs.open(os.path.join(self.path, name), os.O_WRONLY)
        try:
            if size < HEADER_BYTES:  # a fresh fd writes at offset 0
                self._fs.truncate(fd, 0)
                self._fs.write(fd, _HEADER.pack(MAGIC, WAL_VERSION, 0))
                size = HEADER_BYTES
            self._fs.truncate(fd, size)
            self._fs.fsync(fd)
        finally:
            os.close(fd)
        self._size = size

    def open_for_append(self) -> None:
        """Open the last segment for appending (creating the first one in an empty directory)."""
        if not self._replayed:
            raise WalError("replay() must run to the end before the WAL can be appended to")
        with self._lock:
            if self._segments:
                path = os.path.join(self.path, segment_name(self._seg_first))
                self._fd = self._fs.open(path, _APPEND)
            else:
                self._create_segment()

    def write_batch(self, bodies: Sequence[bytes], *, sync: bool = True) -> None:
        """Append `bodies` with ONE write call, then fsync if `sync` (an empty batch with `sync`
        fsyncs earlier writes). An OS error puts the WAL in the failed state: this and every
        later call raise WalWriteError until `reset_failure()`."""
        data = b"".join([_frame(body) for body in bodies])
        with self._lock:
            fd = self._writable_fd()
            if data:
                if self._size >= self._segment_max and self.next_seq > self._seg_first:
                    fd = self._rotate()
                try:
                    self._fs.write(fd, data)
                except OSError as exc:
                    self._fail("write", exc)
                self._size += len(data)
                self.next_seq += len(bodies)
                self._dirty = True
                self.stats.records_written += len(bodies)
                self.stats.bytes_written += len(data)
            if sync and self._dirty:
                self._fsync(fd)
            self._good = (self._size, self.next_seq)

    def sync(self) -> None:
        """fsync what has been written (the everysec policy calls this once a second).

        The fsync runs outside the lock, on a duplicate of the descriptor, so appends never
        wait for it: under everysec the event loop writes batches itself, and an fsync can
        take tens of milliseconds on a busy disk, which would stall every client once a
        second. The segment stays dirty until the fsync is done (a rotation meanwhile fsyncs
        it itself), and stays dirty after it if records were appended meanwhile."""
        with self._lock:
            if not self._dirty:
                self._writable_fd()  # a failed WAL still says so
                return
            fd = os.dup(self._writable_fd())  # a rotation may close the original meanwhile
            written = self.stats.records_written
        try:
            self._fs.fsync(fd)
        except OSError as exc:
            with self._lock:
                self._fail("fsync", exc)
        finally:
            os.close(fd)
        with self._lock:
            self.stats.fsyncs += 1
            if self.stats.records_written == written:
                self._dirty = False

    def cut(self) -> int:
        """Start a new segment (unless the active one is still empty) and return its first
        sequence number: every record written so far lies before it. A compaction's snapshot
        is taken at a cut, and `install_base` later puts it in front of this segment."""
        with self._lock:
            self._writable_fd()
            if self.next_seq > self._seg_first:
                self._rotate()
            return self.next_seq

    def install_base(self, tmp_path: str, next_seq: int) -> None:
        """Make the snapshot in `tmp_path` (see `write_base`), taken at the cut that returned
        `next_seq`, the start of the log, and delete what it replaces. A failure before the
        rename leaves the log as it was and raises WalWriteError without entering the failed
        state."""
        with self._lock:
            fs, name = self._fs, base_name(next_seq)
            try:
                self._writable_fd()
                fs.rename(tmp_path, os.path.join(self.path, name))
            except (OSError, WalError) as exc:
                _quietly(fs.remove, tmp_path)
                raise WalWriteError(f"compaction failed, WAL unchanged: {exc}") from exc
            # Committed: replay now starts at the new base.
            old = [segment_name(first) for first in self._segments if first < next_seq]
            if self._base is not None and self._base != name:
                old.append(self._base)
            self._segments = [first for first in self._segments if first >= next_seq]
            self._base = name
            self.stats.compactions, self.stats.segments = (self.stats.compactions + 1,
                                                           len(self._segments))
            try:
                fs.fsync_dir(self.path)
            except OSError as exc:
                self._fail("fsync", exc)
            for leftover in old:
                _quietly(fs.remove, os.path.join(self.path, leftover))
            _quietly(fs.fsync_dir, self.path)  # replay deletes leftovers anyway

    def reset_failure(self) -> None:
        """Operator action after a disk error: cut the active segment back to the last
        acknowledged record, fsync, and accept writes again. If the disk still fails this
        raises WalWriteError and the WAL stays failed."""
        with self._lock:
            if self._failed is None:
                return
            size, next_seq = self._good
            try:
                if self._fd is not None:
                    self._fs.truncate(self._fd, size)
                    self._fs.fsync(self._fd)
                self._fs.fsync_dir(self.path)
            except OSError as exc:
                raise WalWriteError(f"WAL reset failed, still refusing writes: {exc}") from exc
            self._size, self.next_seq = size, next_seq
            log.warning("WAL failure cleared by operator (was: %s)", self._failed)
            self._failed, self._dirty, self.stats.failed = None, False, False

    def close(self) -> None:
        """fsync (unless failed) and close the active segment."""
        with self._lock:
            if self._fd is not None and self._dirty and self._failed is None:
                with contextlib.suppress(WalWriteError):  # _fail logged and counted it
                    self._fsync(self._fd)
            _quietly(os.close, self._fd)
            self._fd = None

    # -- internals, called with the lock held ---------------------------------------------------

    def _writable_fd(self) -> int:
        if self._failed is not None:
            raise WalWriteError(f"WAL refuses writes after a disk error ({self._failed}); "
                                "fix the disk, then reset the failure")
        if self._fd is None:
            raise WalError("WAL is not open for appending")
        return self._fd

    def _fsync(self, fd: int) -> None:
        try:
            self._fs.fsync(fd)
        except OSError as exc:
            self._fail("fsync", exc)
        self.stats.fsyncs += 1
        self._dirty = False

    def _rotate(self) -> int:
        """Start a new segment; the full one is fsynced first so it can never have a torn tail."""
        old = self._writable_fd()
        if self._dirty:
            self._fsync(old)
        self._create_segment()
        _quietly(os.close, old)
        return self._writable_fd()

    def _create_segment(self) -> None:
        fs, first = self._fs, self.next_seq
        path, fd = os.path.join(self.path, segment_name(first)), -1
        try:
            fd = fs.open(path, _CREATE)
            fs.write(fd, _HEADER.pack(MAGIC, WAL_VERSION, 0))
            fs.fsync(fd)
            fs.fsync_dir(self.path)
        except OSError as exc:
            _quietly(os.close, fd)
            _quietly(fs.remove, path)
            self._fail("write", exc)
        self._fd, self._seg_first, self._size = fd, first, HEADER_BYTES
        self._segments.append(first)
        self.stats.segments = len(self._segments)
        self._good = (self._size, first)

    def _fail(self, op: str, exc: OSError) -> None:
        """Enter the failed state and raise; unacknowledged bytes are cut off if possible."""
        self._failed, self.stats.failed = exc, True
        if op == "fsync":
            self.stats.last_fsync_error = str(exc)
        else:
            self.stats.last_write_error = str(exc)
            if self._fd is not None:
                _quietly(self._fs.truncate, self._fd, self._good[0])
        log.error("WAL %s failed, refusing writes until reset: %s", op, exc)
        raise WalWriteError(f"WAL {op} failed: {exc}") from exc


def _frame(body: bytes) -> bytes:
    if not 0 < len(body) <= MAX_RECORD_BYTES:
        raise ValueError(f"WAL record body must be 1..{MAX_RECORD_BYTES} bytes, not {len(body)}")
    return _FRAME.pack(len(body), crc32c.crc32c(body)) + body


def _write_chunk(fs: RealFs, fd: int, chunk: list[bytes]) -> None:
    data = b"".join(chunk)
    chunk.clear()
    fs.write(fd, data)


def write_base(path: str, bodies: Iterable[bytes], *, fs: RealFs | None = None,
               on_chunk: Callable[[], None] | None = None) -> int:
    """Write a base file (header with FLAG_BASE, then the framed `bodies`) and fsync it; the
    number of records. Written in chunks of COMPACT_CHUNK_BYTES to bound memory; `on_chunk`
    runs after each (the compaction child checks there that the server still lives). On any
    error the file is removed and the error raised."""
    fs = fs if fs is not None else RealFs()
    chunk, fd, count, pending = [_HEADER.pack(MAGIC, WAL_VERSION, FLAG_BASE)], -1, 0, 0
    try:
        fd = fs.open(path, _CREATE)
        for body in bodies:
            frame = _frame(body)
            chunk.append(frame)
            count, pending = count + 1, pending + len(frame)
            if pending >= COMPACT_CHUNK_BYTES:
                _write_chunk(fs, fd, chunk)
                pending = 0
                if on_chunk is not None:
                    on_chunk()
        _write_chunk(fs, fd, chunk)
        fs.fsync(fd)
    except BaseException:
        _quietly(fs.remove, path)
        raise
    finally:
        _quietly(os.close, fd)
    return count


def _quietly(op: Any, *args: Any) -> None:
    """Best-effort cleanup: the error that matters has already been reported."""
    if args and args[0] in (-1, None):  # a file descriptor that was never opened
        return
    try:
        op(*args)
    except OSError as exc:
        log.warning("WAL cleanup step failed: %s", exc)
