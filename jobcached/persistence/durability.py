"""Durability: from engine records to acknowledged replies.

The effect sink (server/effects.py) hands every encoded job record to `Durability.append`. Records
appended during one turn of the event loop form one batch; at the end of the turn the batch goes
to the group-commit thread, which writes it with one `write` (and, under `appendfsync always`,
one `fsync`). A command that changed something replies through `reply(value)`: a `Deferred` that
resolves when the batch holding its records is as durable as the policy promises (written to
the OS for `everysec` and `no`, so a killed process loses nothing acknowledged; synced for
`always`).

If the write or sync fails, job writes are refused (`-MISCONF`, as Redis when it cannot
persist) until the log can be written again, and every batch that did not reach the log is
*held*, in order, with the replies that wait for it. The engine already applied those records,
so answering their commands with an error would be a lie (a push answered `-MISCONF` would
still run, and a client that retried would create it twice); they are answered once the
records are written. Every second the app calls `recover`, which cuts the log back to its last
good record and appends the held batches, needing room only for them: once that works the held
replies go out and job writes are accepted again. A server stopped before that drops the held
records, and their clients never got a reply: after a restart the log has none of their effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from jobcached.errors import CommandError, WalError
from jobcached.jobs.records import encode_record
from jobcached.net.replies import Deferred
from jobcached.persistence.forkwrite import ChildFailed, ForkedWrite
from jobcached.persistence.groupcommit import GroupCommitter
from jobcached.persistence.wal import COMPACT_TMP, Wal, write_base

log = logging.getLogger("jobcached.persistence.durability")

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
    __slots__ = ("bodies", "seq", "waiters")

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.waiters: list[tuple[Deferred, Any]] = []
        self.seq = 0  # set when it is flushed: the log's order of batches


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
        self._in_flight: _Batch | None = None  # the newest batch with the writer
        self._submitted = 0  # batches with the writer
        self._flushed = 0  # batches flushed so far (their `seq`)
        self._held: list[_Batch] = []  # not written because the log failed (see above)
        self._scheduled = False
        self._child: ForkedWrite | None = None  # a compaction's, while it writes
        self.compacting = False
        self.last_compaction_ok = True

    # ---------------------------------------------------------------- engine side

    def append(self, body: bytes) -> None:
        self._open.bodies.append(body)
        self.records_in_log += 1
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._open = self._open, _Batch()
        if not batch.bodies:
            return  # `reply` attaches to the open batch only once it has records
        self._flushed += 1
        batch.seq = self._flushed
        if self.failure is not None:  # the log refuses writes: `recover` writes it later
            self._held.append(batch)
            return
        self._in_flight = batch
        self._submitted += 1
        self.committer.submit(batch.bodies, lambda error: self._complete(batch, error))

    def _complete(self, batch: _Batch, error: Exception | None) -> None:
        self._submitted -= 1
        if self._in_flight is batch:
            self._in_flight = None
        if error is None:
            self._release(batch)
            return
        if self.failure is None:
            self.failure = error
            self.failures += 1
            log.error("WAL write failed: job writes are refused, and replies to the changes "
                      "not yet logged are held, until it is fixed", extra={"error": str(error)})
        self._held.append(batch)

    @staticmethod
    def _release(batch: _Batch) -> None:
        # Newest first: a connection writes its held replies once the oldest one resolves, so
        # this order sends each client's pipelined replies in one write, not one write each.
        for deferred, value in reversed(batch.waiters):
            deferred.resolve(value)

    def held_records(self) -> int:
        """Records that did not reach the log yet because it failed (INFO, metrics)."""
        return sum(len(batch.bodies) for batch in self._held)

    # ---------------------------------------------------------------- command side

    def reply(self, value: Any) -> Any:
        """`value`, once the records appended so far are durable (a Deferred until then)."""
        batch = self._open if self._open.bodies else self._newest_unwritten()
        if batch is None:
            return value
        deferred = Deferred(pending=value)
        batch.waiters.append((deferred, value))
        return deferred

    def _newest_unwritten(self) -> _Batch | None:
        newest = self._in_flight
        if self._held and (newest is None or self._held[-1].seq > newest.seq):
            newest = max(self._held, key=lambda batch: batch.seq)
        return newest

    def check_writable(self) -> None:
        if self.failure is not None:
            raise CommandError(f"job writes are refused: the write-ahead log failed "
                               f"({self.failure})", code="MISCONF")

    async def recover(self) -> bool:
        """After a failure, try to make the log whole again; True once writes are accepted.

        Waits (returns False) while a batch is still with the writer or a compaction runs.
        Then the log is cut back to its last good record and the held batches are appended in
        their order, as one write each time round (records held while one is written are
        written next), and their replies are released. The app calls this every second while
        `failure` is set, so the server heals by itself once the disk has room again, as Redis
        retries a failed AOF write.
        """
        if self.failure is None:
            return True
        if self._submitted or self.compacting:
            return False
        try:
            self.wal.reset_failure()
        except WalError as exc:
            log.warning("WAL still failing", extra={"error": str(exc)})
            return False
        while self._held:
            held, self._held = sorted(self._held, key=lambda batch: batch.seq), []
            error = await self._write([body for batch in held for body in batch.bodies])
            if error is not None:
                self._held = held + self._held
                log.warning("WAL still failing", extra={"error": str(error)})
                return False
            for batch in held:
                self._release(batch)
        log.warning("WAL recovered: job writes are accepted again",
                    extra={"was": str(self.failure)})
        self.failure = None
        self.recoveries += 1
        return True

    def _write(self, bodies: list[bytes]) -> asyncio.Future[Exception | None]:
        """Write `bodies` through the committer; the future holds its error, if any."""
        done: asyncio.Future[Exception | None] = self.loop.create_future()
        self._submitted += 1

        def on_done(error: Exception | None) -> None:
            self._submitted -= 1
            done.set_result(error)

        self.committer.submit(bodies, on_done)
        return done

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
        """Wait until everything appended so far has been written (or held: see above)."""
        if self._open.bodies:
            self._flush()
        while self._submitted:
            await asyncio.sleep(0.001)

    def close(self) -> None:
        if self._held:
            log.error("stopping with changes the failed log never took: they are lost, and "
                      "their clients got no reply", extra={"records": self.held_records()})
        if self._child is not None:
            self._child.kill()
        self.committer.close()
        self.wal.close()
