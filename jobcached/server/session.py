"""Per-connection state that commands read and change.

A `Session` is what handlers receive as their first argument: who the client is (id, address,
name), how it speaks (RESP2 or RESP3), whether it is authenticated, and what it asked for with
CLIENT REPLY. It knows nothing about asyncio; the protocol object it is attached to implements
the small `Connection` interface below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from jobcached.net.replies import Deferred, Push

if TYPE_CHECKING:
    from jobcached.cache.keyspace import Keyspace
    from jobcached.security.acl import User
    from jobcached.server.state import ServerState
    from jobcached.server.tracking import ClientTracking


#: Redis' PROTO_REPLY_CHUNK_BYTES: the size of a client's static reply buffer (CLIENT LIST
#: `obl`) and of the reply blocks counted in `oll`.
REPLY_CHUNK_BYTES = 16 * 1024


class Connection(Protocol):
    """What a Session may ask of the transport side."""

    def close_after_reply(self) -> None:
        """Write what is queued, then close (QUIT, protocol errors, CLIENT KILL of self)."""
        ...

    def abort(self) -> None:
        """Close now, dropping unsent output (CLIENT KILL of another client)."""
        ...

    def push(self, value: Any) -> None:
        """Write an out-of-band reply (a pub/sub message or confirmation) in this client's
        protocol, after the replies already queued (before a blocked command's reply)."""
        ...

    def push_after_reply(self, value: Any) -> None:
        """Like `push`, but when this client's own command caused it, after that command's
        reply (a tracking invalidation for a key the client itself changed, as Redis)."""
        ...

    def query_buffer_bytes(self) -> int:
        """Bytes received and not yet run as commands (CLIENT LIST `qbuf`)."""
        ...

    def output_buffer_bytes(self) -> int:
        """Bytes of output the client has not taken yet, held replies included (`omem`)."""
        ...


class Session:
    """One client's state; see the module docstring."""

    def __init__(self, server: ServerState, conn: Connection, addr: str, laddr: str,
                 is_local: bool, unix: bool = False) -> None:
        self.server = server
        #: the selected database: its number, and its Keyspace (what cache handlers use)
        self.db = 0
        self.keyspace: Keyspace = server.dbs[0]
        self.conn = conn
        self.id = server.new_client_id()
        self.addr = addr
        self.laddr = laddr
        #: loopback or unix socket: allowed when protected mode is on and no password is set
        self.is_local = is_local
        #: connected through the unix socket (CLIENT LIST flag U, MONITOR's `unix:<path>`)
        self.unix = unix
        #: the file descriptor of its socket (CLIENT LIST `fd`; -1 when it has none)
        self.fd = -1
        #: the client scripts run their commands as (Redis' CLIENT_SCRIPT): some commands
        #: refuse options there (XREAD ... BLOCK)
        self.script = False
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.resp3 = False
        #: the ACL user (jobcached/security/acl.py) and whether it authenticated; `unchecked`: both
        #: true and the user may run anything, so dispatch's fast path skips every check
        self.user: User = server.acl.default
        self.authenticated = server.acl.open_to_new_connections()
        self.unchecked = self.authenticated and self.user.unrestricted
        self.created_ms = server.clock.monotonic_ms()
        self.last_interaction_ms = self.created_ms
        #: "on", "off", or "skip" (skip the next reply only), as CLIENT REPLY sets it
        self.reply_mode = "on"
        self.last_command = "NULL"
        self.closing = False
        #: MULTI: the queued commands, or None outside a transaction
        self.multi: list[list[bytes]] | None = None
        #: a command queued in MULTI was rejected: EXEC must abort (EXECABORT)
        self.multi_error = False
        #: WATCHed keys, and whether one of them changed since (EXEC then fails)
        self.watched: set[tuple[int, bytes]] = set()  # (db, key)
        self.watch_dirty = False
        #: pub/sub: channels and patterns subscribed to (ordered sets; see jobcached.server.pubsub)
        self.sub_channels: dict[bytes, None] = {}
        self.sub_patterns: dict[bytes, None] = {}
        #: sharded pub/sub (SSUBSCRIBE): shard channels, a namespace of their own
        self.sub_shard_channels: dict[bytes, None] = {}
        #: CLIENT TRACKING state (jobcached.server.tracking), None until tracking is first turned on
        self.tracking: ClientTracking | None = None
        #: in MONITOR mode (commands/monitor.py): receives every command the server runs
        self.monitoring = False
        #: CLIENT NO-EVICT ON (flag e); kept for CLIENT LIST, as client eviction is not ours
        self.no_evict = False
        #: the reply this client waits for while blocked (BLPOP, JOB.FETCH BLOCK, a command
        #: held by CLIENT PAUSE): set by the connection, read by CLIENT UNBLOCK and flag b
        self.blocked_on: Deferred | None = None

    @property
    def subscriptions(self) -> int:
        """Channels plus patterns: the count in (un)subscribe confirmations."""
        return len(self.sub_channels) + len(self.sub_patterns)

    @property
    def subscribed(self) -> bool:
        """Subscribed to anything, shard channels included (CLIENT LIST flag P)."""
        return bool(self.sub_channels or self.sub_patterns or self.sub_shard_channels)

    @property
    def resp2_subscribed(self) -> bool:
        """In RESP2 subscribe mode, where only a few commands are allowed."""
        return not self.resp3 and self.subscribed

    def deliver(self, message: list[Any]) -> None:
        """A published message for this subscriber (called by the pub/sub registry)."""
        if not self.closing:
            self.conn.push(Push(message))

    def drop_subscriptions(self) -> None:
        """Leave every channel and pattern silently (disconnect, RESET)."""
        if self.subscribed:
            self.server.pubsub.drop(self)

    def unwatch(self) -> None:
        """Forget every WATCHed key (EXEC, DISCARD, UNWATCH, RESET, disconnect)."""
        watchers = self.server.watchers
        for key in self.watched:
            sessions = watchers.get(key)
            if sessions is not None:
                sessions.discard(self)
                if not sessions:
                    del watchers[key]
        self.watched.clear()
        self.watch_dirty = False

    def select(self, db: int) -> None:
        """SELECT: work in database `db` from now on (a valid index)."""
        self.db = db
        self.keyspace = self.server.dbs[db]

    def stop_monitoring(self) -> None:
        """Leave MONITOR mode (RESET, disconnect)."""
        if self.monitoring:
            self.monitoring = False
            self.server.monitors.pop(self, None)
            self.server.refresh_gate()

    def reset(self) -> None:
        """RESET: back to a fresh connection's state (keeps id and address)."""
        self.stop_monitoring()
        self.select(0)
        self.multi = None
        self.multi_error = False
        self.unwatch()
        self.drop_subscriptions()
        self.server.tracking.disable(self)
        self.name = b""
        self.resp3 = False
        self.login(self.server.acl.default, self.server.acl.open_to_new_connections())
        self.reply_mode = "on"

    def login(self, user: User, authenticated: bool = True) -> None:
        """AUTH / HELLO AUTH succeeded (or RESET): act as `user` from now on."""
        self.user = user
        self.authenticated = authenticated
        self.refresh_permissions()

    def refresh_permissions(self) -> None:
        """The user's rules changed (ACL SETUSER, CONFIG SET requirepass)."""
        self.unchecked = self.authenticated and self.user.unrestricted

    def age_seconds(self) -> int:
        return (self.server.clock.monotonic_ms() - self.created_ms) // 1000

    def idle_seconds(self) -> int:
        return (self.server.clock.monotonic_ms() - self.last_interaction_ms) // 1000

    def flag_letters(self) -> str:
        """CLIENT LIST `flags`: Redis' letters for the states we have, N for none."""
        letters = ""
        if self.monitoring:
            letters += "O"
        if self.subscribed:
            letters += "P"
        if self.multi is not None:
            letters += "x"
        if self.blocked_on is not None:
            letters += "b"
        tracking = self.tracking
        if tracking is not None and tracking.on:  # tracking, broken redirect, broadcast
            letters += "t" + "R" * tracking.broken_redirect + "B" * tracking.bcast
        if self.watch_dirty:
            letters += "d"
        if self.unix:
            letters += "U"
        if self.no_evict:
            letters += "e"
        return letters or "N"

    def describe(self) -> str:
        """One CLIENT LIST / CLIENT INFO line, with Redis 7.0's fields in its order.

        Buffers are ours, measured: `qbuf` is the input received and not yet run, the output
        is split as Redis splits it, the first REPLY_CHUNK_BYTES pending in `obl` (its static
        buffer), the rest in `omem`, counted in `oll` chunks of that size. `argv-mem` and
        `multi-mem` are the sizes of the arguments queued by MULTI.
        """
        qbuf, pending = self.conn.query_buffer_bytes(), self.conn.output_buffer_bytes()
        obl = min(pending, REPLY_CHUNK_BYTES)
        omem = pending - obl
        multi_mem = sum(len(arg) for argv in self.multi for arg in argv) if self.multi else 0
        tracking = self.tracking
        fields = {
            "id": self.id, "addr": self.addr, "laddr": self.laddr, "fd": self.fd,
            "name": self.name.decode(errors="replace"), "age": self.age_seconds(),
            "idle": self.idle_seconds(), "flags": self.flag_letters(), "db": self.db,
            "sub": len(self.sub_channels), "psub": len(self.sub_patterns),
            "ssub": len(self.sub_shard_channels),
            "multi": -1 if self.multi is None else len(self.multi),
            "qbuf": qbuf, "qbuf-free": 0, "argv-mem": 0, "multi-mem": multi_mem,
            "rbs": 0, "rbp": 0, "obl": obl, "oll": -(-omem // REPLY_CHUNK_BYTES),
            "omem": omem, "tot-mem": qbuf + pending + multi_mem,
            "events": "rw" if pending else "r", "cmd": self.last_command.lower(),
            "user": self.user.name.decode(errors="replace"),
            "redir": tracking.redirect if tracking is not None and tracking.on else -1,
            "resp": 3 if self.resp3 else 2,
        }
        return " ".join(f"{k}={v}" for k, v in fields.items())

