"""Group commit: one background thread turns many small durable writes into one write + one fsync.

Why: an fsync costs milliseconds, so one per command would cap the server at a few hundred
durable writes per second. Instead the event loop hands over, once per loop turn, every effect
record appended in that turn (`submit`), and carries on serving other clients. The writer thread
takes ALL pending batches at once, writes them with one `write_batch` call, and reports back to
each submitter through `notify` (the app passes `loop.call_soon_threadsafe`, so `on_done` runs on
the loop thread, where the reply that waited for durability is finally released). While one fsync
is in progress, new batches pile up and share the next one: the slower the disk, the bigger the
groups.

Policies (as Redis `appendfsync`):
- "always": write + fsync, then `on_done(None)`: a reply means the data is on disk.
- "everysec": write, then `on_done(None)` (the data is in the OS page cache); the thread fsyncs at
  most once per `sync_interval_s`, and once more on `close`. A crash may lose about a second.
- "no": write, then `on_done(None)`; the OS decides when to flush. Never fsyncs a batch
  (compaction's steps still do: their crash safety depends on it).

A failed write or fsync is reported to every waiting `on_done` (never success); the WAL then
refuses later batches too, which fail the same way, until an operator resets it.

It never imports asyncio: the event loop is reached only through `notify`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from jobcached.errors import WalError
from jobcached.persistence.wal import MAX_RECORD_BYTES

log = logging.getLogger("jobcached.wal")

FsyncPolicy = Literal["always", "everysec", "no"]
POLICIES: tuple[FsyncPolicy, ...] = ("always", "everysec", "no")
SYNC_INTERVAL_S = 1.0
"""The everysec policy's fsync period, in seconds: the most data a crash may lose."""

OnDone = Callable[[Exception | None], None]
#: hands a callback to the event loop thread (`loop.call_soon_threadsafe`; its Handle is unused)
Notify = Callable[[Callable[[], None]], object]


class WalWriter(Protocol):
    """What the committer needs from the WAL (jobcached.persistence.wal.Wal)."""

    def write_batch(self, bodies: Sequence[bytes], *, sync: bool = True) -> None: ...

    def sync(self) -> None: ...

    def cut(self) -> int: ...

    def install_base(self, tmp_path: str, next_seq: int) -> None: ...


def fsync_policy(name: str) -> FsyncPolicy:
    """`name` (a config string: `appendfsync`) as an FsyncPolicy, or ValueError."""
    for policy in POLICIES:
        if name == policy:
            return policy
    raise ValueError(f"fsync policy must be one of {', '.join(POLICIES)}, not {name!r}")


@dataclass
class _Op:
    """One submission: a batch of records, or (when `action` is set) a step of maintenance."""

    bodies: Sequence[bytes]
    on_done: OnDone
    action: Callable[[], object] | None = None


@dataclass
class CommitStats:
    """How well grouping works: submissions per write call is the group size."""

    submissions: int = 0
    write_calls: int = 0
    inline_writes: int = 0  # everysec / no batches written on the caller's thread
    largest_group: int = 0
    periodic_fsyncs: int = 0


class GroupCommitter:
    """Owns the WAL writer thread; see the module docstring.

    `submit`, `run` and `close` are called from the event loop thread. `monotonic` is
    injectable so tests can drive the everysec timer without sleeping.
    """

    def __init__(
        self,
        wal: WalWriter,
        policy: str,
        notify: Notify,
        *,
        sync_interval_s: float = SYNC_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = fsync_policy(policy)
        self.stats = CommitStats()
        self._wal = wal
        self._notify = notify
        self._interval = sync_interval_s
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._pending: list[_Op] = []  # guarded by _cond
        self._closing = False  # guarded by _cond
        self._unsynced = False  # everysec: written since the last fsync (set under _cond inline)
        self._busy = False  # the thread is writing or running an action (guarded by _cond)
        self._last_sync = float("-inf")  # writer thread only
        self._thread = threading.Thread(target=self._run, name="jobcached-wal-writer", daemon=True)
        self._thread.start()

    def submit(self, bodies: Sequence[bytes], on_done: OnDone) -> None:
        """Queue one loop turn's records; `on_done(None)` once they are written per the policy,
        or `on_done(error)` if not. Bad bodies raise ValueError here, before anything is queued,
        so one caller's mistake cannot fail a whole group.

        Under everysec and no, when the writer thread is idle, the batch is written right here
        and `on_done` is called before returning: a write into the page cache takes
        microseconds, while handing it to the thread and back costs a GIL switch each way (up
        to `sys.getswitchinterval()`, 5 ms, when the loop is busy), which is most of a durable
        reply's latency. The thread still does the once-a-second fsync, every batch under
        always, and compactions; anything submitted while it has work queued waits its turn,
        so batches are never reordered around a compaction.
        """
        if bodies:  # lengths checked in C: this runs for every record the server logs
            lengths = list(map(len, bodies))
            if min(lengths) < 1 or max(lengths) > MAX_RECORD_BYTES:
                raise ValueError(f"WAL record body must be 1..{MAX_RECORD_BYTES} bytes")
        if self.policy != "always":
            with self._cond:
                inline = not self._pending and not self._busy and not self._closing
                if inline:
                    self._busy = True
                    self.stats.submissions += 1
            if inline:
                self._write_inline(bodies, on_done)
                return
        self._enqueue(_Op(bodies, on_done))

    def _write_inline(self, bodies: Sequence[bytes], on_done: OnDone) -> None:
        error: Exception | None = None
        try:
            self._wal.write_batch(bodies, sync=False)
        except Exception as exc:  # the waiter must hear about it
            error = exc
        with self._cond:
            self._busy = False
            self.stats.write_calls += 1
            self.stats.inline_writes += 1
            if self.policy == "everysec" and bodies and error is None:
                self._unsynced = True
                self._cond.notify()  # the thread schedules the fsync
        on_done(error)

    def run(self, action: Callable[[], object], on_done: OnDone) -> None:
        """Queue a call on the writer thread (a compaction step: `Wal.cut`, `Wal.install_base`).
        It runs after every batch submitted before it and before every batch submitted after
        it, so a cut queued in the same loop step as a snapshot is taken matches it."""
        self._enqueue(_Op((), on_done, action=action))

    def close(self) -> None:
        """Write everything still pending (and, under everysec, fsync it), then stop the thread.
        Later `submit` calls raise WalError. Idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    # -- the writer thread ----------------------------------------------------------------------

    def _enqueue(self, op: _Op) -> None:
        with self._cond:
            if self._closing:
                raise WalError("the WAL group committer is closed")
            self._pending.append(op)
            self.stats.submissions += 1
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    wait = self._sync_due_in()
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                ops, self._pending = self._pending, []
                closing = self._closing
                self._busy = bool(ops)
            self._process(ops)
            with self._cond:
                self._busy = False
            if self._unsynced and (closing or self._sync_due_in() == 0):
                self._periodic_sync()
            if closing:
                with self._cond:
                    if not self._pending:
                        return

    def _sync_due_in(self) -> float | None:
        """Seconds until the everysec fsync is due (0: now), or None if nothing awaits it."""
        if not self._unsynced:
            return None
        return max(0.0, self._last_sync + self._interval - self._monotonic())

    def _process(self, ops: list[_Op]) -> None:
        """Run the ops in order: each run of consecutive batches is ONE write_batch call."""
        start = 0
        while start < len(ops):
            if ops[start].action is not None:
                self._run_action(ops[start])
                start += 1
                continue
            end = start
            while end < len(ops) and ops[end].action is None:
                end += 1
            group = ops[start:end]
            bodies = [body for op in group for body in op.bodies]
            error: Exception | None = None
            try:
                self._wal.write_batch(bodies, sync=self.policy == "always")
                self._unsynced = self._unsynced or (self.policy == "everysec" and bool(bodies))
            except Exception as exc:  # every waiter must hear about it; nothing may kill us
                error = exc
            self.stats.write_calls += 1
            self.stats.largest_group = max(self.stats.largest_group, len(group))
            for op in group:
                self._report(op.on_done, error)
            start = end

    def _run_action(self, op: _Op) -> None:
        assert op.action is not None
        error: Exception | None = None
        try:
            op.action()
        except Exception as exc:
            error = exc
        self._report(op.on_done, error)

    def _periodic_sync(self) -> None:
        self._last_sync = self._monotonic()
        self._unsynced = False  # after a failure the WAL is failed: retrying would only spin
        try:
            self._wal.sync()
            self.stats.periodic_fsyncs += 1
        except Exception as exc:
            log.error("everysec fsync failed; later writes will fail until reset: %s", exc)

    def _report(self, on_done: OnDone, error: Exception | None) -> None:
        try:
            self._notify(functools.partial(on_done, error))
        except Exception:  # e.g. the loop already closed at shutdown
            log.exception("could not deliver a WAL write result")
