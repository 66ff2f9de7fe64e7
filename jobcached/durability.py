"""Durability: from engine records to acknowledged replies.

The job engine hands every record to `Durability.append` (its `propagate`). Records appended
during one turn of the event loop form one batch; at the end of the turn the batch goes to the
group-commit thread, which writes it with one `write` (and, under `appendfsync always`, one
`fsync`). A command that changed something replies through `reply(value)`: a `Deferred` that
resolves when the batch holding its records is as durable as the policy promises (written to
the OS for `everysec` and `no`, so a killed process loses nothing acknowledged; synced for
`always`). If the write or sync fails, every waiting reply becomes an error (never `+OK`), and
job writes are refused (`-MISCONF`, as Redis when it cannot persist) until the log can be
written again; the server retries every second and heals by itself once the disk has room.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from jobcached.errors import CommandError, WalError
from jobcached.forkwrite import ChildFailed, ForkedWrite
from jobcached.jobs.groupcommit import GroupCommitter
from jobcached.jobs.wal import COMPACT_TMP, Wal, write_base
from jobcached.net.replies import Deferred, ErrorReply

log = logging.getLogger("jobcached.durability")

#: Compact when the log holds this many times more records than the live state needs. The
#: trade: a compaction rewrites every live job (about 5 µs each, in the forked child), and
#: each job adds about 3 records (push, lease, ack) while it stays live (finished jobs too,
#: until they move to the archive). At a steady live count L, compacting at R * L records
#: runs every (R - 1) * L / 3 jobs, so each job pays for 3 / (R - 1) snapshot records: 3 at
#: R = 2 (half as much CPU again as the job itself), 1 at R = 4. The price of a larger R is a
#: longer replay after a crash: at most R * L records (about 4 s per million).
COMPACT_GARBAGE_RATIO = 4
#: ...but never for a log smaller than this many records: about 50 MB at some 200 bytes a
#: record (Redis' auto-aof-rewrite-min-size is 64 MB), which replays in about a second. Below
#: that, compacting buys little: it costs a fork and a child's CPU.
COMPACT_MIN_RECORDS = 250_000


class _Batch:
    __slots__ = ("bodies", "done", "error", "waiters")

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.waiters: list[tuple[Deferred, Any]] = []
        self.done = False
        self.error: Exception | None = None


#: A record to its WAL body. One Packer serves the process: `packb` builds a new one for every
#: record, and records are encoded only on the event loop thread (and in the compaction child,
#: a copy of it), never by two threads at once.
encode_record: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack


#: A WAL record body back to its dict (a put: its array, see `engine.put_record`): msgpack's C
#: function itself (through `partial`, also C) rather than a wrapper, because replay calls it
#: once per record. Arrays come back as tuples, about a tenth faster to decode than lists;
#: records are only read (msgpack >= 1.0 decodes str types to str by default: `raw=False`).
decode_record: Callable[[bytes], Any] = functools.partial(msgpack.unpackb, use_list=False)


class Durability:
    """See the module docstring. Lives on the event loop thread, except the committer."""

    def __init__(self, wal: Wal, policy: str, loop: asyncio.AbstractEventLoop) -> None:
        self.wal = wal
        self.loop = loop
        self.committer = GroupCommitter(wal, policy, loop.call_soon_threadsafe)
        self.failure: Exception | None = None
        self.records_in_log = 0
        #: times the log failed, and healed (metrics)
        self.failures = 0
        self.recoveries = 0
        self._open = _Batch()
        self._in_flight: _Batch | None = None
        self._scheduled = False
        self._child: ForkedWrite | None = None  # a compaction's, while it writes
        self.compacting = False
        self.last_compaction_ok = True

    # ---------------------------------------------------------------- engine side

    def append(self, record: Any) -> None:
        self._open.bodies.append(encode_record(record))
        self.records_in_log += 1
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._open = self._open, _Batch()
        if not batch.bodies:
            self._complete(batch, None)
            return
        self._in_flight = batch
        self.committer.submit(batch.bodies, lambda error: self._complete(batch, error))

    def _complete(self, batch: _Batch, error: Exception | None) -> None:
        batch.done = True
        batch.error = error
        if self._in_flight is batch:
            self._in_flight = None
        if error is not None and self.failure is None:
            self.failure = error
            self.failures += 1
            log.error("WAL write failed: job writes are refused until it is fixed",
                      extra={"error": str(error)})
        # Newest first: a connection writes its held replies once the oldest one resolves, so
        # this order sends each client's pipelined replies in one write, not one write each.
        for deferred, value in reversed(batch.waiters):
            deferred.resolve(value if error is None else ErrorReply(self._failure_text(error)))

    # ---------------------------------------------------------------- command side

    def reply(self, value: Any) -> Any:
        """`value`, once the records appended so far are durable (a Deferred until then)."""
        batch = self._open if self._open.bodies else self._in_flight
        if batch is None:
            return value
        deferred = Deferred()
        batch.waiters.append((deferred, value))
        return deferred

    def check_writable(self) -> None:
        if self.failure is not None:
            raise CommandError(self._failure_text(self.failure)[len("MISCONF "):],
                               code="MISCONF")

    @staticmethod
    def _failure_text(error: Exception) -> str:
        return f"MISCONF job writes are refused: the write-ahead log failed ({error})"

    async def recover(self, snapshot: Callable[[], Iterable[Any]]) -> bool:
        """After a failure, try to make the log whole again; True once writes are accepted.

        Records of the failed batches never reached the log, but their effects are in memory,
        so the log is rewritten from a snapshot (a compaction) rather than just reopened. The
        app calls this every second while `failure` is set, so the server heals by itself once
        the disk has room again, as Redis retries a failed AOF write.
        """
        if self.failure is None:
            return True
        try:
            self.wal.reset_failure()
        except WalError as exc:
            log.warning("WAL still failing", extra={"error": str(exc)})
            return False
        if not await self.compact(snapshot):
            return False
        log.warning("WAL recovered: job writes are accepted again",
                    extra={"was": str(self.failure)})
        self.failure = None
        self.recoveries += 1
        return True

    # ---------------------------------------------------------------- maintenance

    def should_compact(self, live_records: int) -> bool:
        """Whether the log has grown enough past the live state to rewrite it (see above)."""
        return (self.records_in_log >= COMPACT_MIN_RECORDS
                and self.records_in_log > COMPACT_GARBAGE_RATIO * max(live_records, 1))

    async def compact(self, snapshot: Callable[[], Iterable[Any]]) -> bool:
        """Rewrite the log as a snapshot of the live state, without pausing the loop; False
        if it failed (logged) or another compaction is running.

        In one loop step: the open batch is submitted, a cut is queued behind it (the writer
        starts a new segment there), and a child is forked. The child's copy of the state is
        exactly what the records before the cut built, so it writes the snapshot while the
        server goes on appending after the cut; then the writer installs it as the base in
        front of the cut's segment (see jobs/wal.py for each step's crash safety).
        """
        if self.compacting:
            return False
        self.compacting = True
        try:
            self.last_compaction_ok = await self._compact(snapshot)
        finally:
            self.compacting = False
        return self.last_compaction_ok

    async def _compact(self, snapshot: Callable[[], Iterable[Any]]) -> bool:
        if self._open.bodies:
            self._flush()
        cut: list[int] = []
        cut_done = self._after_writer(lambda: cut.append(self.wal.cut()))
        at_cut = self.records_in_log
        tmp = os.path.join(self.wal.path, COMPACT_TMP)

        def write(check_parent: Callable[[], None]) -> int:
            bodies = map(encode_record, snapshot())
            return write_base(tmp, bodies, on_chunk=check_parent)

        count = 0
        error: Exception | None = None
        try:
            self._child = ForkedWrite.start(write)
            count = await self.loop.run_in_executor(None, self._child.wait)
        except (OSError, ChildFailed) as exc:
            error = exc
        except BaseException:  # cancelled (the server stops): the child must not outlive us
            if self._child is not None:
                self._child.kill()
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        finally:
            self._child = None
        error = await cut_done or error
        if error is None:
            error = await self._after_writer(lambda: self.wal.install_base(tmp, cut[0]))
        if error is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            log.error("WAL compaction failed", extra={"error": str(error)})
            return False
        self.records_in_log = count + self.records_in_log - at_cut
        log.info("WAL compacted", extra={"records": count})
        return True

    def _after_writer(self, action: Callable[[], object]) -> asyncio.Future[Exception | None]:
        """Run `action` on the writer thread after everything submitted so far; its error."""
        done: asyncio.Future[Exception | None] = self.loop.create_future()
        self.committer.run(action, done.set_result)
        return done

    async def drain(self) -> None:
        """Wait until everything appended so far has been written."""
        if self._open.bodies:
            self._flush()
        while self._in_flight is not None:
            await asyncio.sleep(0.001)

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
        self.committer.close()
        self.wal.close()
