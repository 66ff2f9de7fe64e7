"""The one effect sink: every change of either family, from wherever it comes, passes here.

Why one place: a follower, a WAL and a WATCHing client all need the same answer to "what
changed, in what order", and two choke points (cache commands propagating by hand, job records
going straight to the WAL) gave two orders and a replication log without the jobs in it. Here:

- `record(argv, keys, db)`: a cache mutation, as the command that redoes it with absolute
  times. The dispatcher records a write command's own argv when the command changed the
  keyspace (Redis' call() and server.dirty: `CacheStats.dirty`), with the keys its key specs
  name; a handler whose effect differs from its argv (`SET k v PXAT <ms>` for EX, SREM for
  SPOP) logs that instead through `cache`; expiry and eviction log a DEL (`key_removed`).
  It is logged, preceded by a SELECT when its database differs from the log's, and it
  invalidates the keys' WATCHes, client-side caches (CLIENT TRACKING) and GETL fill leases.
- `job(body)`: an engine record, encoded, after the engine applied it (the engine gets this
  method as its `sink` when it is built). It goes to the WAL through `Durability` (group
  commit) and into the same log as a `JOB.RECORD <body>` entry, between the cache effects it
  happened between.

The log is the replication backlog (replication/backlog.py), or, while a script runs, a
group that reaches the backlog wrapped in MULTI/EXEC when the script ends (`begin_group`).

`job_records` counts the job records so far. The dispatcher applies the durability policy of
the command table with it (commands/durable.py): a job-writing command is refused before it
runs while the WAL cannot be written (`check_writable`), and its reply is held until the
records it produced are as durable as `appendfsync` promises (`durable`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from jobcached.replication.backlog import JOB_RECORD as JOB_RECORD
from jobcached.server import notify

if TYPE_CHECKING:
    from jobcached.persistence.durability import Durability
    from jobcached.server.state import ServerState



class EffectLog(Protocol):
    """Where effects are appended: the replication backlog, a script's group, a test's spy."""

    def append(self, argv: list[bytes]) -> int: ...


class KeyedCommand(Protocol):
    """A command of the table, as far as effects need it (the table lives above this)."""

    def keys_in(self, argv: list[bytes]) -> list[bytes]: ...


class _Group:
    """A script's effects, kept until it ends (see `Effects.begin_group`)."""

    def __init__(self) -> None:
        self.records: list[list[bytes]] = []

    def append(self, argv: list[bytes]) -> int:
        self.records.append(argv)
        return len(self.records) - 1


class _Discard:
    """The log of a follower: its leader's stream is its log (see `Effects.mute`)."""

    def append(self, argv: list[bytes]) -> int:
        return 0


class Effects:
    """See the module docstring. One per server; single-threaded."""

    def __init__(self, server: ServerState, log: EffectLog) -> None:
        self.server = server
        #: the replication backlog, or a spy in tests
        self.log = log
        self._sink = log  # `log` again after `mute(False)`
        #: where effects go now: `log`, or the open group of a running script or EXEC
        self._out: EffectLog = log
        self._depth = 0  # groups open (see `begin_group`)
        #: the WAL's batching, once the app has replayed it; None in unit tests (records are
        #: then logged nowhere but `log`)
        self.durability: Durability | None = None
        #: the database the log is in (Redis' slaveseldb): an effect in another one is
        #: preceded by a SELECT
        self.db = 0
        #: job records appended so far (see the module docstring)
        self.job_records = 0
        #: set when the running command logged its own cache effect (`cache`), so the
        #: dispatcher does not log its argv too; reset by the dispatcher before each write
        self.own = False

    def attach(self, log: EffectLog) -> None:
        """Send every effect from now on to `log` instead of the one given at construction:
        a test's spy, which replays what it received into a fresh server and compares. Not
        while a script's group is open (`begin_group`): its effects would be split."""
        assert type(self._out) is not _Group, "attach() while a script's effects are grouped"
        self.log = self._out = self._sink = log

    # ------------------------------------------------------------------ cache

    def cache(self, argv: list[bytes], keys: list[bytes] | tuple[bytes, ...] = (),
              db: int | None = None) -> None:
        """A command's effect where it is not its own argv (`SET k v PXAT <ms>` for a SET
        with EX, SREM for SPOP, LPOP for a served BLPOP...): logged instead of the argv,
        which the dispatcher then leaves out (`own`). `db` defaults to the running command's
        database."""
        self.own = True
        self.record(argv, keys, db)

    def record(self, argv: list[bytes], keys: list[bytes] | tuple[bytes, ...] = (),
               db: int | None = None) -> None:
        """Log a cache effect and invalidate what depended on `keys` (Redis' propagateNow and
        signalModifiedKey)."""
        server = self.server
        if db is None:
            db = server.db
        if db != self.db:
            self._out.append([b"SELECT", str(db).encode()])
            self.db = db
        self._out.append(argv)
        if keys and (server.watchers or server.tracking.tracking_clients or server.leases.table):
            self.invalidate(keys, db)

    def command(self, argv: list[bytes], cmd: KeyedCommand) -> None:
        """The dispatcher's `record` of a write command whose effect is its argv: its keys
        (by its key specs) are worked out only when something depends on them. `record`'s
        body again, specialized: folding the two costs every write 6 bytecodes
        (`python -m bench.bytecodes`), which is the margin this path is held to."""
        server = self.server
        db = server.db
        if db != self.db:
            self._out.append([b"SELECT", str(db).encode()])
            self.db = db
        self._out.append(argv)
        if server.watchers or server.tracking.tracking_clients or server.leases.table:
            self.invalidate(cmd.keys_in(argv), db)

    def invalidate(self, keys: list[bytes] | tuple[bytes, ...], db: int) -> None:
        """What depended on `keys` in `db` is stale: WATCHes fail, tracking clients are told,
        GETL leases are void (the second half of `record`)."""
        server = self.server
        if server.watchers or server.tracking.tracking_clients:
            for key in keys:
                self.touch(key, db)
        if server.leases.table:
            for key in keys:
                server.leases.invalidate(db, key)

    def touch(self, key: bytes, db: int | None = None, by_engine: bool = False) -> None:
        """A key changed (in `db`, default the running command's): transactions WATCHing it
        must fail, clients caching it are told (Redis' signalModifiedKey). `by_engine`: no
        client changed it (expiry, eviction)."""
        server = self.server
        sessions = server.watchers.get((server.db if db is None else db, key))
        if sessions:
            for session in sessions:
                session.watch_dirty = True
        if server.tracking.tracking_clients:
            current = server.current_client
            server.tracking.invalidate(key, None if by_engine else current, current)

    def touch_db(self, db: int, replaced_with: int | None = None) -> None:
        """Database `db` is emptied (FLUSHDB), or gets the contents of `replaced_with`
        (SWAPDB): WATCHes on its keys that exist in either fail (touchAllWatchedKeysInDb),
        and its GETL leases are dropped."""
        server = self.server
        server.leases.invalidate_db(db)
        emptied = server.dbs[db]
        other = None if replaced_with is None else server.dbs[replaced_with]
        for (watched_db, key), sessions in server.watchers.items():
            if watched_db == db and (emptied.holds(key) or (other is not None
                                                            and other.holds(key))):
                for session in sessions:
                    session.watch_dirty = True

    def key_removed(self, db: int, key: bytes, why: str) -> None:
        """The cache expired or evicted a key: the log gets a DEL, watchers and keyspace
        notification subscribers are told."""
        self.record([b"DEL", key], (), db)
        self.touch(key, db, by_engine=True)
        kind = notify.EVICTED if why == "evicted" else notify.EXPIRED
        notify.notify(self.server, kind, why.encode(), key, db)

    def mute(self, muted: bool) -> None:
        """While we follow a leader our own effects are not logged: the follower logs the
        leader's stream as it came (server/follower.py), so our offsets stay the leader's,
        and a key a read finds expired (deleted here, not on the leader) does not add a DEL
        to it. Invalidation (WATCH, tracking, leases) goes on either way. After a promotion
        the next effect is preceded by a SELECT (the log's database is unknown). An open
        group (REPLICAOF inside EXEC) ends into the new log."""
        self.log = _Discard() if muted else self._sink
        if not self._depth:
            self._out = self.log
        self.db = -1

    # ------------------------------------------------------------------ jobs

    def job(self, body: bytes) -> None:
        """The job engine's sink: an applied record, to the WAL and the log."""
        self.job_records += 1
        durability = self.durability
        if durability is not None:
            durability.append(body)
        self._out.append([JOB_RECORD, body])

    def check_writable(self) -> None:
        """Raise the WAL's failure (`-MISCONF`), if any, before a job write changes anything."""
        if self.durability is not None:
            self.durability.check_writable()

    def durable(self, value: Any) -> Any:
        """The reply `value`, held back until the job records logged so far are durable."""
        return self.durability.reply(value) if self.durability is not None else value

    # ------------------------------------------------------------------ scripts

    def begin_group(self) -> None:
        """Keep the effects made from now on for the log until `end_group`, then log them as
        one transaction (MULTI ... EXEC around several): a script's or a transaction's effects
        reach a follower atomically, as Redis replicates them. WATCHes are still marked at
        once. A script runs in slices across turns of the event loop, hence two calls rather
        than a `with`. Groups nest (a script inside EXEC): the outermost one logs them all."""
        self._depth += 1
        if self._depth == 1:
            self._out = _Group()

    @property
    def grouped(self) -> bool:
        """A script or a transaction runs: its writes are half done until it ends (BGSAVE
        waits for that, as Redis schedules a BGSAVE called inside EXEC)."""
        return self._depth > 0

    def end_group(self) -> None:
        self._depth -= 1
        if self._depth:
            return
        group = self._out
        assert type(group) is _Group
        self._out = log = self.log
        records = group.records
        if len(records) > 1:
            log.append([b"MULTI"])
            for argv in records:
                log.append(argv)
            log.append([b"EXEC"])
        elif records:
            log.append(records[0])
