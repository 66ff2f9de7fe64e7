"""Cache snapshots: SAVE, BGSAVE, the `save` schedule, the snapshot at shutdown and its load at
start, and the times LASTSAVE and INFO persistence report.

Why: the cache is volatile by design (the WAL keeps jobs, never keys), so a sidecar restarted
for a deploy comes back cold and its backends take the misses at once. With `cache-persistence
snapshot` the keys of every database are written to `cache.snapshot` in the data dir when the
server stops (SIGTERM, SIGINT, SHUTDOWN) and on the `save` schedule, and loaded back before the
server listens, so it comes back warm. SAVE and BGSAVE write the same file whatever the
setting (a backup to copy elsewhere, as a Redis user expects them to); only `cache-persistence
snapshot` loads it at start.

What the file holds: the key commands of the full-sync writer (replication/snapshot.py: SET ...
PXAT for strings, RESTORE ... ABSTTL for the other types), and neither its JOB.RECORDs nor its
FUNCTION RESTORE. Jobs live in the WAL, replayed at every start, and function libraries in
functions.rdb, rewritten at each FUNCTION change and loaded at every start: each has one
authority that is always at least as recent as any snapshot, and a second, older copy loaded
beside it could only bring back a job acknowledged since, or a library deleted since.

How saves run, as in Redis: BGSAVE and the schedule fork a child (persistence/forkwrite.py)
that writes the state as it was at the fork while the server goes on; one at a time. SAVE
writes in the process and every client waits until it is done, as Redis' SAVE (in its main
thread): the file is exactly the state SAVE answered for. The shutdown snapshot is written the
same way, once no client is left (so no acknowledged write is missing from it); SHUTDOWN also
saves before it answers, so a failure is its error reply (`Errors trying to SHUTDOWN`) and the
server stays up, as Redis'. The schedule is Redis' serverCron rule: a point `seconds changes`
is due when at least `changes` writes (`CacheStats.dirty`) happened since the last save and
more than `seconds` passed since it, retried no sooner than RETRY_DELAY_MS after a failure.

Load: TTLs are absolute, so a key that expired while the server was down is not loaded. A file
that is not a snapshot, torn or damaged stops the start with a message saying so and is left
where it is, as Redis refuses to start on a bad RDB: nothing is ever deleted. A follower loads
its snapshot too, as a Redis replica loads its RDB: it serves it (read-only) until its first
sync, and the leader's full sync replaces all of it (FLUSHALL, then the leader's keys), so the
snapshot never goes over the leader's data: it is read only at start, before the link exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobcached.config import save_points
from jobcached.errors import SnapshotError, StartupError
from jobcached.net.replies import ErrorReply
from jobcached.persistence.forkwrite import ChildFailed, ForkedWrite
from jobcached.replication.snapshot import (
    expire_at_of,
    read_snapshot,
    snapshot_commands,
    write_snapshot,
)
from jobcached.server.follower import MasterConnection
from jobcached.server.session import Session
from jobcached.server.tasks import spawn

if TYPE_CHECKING:
    from jobcached.server.state import ServerState

log = logging.getLogger("jobcached.saving")

#: The cache snapshot, in the data dir.
FILE_NAME = "cache.snapshot"
#: After a failed background save the schedule waits this long before trying again (Redis'
#: CONFIG_BGSAVE_RETRY_DELAY: a full disk would otherwise fork a child every cron turn).
RETRY_DELAY_MS = 5_000
#: Snapshot commands loaded between two yields to the event loop at start, so /healthz and
#: /readyz answer during a long load (as the WAL replay's chunks do).
LOAD_CHUNK_COMMANDS = 1_000

#: How the app runs a loaded command: the dispatcher's call, past the client checks.
Run = Callable[[Session, list[bytes]], Any]


class Saver:
    """See the module docstring. One per server (`ServerState.saver`)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        #: the background save running, and when it started (monotonic ms)
        self.child: ForkedWrite | None = None
        self.child_started_ms = 0
        #: BGSAVE SCHEDULE (or BGSAVE in a transaction) waits for the WAL compaction to end
        self.scheduled = False
        #: `CacheStats.dirty` when the last successful save forked (or at the load): changes
        #: since then are INFO's rdb_changes_since_last_save and what the schedule counts
        self.dirty_base = 0
        #: the file holds what the keyspace held at `dirty_base` (a load or a save made it)
        self.file_current = False
        self.saves = 0
        self.last_ok = True
        self.last_try_ms = 0
        self.last_bgsave_seconds = -1
        #: SHUTDOWN's choice for the snapshot at stop: True (SAVE), False (NOSAVE), None
        #: (the default: `saving_configured`)
        self.at_shutdown: bool | None = None
        self.loaded_keys = 0
        self.expired_at_load = 0

    @property
    def path(self) -> str:
        return str(Path(self.state.config.dir) / FILE_NAME)

    def changes(self) -> int:
        return self.state.cache_stats.dirty - self.dirty_base

    def saving_configured(self) -> bool:
        """Whether stopping saves by default: a `save` schedule, or cache-persistence
        snapshot (Redis saves at shutdown when it has save points)."""
        config = self.state.config
        return bool(config.save) or config.cache_persistence == "snapshot"

    # ------------------------------------------------------------------ saving

    def save(self) -> int:
        """SAVE: write the snapshot now, in this process; the number of commands written.
        Raises OSError (logged, the old file kept)."""
        state = self.state
        dirty = state.cache_stats.dirty
        now = state.clock.now_ms()
        self.saves += 1
        self.last_try_ms = now
        try:
            count = write_snapshot(self.path, snapshot_commands(state.dbs, now, None, None),
                                   now, _nothing)
        except OSError as exc:
            self.last_ok = False
            log.error("cache snapshot failed", extra={"path": self.path, "error": str(exc)})
            raise
        self._saved(dirty, state.clock.now_ms())
        log.info("cache snapshot saved", extra={"path": self.path, "commands": count})
        return count

    def bgsave(self) -> None:
        """BGSAVE: fork the child that writes the snapshot; its end is logged and counted.
        Raises OSError when the fork fails."""
        state = self.state
        path = self.path
        dirty = state.cache_stats.dirty
        self.saves += 1
        self.last_try_ms = state.clock.now_ms()
        self.scheduled = False  # this save is the one that was due

        def write(check_parent: Callable[[], None]) -> int:
            now = state.clock.now_ms()
            return write_snapshot(path, snapshot_commands(state.dbs, now, None, None), now,
                                  check_parent)

        try:
            child = ForkedWrite.start(write)
        except OSError as exc:
            self.last_ok = False
            log.error("cannot fork for a background save", extra={"error": str(exc)})
            raise
        self.child = child
        self.child_started_ms = state.clock.monotonic_ms()
        spawn(state, self._finish(child, dirty))

    async def _finish(self, child: ForkedWrite, dirty: int) -> None:
        try:
            count = await asyncio.get_running_loop().run_in_executor(None, child.wait)
        except ChildFailed as exc:
            if self.child is not child:  # killed on purpose (`kill_child`): a save follows
                log.info("background save stopped", extra={"path": self.path})
                return
            self.last_ok = False
            log.error("background save failed", extra={"path": self.path, "error": str(exc)})
        else:
            self._saved(dirty, self.state.clock.now_ms())
            log.info("background save done", extra={"path": self.path, "commands": count})
        finally:
            if self.child is child:
                self.child = None
                self.last_bgsave_seconds = (
                    self.state.clock.monotonic_ms() - self.child_started_ms) // 1000

    def _saved(self, dirty: int, at_ms: int) -> None:
        self.dirty_base = dirty
        self.file_current = True
        self.last_ok = True
        self.state.last_save_ms = at_ms

    def compacting(self) -> bool:
        """The WAL compaction's child runs: Redis' "another child process" for BGSAVE."""
        durability = self.state.effects.durability
        return durability is not None and durability.compacting

    def kill_child(self) -> None:
        """Stop a background save (SAVE at shutdown replaces it, as Redis kills its child)."""
        if self.child is not None:
            self.child.kill()
            self.child = None

    def cron(self) -> None:
        """Each cron turn: a scheduled BGSAVE once the compaction ended, or a `save` point
        that is due (see the module docstring)."""
        if self.child is not None or self.compacting():
            return
        if self.scheduled:
            self.scheduled = False
            self._background()
            return
        state = self.state
        now = state.clock.now_ms()
        changes = self.changes()
        if not self.last_ok and now - self.last_try_ms <= RETRY_DELAY_MS:
            return
        for seconds, wanted in save_points(state.config.save):
            if changes >= wanted and now - state.last_save_ms > seconds * 1000:
                log.info("save point reached: background save",
                         extra={"changes": changes, "seconds": seconds})
                self._background()
                return

    def _background(self) -> None:
        with contextlib.suppress(OSError):  # logged by bgsave; the schedule tries again
            self.bgsave()

    # ------------------------------------------------------------------ stopping

    def save_at_stop(self) -> bool:
        """The snapshot as the server stops, once no client is left: unless SHUTDOWN NOSAVE,
        when SHUTDOWN SAVE asked or saving is configured, and only if the file is not current
        already; False if it failed (logged)."""
        self.kill_child()
        wanted = self.at_shutdown
        if wanted is None:
            wanted = self.saving_configured()
        if not wanted or (self.file_current and self.changes() == 0):
            return True
        try:
            self.save()
        except OSError:
            return False
        return True

    # ------------------------------------------------------------------ loading

    async def load(self, run: Run) -> None:
        """At start, before the server listens: the snapshot's keys into the databases
        (StartupError if the file cannot be used; nothing when there is none)."""
        state = self.state
        path = self.path
        try:
            commands = read_snapshot(path)
        except (OSError, SnapshotError) as exc:
            raise StartupError(f"cannot load the cache snapshot {path}: {exc}. The file is "
                               f"left as it is: move it away to start with an empty "
                               f"cache") from None
        if commands is None:
            log.info("no cache snapshot to load", extra={"path": path})
            return
        session = Session(state, MasterConnection(), "snapshot", "", True)
        session.authenticated = session.unchecked = True
        started = state.clock.monotonic_ms()
        loaded = expired = 0
        state.effects.mute(True)  # loading is not a change to log for followers
        gc.disable()  # every object made survives (see the WAL replay in app.py)
        try:
            for start in range(0, len(commands), LOAD_CHUNK_COMMANDS):
                now = state.clock.now_ms()
                for argv in commands[start:start + LOAD_CHUNK_COMMANDS]:
                    if argv[0] != b"SELECT":
                        expire_at = expire_at_of(argv)
                        if expire_at and expire_at <= now:
                            expired += 1
                            continue
                        loaded += 1
                        if argv[0] == b"SET":
                            # Straight to the keyspace, 40% faster than the dispatcher: at
                            # start no client, script or follower can see a key change.
                            session.keyspace.set(argv[1], argv[2], expire_at or None)
                            continue
                    reply = run(session, argv)
                    if isinstance(reply, ErrorReply):
                        raise StartupError(f"cannot load the cache snapshot {path}: "
                                           f"{argv[0].decode(errors='replace')} failed: "
                                           f"{reply.text}")
                await asyncio.sleep(0)
        finally:
            gc.enable()
            state.effects.mute(False)
        self.loaded_keys, self.expired_at_load = loaded, expired
        self.dirty_base = state.cache_stats.dirty
        self.file_current = True
        log.info("cache snapshot loaded", extra={
            "path": path, "keys": loaded, "expired_keys_skipped": expired,
            "seconds": round((state.clock.monotonic_ms() - started) / 1000, 3)})

    # ------------------------------------------------------------------ visibility

    def info_rows(self) -> list[tuple[str, object]]:
        """INFO persistence's rdb_* fields that have a meaning here."""
        running = self.child is not None
        current = ((self.state.clock.monotonic_ms() - self.child_started_ms) // 1000
                   if running else -1)
        return [
            ("rdb_changes_since_last_save", self.changes()),
            ("rdb_bgsave_in_progress", int(running)),
            ("rdb_last_save_time", self.state.last_save_ms // 1000),
            ("rdb_last_bgsave_status", "ok" if self.last_ok else "err"),
            ("rdb_last_bgsave_time_sec", self.last_bgsave_seconds),
            ("rdb_current_bgsave_time_sec", current),
            ("rdb_saves", self.saves), ("rdb_last_cow_size", 0),
            ("rdb_last_load_keys_expired", self.expired_at_load),
            ("rdb_last_load_keys_loaded", self.loaded_keys),
        ]


def remove_stale_temporaries(data_dir: str) -> None:
    """Temporary snapshot files a killed server or child left behind (at start)."""
    for path in Path(data_dir).glob(f"{FILE_NAME}.*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()


def _nothing() -> None:
    """SAVE runs in the server itself: there is no parent to check on."""
