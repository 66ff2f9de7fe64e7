"""Clients blocked on keys: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN and BZPOPMAX.

Theory of operation (Redis' blocking.c, simplified)
---------------------------------------------------
A blocking command first tries to serve itself as its non-blocking twin would. When none of its
keys holds data, it calls `block()`, which files one `Waiter` at the end of a FIFO queue per key
and returns a `Deferred(blocking=True)`: the connection sends nothing and runs nothing more until
it resolves. Across clients the one that blocked first on a key is served first, as in Redis.

A key that gains data becomes *ready* (Redis' signalKeyAsReady) through the keyspace's readiness
hook (`Keyspace.on_ready`), wired to `BlockedKeys.mark_ready` when the first client blocks (until
then no hook runs at all). cache/ calls it where Redis signals, whatever the command:

- a key of a type clients block on is added to a database (Redis' dbAdd: a first push or ZADD,
  XADD creating a stream, RENAME, COPY, MOVE, RESTORE, SORT ... STORE, ZUNIONSTORE ...), and
  RENAME and MOVE also report the name the value left (cache/keyspace.py);
- a container operation gives an existing key more to take (cache/lists.py, cache/zsets.py),
  XADD appends to a stream, XGROUP DESTROY removes a group (cache/streams.py);
- a stream a client is blocked reading with XREADGROUP is dropped by the keyspace (DEL,
  overwrite, expiry, eviction, FLUSHALL: `streams.watch_dropped`), so the waiter is told.

The hook only marks the key: it fires in the middle of the operation, before the command's
effect is logged and its keyspace events sent. Why a hook rather than a call in each handler:
every write that adds a key or to a container would have to remember it, which is what moving
the writes into cache/ is meant to end. When no command runs (a stream expired or evicted by
the server's own cycle), `mark_ready` serves the key at once.

Marking costs one dict lookup when nobody waits on the key. Once the command has run and its
effect is logged (the dispatcher's `call` ends with `serve_ready`, as Redis' processCommand
calls handleClientsBlockedOnKeys after call()), the ready keys' queues are walked in order and
each waiter is asked to serve itself from the key (`Waiter.serve`) until the key has nothing
left. Serving is an ordinary mutation: it pops, propagates its own effect (LPOP, LMOVE, ZPOPMIN
...) and becomes the waiter's reply. Serving can make another key ready (BLMOVE pushes to its
destination): ready keys are queued and handled in turn by the same loop, never recursively.

A waiter leaves all its queues when it is served, when its timeout fires (a timer on
`ServerState.timers`; the reply is the command's timeout value), or when its client disconnects
(`Deferred.on_cancel`, called by the connection).

Transactions: a blocking command never blocks inside MULTI/EXEC; it replies at once as if it had
timed out (Redis' CLIENT_DENY_BLOCKING). EXEC resets `Session.multi` before running its queue,
so handlers cannot tell from the session; EXEC runs its queue inside `atomic()`: there
`may_block()` is False, and keys made ready by the transaction are served only when the whole
transaction has run, as Redis does.

Databases: a waiter blocks on keys of its session's database, so queues are filed under
(db, key); each database's hook reports its own index (MOVE and COPY ... DB fill a key
elsewhere), and a waiter is served with `ServerState.db` set to its own.

The registry lives in `ServerState.blocked_keys`, created by `registry()` on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Any

from jobcached.errors import WrongTypeError
from jobcached.net.replies import Deferred

if TYPE_CHECKING:
    from jobcached.jobs.timerwheel import TimerHandle
    from jobcached.server.session import Session
    from jobcached.server.state import ServerState

#: `Waiter.serve` results other than a reply: the key has nothing for anyone (stop walking its
#: queue), or has data of a kind this waiter does not pop (a BLPOP waiter on a sorted set).
EMPTY = object()
SKIP = object()

#: A deadline further than this from now is treated as "forever" (Redis would overflow).
MAX_TIMEOUT_MS = 2**62

_ATTR = "blocked_keys"

Serve = Callable[[bytes], Any]
DbKey = tuple[int, bytes]  # (database, key): what waiters queue on


class Waiter:
    """One blocked command: its database and keys, its pending reply, how to serve it, its
    timeout timer."""

    __slots__ = ("db", "done", "keys", "reply", "serve", "timer")

    def __init__(self, db: int, keys: tuple[bytes, ...], reply: Deferred, serve: Serve) -> None:
        self.db = db
        self.keys = keys
        self.reply = reply
        self.serve = serve
        self.timer: TimerHandle[Callable[[], None]] | None = None
        self.done = False


class BlockedKeys:
    """The per-server registry: key -> waiters in blocking order (a dict used as an ordered set,
    so a waiter leaves the middle of a queue in O(1))."""

    __slots__ = ("atomic_depth", "blocked", "hooked", "queues", "ready", "server", "serving")

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.queues: dict[DbKey, dict[Waiter, None]] = {}
        #: keys signalled and not yet walked, in order: the server's dict, which the
        #: dispatcher tests after each command
        self.ready: dict[DbKey, None] = server.ready_keys
        self.serving = False
        self.atomic_depth = 0
        self.blocked = 0  # waiters alive: INFO's blocked_clients
        self.hooked = False  # the keyspace's readiness hook is wired here (module docstring)

    def mark_ready(self, db: int, key: bytes) -> None:
        """The readiness hook (see the module docstring): queue the key for serving if anyone
        waits on it; the dispatcher serves it after the running command (or the transaction
        or script around it), and it is served at once when no command runs."""
        db_key = (db, key)
        if db_key in self.queues:
            self.ready[db_key] = None
            if self.server.current_client is None:  # expiry, eviction: no command to wait for
                self.serve_ready()

    def add(self, waiter: Waiter) -> None:
        if not self.hooked:  # the first client to block: from now on, writes report readiness
            self.server.dbs.set_ready_hook(self.mark_ready)
            self.hooked = True
        for key in waiter.keys:
            self.queues.setdefault((waiter.db, key), {})[waiter] = None
        self.blocked += 1

    def remove(self, waiter: Waiter) -> None:
        """Forget a waiter (served, timed out or disconnected); idempotent."""
        if waiter.done:
            return
        waiter.done = True
        self.blocked -= 1
        if waiter.timer is not None:
            self.server.timers.cancel(waiter.timer)
            waiter.timer = None
        for key in waiter.keys:
            db_key = (waiter.db, key)
            queue = self.queues.get(db_key)
            if queue is not None:
                queue.pop(waiter, None)
                if not queue:
                    del self.queues[db_key]

    def serve_ready(self) -> None:
        """Walk the queues of the ready keys until no waiter can be served (see module doc)."""
        if self.serving or self.atomic_depth:
            return
        self.serving = True
        try:
            while self.ready:
                key = next(iter(self.ready))
                del self.ready[key]
                self._serve_key(key)
        finally:
            self.serving = False

    def _serve_key(self, db_key: DbKey) -> None:
        queue = self.queues.get(db_key)
        db, key = db_key
        server = self.server
        running_db = server.db
        server.db = db  # the waiter's effects happen in its database
        try:
            self._serve_queue(queue, key)
        finally:
            server.db = running_db

    def _serve_queue(self, queue: dict[Waiter, None] | None, key: bytes) -> None:
        skipped = 0
        while queue:
            waiter = next(islice(queue, skipped, None), None)
            if waiter is None:
                return
            result = waiter.serve(key)
            if result is EMPTY:
                return
            if result is SKIP:
                skipped += 1
                continue
            self.remove(waiter)
            # Resolving may run the served client's next pipelined commands right away; they
            # only queue ready keys (self.serving is set), so this loop stays the only walker.
            waiter.reply.resolve(result)


def registry(server: ServerState) -> BlockedKeys:
    """The server's registry, created and attached on first use."""
    reg: BlockedKeys | None = getattr(server, _ATTR, None)
    if reg is None:
        reg = BlockedKeys(server)
        setattr(server, _ATTR, reg)
    return reg


def may_block(s: Session) -> bool:
    """False inside MULTI/EXEC: the command must answer with its timeout value at once."""
    if s.multi is not None:
        return False
    reg: BlockedKeys | None = getattr(s.server, _ATTR, None)
    return reg is None or reg.atomic_depth == 0


def block(s: Session, keys: Sequence[bytes], timeout_ms: int, serve: Serve,
          timeout_reply: Any) -> Deferred:
    """Block the client on `keys` (in order, duplicates ignored) for `timeout_ms` (0: forever).

    `serve(key)` is called when a key may have data: it returns the reply after doing the
    command's work (pop, propagate), or EMPTY / SKIP when it cannot be served from that key.
    """
    server = s.server
    reg = registry(server)
    reply = Deferred(blocking=True)
    reply.timeout_reply = timeout_reply
    waiter = Waiter(s.db, tuple(dict.fromkeys(keys)), reply, serve)
    reg.add(waiter)
    if 0 < timeout_ms <= MAX_TIMEOUT_MS:

        def expire() -> None:
            if not waiter.done:
                waiter.timer = None  # it has fired: nothing to cancel
                reg.remove(waiter)
                reply.resolve(timeout_reply)

        waiter.timer = server.timers.schedule(server.clock.now_ms() + timeout_ms, expire)
    reply.on_cancel = lambda: reg.remove(waiter)
    return reply


def pop_or_block(s: Session, keys: Sequence[bytes], timeout_ms: int, take: Serve,
                 timeout_reply: Any) -> Any:
    """BLPOP-style commands: take from the first of `keys` that has data, else block.

    `take(key)` does the command's work on one key and returns its reply, or EMPTY when the
    key holds nothing; it raises WrongTypeError for a key of another type. Before blocking
    that error is the command's reply, as in Redis; once blocked, such a key is skipped.
    """
    for key in keys:
        reply = take(key)
        if reply is not EMPTY:
            return reply
    if not may_block(s):
        return timeout_reply

    def serve(key: bytes) -> Any:
        try:
            return take(key)
        except WrongTypeError:
            return SKIP

    return block(s, keys, timeout_ms, serve, timeout_reply)


def signal_db_ready(server: ServerState, db: int) -> None:
    """Database `db` got new contents (SWAPDB): serve its waiters from whatever it now holds
    (Redis' scanDatabaseForReadyKeys)."""
    reg: BlockedKeys | None = getattr(server, _ATTR, None)
    if reg is None:
        return
    for db_key in list(reg.queues):
        if db_key[0] == db:
            reg.ready[db_key] = None  # served after the command, as by `mark_ready`


@contextmanager
def atomic(server: ServerState) -> Iterator[None]:
    """Run commands as one atomic unit (EXEC): blocking commands answer at once, and clients
    blocked on keys the unit fills are served after it, not in the middle of it."""
    reg = registry(server)
    reg.atomic_depth += 1
    try:
        yield
    finally:
        reg.atomic_depth -= 1
        if not reg.atomic_depth:
            reg.serve_ready()
