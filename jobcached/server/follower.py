"""The follower's side: connect to the leader, load its snapshot, apply its stream, acknowledge.

`REPLICAOF host port` (or `replicaof` in the config) starts a `Follower` task that loops:
connect; handshake as Redis replicas do (PING, AUTH with `masteruser`/`masterauth` when set,
`REPLCONF listening-port` (`replica-announce-port` when set), `REPLCONF ip-address` when
`replica-announce-ip` is set, `REPLCONF capa eof capa psync2`); `PSYNC <replid> <offset+1>` with
what an earlier sync of this process left (`PSYNC ? -1` at first); then

- `+FULLRESYNC <replid> <offset>`: read the payload (`$<length>` then that many bytes: commands,
  see snapshot.py) and load it: the cache and the function libraries are flushed and rebuilt
  through the dispatcher, the job engine is rebuilt from the payload's `JOB.RECORD` bodies as a
  WAL replay would, installed in place of the old one, and the WAL compacted to it (the host
  does that: app.py). A follower that holds live jobs refuses a payload with none, logging why,
  unless `replica-accept-empty-master yes`: a leader restarted with an empty data dir must not
  wipe its followers' jobs.
- `+CONTINUE <replid>`: nothing to load, the stream goes on from our offset.

Then the stream, applied in order as it arrives: cache effects through the dispatcher as the
*master session* (exempt from READONLY, ACL and maxmemory: Redis' master client), `JOB.RECORD`
bodies through the engine's replay path and appended to our own WAL (a promoted follower is
durable), MULTI ... EXEC groups in one step. The offset counts the bytes of each command, as
the leader's does. `REPLCONF ACK <offset>` goes back every second, and on `REPLCONF GETACK`.
When the link breaks the loop tries again after RETRY_SECONDS, asking to continue.

Our own backlog holds the leader's stream as it came, under the leader's id and offsets (our
own effects are muted meanwhile: `Effects.mute`). So after a promotion the old leader's other
followers continue from us with the old id (PSYNC2, `Backlog.new_history`), and a follower
pointed at another leader first asks to continue where it was (app.py `follow`). A clean stop
saves our place and cache, and the next start as a follower continues from there
(`save_place`, `resume`; replication/resume.py says when that is valid).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import hiredis

from jobcached.jobs.model import TERMINAL
from jobcached.jobs.records import decode_record
from jobcached.net.replies import ErrorReply
from jobcached.replication import resume
from jobcached.replication.backlog import JOB_RECORD, encode_command, parse_commands
from jobcached.server.session import Session

if TYPE_CHECKING:
    from jobcached.jobs.engine import JobEngine
    from jobcached.server.state import ServerState

log = logging.getLogger("jobcached.replication")

#: Seconds between two attempts to reach the leader.
RETRY_SECONDS = 1.0
#: Seconds a connection attempt or a handshake reply may take.
HANDSHAKE_TIMEOUT_SECONDS = 10.0
#: How often the follower acknowledges its offset (Redis: once a second).
ACK_INTERVAL_SECONDS = 1.0
#: Bytes read from the leader at a time.
READ_CHUNK_BYTES = 256 * 1024


class FollowerHost(Protocol):
    """What replication needs from the application (app.py): to replace the job state on a
    full sync, and to switch roles (REPLICAOF)."""

    def new_engine(self) -> JobEngine:
        """An empty job engine wired as the running one is."""
        ...

    async def install_engine(self, engine: JobEngine) -> None:
        """Make `engine` the server's, and its state the WAL's."""
        ...

    def run_as_master(self, session: Session, argv: list[bytes]) -> Any:
        """Run a command of the leader's as `session`, past READONLY, ACL and maxmemory
        (the command table is above this layer); its reply, an ErrorReply if it failed."""
        ...

    def follow(self, host: str, port: int) -> None:
        """Become (or stay) a follower, of host:port now."""
        ...

    async def promote(self) -> None:
        """Stop following and become a leader."""
        ...


class LinkError(Exception):
    """The leader refused the handshake, or sent what a leader does not send."""


class MasterConnection:
    """The transport of a session whose replies go nowhere: the master session (the
    leader's stream), and the one a cache snapshot loads through (server/saving.py)."""

    def close_after_reply(self) -> None:
        """The stream's commands cannot close the link."""

    def abort(self) -> None:
        """Nothing to drop."""

    def push(self, value: Any) -> None:
        """No pushes: the master session subscribes to nothing."""

    def push_after_reply(self, value: Any) -> None:
        """Nor tracking invalidations."""

    def query_buffer_bytes(self) -> int:
        return 0

    def output_buffer_bytes(self) -> int:
        return 0


def command_size(argv: list[bytes]) -> int:
    """Bytes of `argv` encoded as the leader encodes its stream (backlog.encode_command)."""
    size = 3 + len(str(len(argv)))
    for arg in argv:
        size += 5 + len(str(len(arg))) + len(arg)
    return size


class Follower:
    """See the module docstring. One per REPLICAOF; `stop` ends it."""

    def __init__(self, state: ServerState, host: str, port: int, app: FollowerHost) -> None:
        self.state = state
        self.host = host
        self.port = port
        self.app = app
        self.link_up = False
        self.sync_in_progress = False
        self.last_io_ms = 0  # monotonic
        self.down_since_ms = state.clock.monotonic_ms()
        #: the leader's history and our place in it; "?" / -1 until a full sync
        self.replid = "?"
        self.offset = -1
        self.session = Session(state, MasterConnection(), f"{host}:{port}", "", True)
        self.session.authenticated = self.session.unchecked = True
        self._multi: list[list[bytes]] | None = None
        #: False while a full sync's payload replaces the dataset: it is at no offset then
        self._at_offset = True
        self._last_error = ""
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    def continue_after(self, old: Follower) -> None:
        """REPLICAOF another leader: ask it to continue where `old` was (PSYNC2), in the
        database `old` had selected (the stream selects again only when it changes)."""
        self.replid, self.offset = old.replid, old.offset
        self._dispatch([b"SELECT", str(old.session.db).encode()])

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def drop_link(self) -> bool:
        """CLIENT KILL TYPE master: close the link to the leader, which comes back (asking to
        continue) as after a network failure. False when no link is up."""
        if not self.link_up or self._writer is None:
            return False
        self._writer.close()
        return True

    # ------------------------------------------------------------------ the link

    async def _run(self) -> None:
        while True:
            try:
                await self._link()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, EOFError, asyncio.IncompleteReadError, LinkError,
                    hiredis.ProtocolError, ValueError) as exc:
                if self.link_up or self.sync_in_progress:
                    log.warning("link to the leader lost", extra={"leader": self._name,
                                                                  "error": str(exc)})
                elif str(exc) != self._last_error:  # once per cause, not every second
                    log.warning("cannot sync with the leader", extra={"leader": self._name,
                                                                     "error": str(exc)})
                self._last_error = str(exc)
            except Exception:
                # A bug, not the network: say so loudly, and keep following (the next PSYNC
                # continues after the command that failed, or syncs in full).
                log.exception("replication link failed", extra={"leader": self._name})
            finally:
                self._link_down()
            await asyncio.sleep(RETRY_SECONDS)

    @property
    def _name(self) -> str:
        return f"{self.host}:{self.port}"

    def _link_down(self) -> None:
        if self.link_up:
            self.down_since_ms = self.state.clock.monotonic_ms()
        self.link_up = False
        self.sync_in_progress = False
        self._multi = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _link(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), HANDSHAKE_TIMEOUT_SECONDS)
        self._writer = writer
        config = self.state.config
        await self._ask(reader, [b"PING"], allow_error=True)  # NOAUTH is fine here, as Redis
        if config.masterauth:
            auth = [b"AUTH", config.masterauth.encode()]
            if config.masteruser:
                auth.insert(1, config.masteruser.encode())
            await self._ask(reader, auth)
        port = config.replica_announce_port or self.state.tcp_port
        await self._ask(reader, [b"REPLCONF", b"listening-port", str(port).encode()])
        if config.replica_announce_ip:
            await self._ask(reader, [b"REPLCONF", b"ip-address",
                                     config.replica_announce_ip.encode()])
        await self._ask(reader, [b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        offset = b"-1" if self.offset < 0 else str(self.offset + 1).encode()
        line = await self._ask(reader, [b"PSYNC", self.replid.encode(), offset])
        words = line.split() or [b""]
        if words[0] == b"+FULLRESYNC" and len(words) == 3:
            self.sync_in_progress = True
            await self._full_sync(reader, words[1].decode(), int(words[2]))
            self.sync_in_progress = False
        elif words[0] == b"+CONTINUE":
            if len(words) > 1 and words[1].decode() != self.replid:
                self._new_history(words[1].decode())
            log.info("continuing from the leader's backlog (partial resync)",
                     extra={"leader": self._name, "offset": self.offset})
        else:
            raise LinkError(f"unexpected reply to PSYNC: {line[:100]!r}")
        self.link_up = True
        self._last_error = ""
        self.last_io_ms = self.state.clock.monotonic_ms()
        log.info("link to the leader is up", extra={"leader": self._name})
        acks = asyncio.get_running_loop().create_task(self._ack_every_second())
        try:
            await self._stream(reader)
        finally:
            acks.cancel()

    async def _ask(self, reader: asyncio.StreamReader, argv: list[bytes],
                   allow_error: bool = False) -> bytes:
        """Send one handshake command; its one-line reply."""
        assert self._writer is not None
        self._writer.write(encode_command(argv))
        line = await asyncio.wait_for(reader.readline(), HANDSHAKE_TIMEOUT_SECONDS)
        if not line:
            raise EOFError("the leader closed the connection")
        line = line.rstrip(b"\r\n")
        if line.startswith(b"-") and not allow_error:
            raise LinkError(f"{argv[0].decode()} refused: {line[1:].decode(errors='replace')}")
        return line

    async def _full_sync(self, reader: asyncio.StreamReader, replid: str, offset: int) -> None:
        while True:  # the leader may send newlines while its snapshot is being written
            line = (await reader.readline()).rstrip(b"\r\n")
            if not line and reader.at_eof():
                raise EOFError("the leader closed the connection during the sync")
            if line.startswith(b"$"):
                break
            if line:
                raise LinkError(f"expected the payload, got {line[:100]!r}")
        loop = asyncio.get_running_loop()
        started = loop.time()
        size = remaining = int(line[1:])
        parser = hiredis.Reader()
        commands: list[list[bytes]] = []
        while remaining:
            data = await reader.read(min(remaining, READ_CHUNK_BYTES))
            if not data:
                raise EOFError("the leader closed the connection during the sync")
            remaining -= len(data)
            parse_commands(parser, data, commands)
        if parser.has_data():
            raise LinkError("the payload ends inside a command")
        received = loop.time()
        await self._load(commands)
        self.replid, self.offset = replid, offset
        self._at_offset = True
        backlog = self.state.backlog
        backlog.reset(replid, offset)
        backlog.activate()  # it holds the leader's stream from here (PSYNC2 after a promotion)
        log.info("full sync loaded", extra={
            "leader": self._name, "offset": offset, "bytes": size,
            "receive_seconds": round(received - started, 3),
            "load_seconds": round(loop.time() - received, 3)})

    async def _load(self, commands: list[list[bytes]]) -> None:
        """Replace the dataset with the payload's (see the module docstring)."""
        bodies = [argv[1] for argv in commands if argv[0] == JOB_RECORD]
        engine = self.state.jobs
        live = 0 if engine is None else sum(1 for job in engine.jobs.values()
                                            if job.state not in TERMINAL)
        if live and not bodies and not self.state.config.replica_accept_empty_master:
            log.error("refusing a full sync that would drop our live jobs: the leader has "
                      "none (restarted with an empty data dir?); set "
                      "replica-accept-empty-master yes to accept it",
                      extra={"leader": self._name, "live_jobs": live})
            raise LinkError("full sync refused: it would drop our live jobs")
        self._multi = None
        self._at_offset = False  # until the new offset is ours (`_full_sync`)
        # The load allocates an object or more per key and job, all of which survive: the
        # cyclic collector would scan them again and again (as in the WAL replay, app.py).
        gc.disable()
        try:
            self._dispatch([b"FLUSHALL", b"SYNC"])
            self._dispatch([b"FUNCTION", b"FLUSH", b"SYNC"])
            self._rebuild_cache(commands)
            self._dispatch([b"SELECT", b"0"])
            fresh = self.app.new_engine()
            fresh.replay(map(decode_record, bodies))
        finally:
            gc.enable()
        await self.app.install_engine(fresh)

    def _rebuild_cache(self, commands: list[list[bytes]]) -> None:
        """A payload's cache commands (snapshot.py), on a flushed keyspace. Its strings go
        straight into the keyspace, as Redis loads an RDB: no dispatch, no keyspace event,
        not counted as changes (about 1 us a key against 7 through the dispatcher: a million
        keys load in 2 s instead of 8). The rest (SELECT, RESTORE, FUNCTION RESTORE) runs
        through the dispatcher as the master session; job records are not cache commands."""
        dbs = self.state.dbs
        keyspace = dbs[self.session.db]
        for argv in commands:
            name = argv[0]
            if name == b"SET":
                keyspace.set(argv[1], argv[2], int(argv[4]) if len(argv) == 5 else None)
            elif name != JOB_RECORD:
                self._dispatch(argv)
                if name == b"SELECT":
                    keyspace = dbs[self.session.db]

    async def _stream(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader()
        clock = self.state.clock
        backlog = self.state.backlog
        dbs = self.state.dbs
        commands: list[list[bytes]] = []
        #: MULTI and the commands after it, until EXEC applies them all: only then do they
        #: count in our offset and enter our backlog, so a link that breaks inside a group
        #: continues from before its MULTI (as a Redis replica, whose offset stands still
        #: while its master client is in MULTI) instead of after commands never applied
        held: list[list[bytes]] = []
        while True:
            data = await reader.read(READ_CHUNK_BYTES)
            if not data:
                raise EOFError("the leader closed the connection")
            self.last_io_ms = clock.monotonic_ms()
            parse_commands(parser, data, commands)
            # Clients read a key past its TTL as missing but it stays (app.py `follow`);
            # the leader's commands act on the keyspace as it is: its DEL removes such a key.
            dbs.keep_expired(False)
            try:
                for argv in commands:
                    if argv[0].upper() == b"REPLCONF":  # out of the stream: not counted
                        self._send_ack()
                        continue
                    if self._multi is None and argv[0].upper() != b"MULTI":
                        self.offset += command_size(argv)
                        self._apply(argv)
                        backlog.append(argv)
                        continue
                    held.append(argv)
                    self._apply(argv)
                    if self._multi is None:  # its EXEC: the group is applied
                        for applied in held:
                            self.offset += command_size(applied)
                            backlog.append(applied)
                        held.clear()
            finally:
                dbs.keep_expired(self.state.follower is self or self.state.pause is not None)
            commands.clear()

    def _new_history(self, replid: str) -> None:
        """Our leader continued us under another id (it was promoted, or we follow another
        follower's promotion): our history goes on under it, the old id kept, as Redis."""
        backlog = self.state.backlog
        backlog.replid2, backlog.second_offset = backlog.replid, self.offset + 1
        backlog.replid = self.replid = replid

    # ------------------------------------------------------------------ applying

    def _apply(self, argv: list[bytes]) -> None:
        name = argv[0].upper()
        group = self._multi
        if group is not None:
            if name == b"EXEC":
                self._multi = None
                for queued in group:
                    self._apply_one(queued)
            else:
                group.append(argv)
        elif name == b"MULTI":
            self._multi = []
        elif name != b"PING":
            self._apply_one(argv)

    def _apply_one(self, argv: list[bytes]) -> None:
        if argv[0] == JOB_RECORD:
            body = argv[1]
            engine = self.state.jobs
            if engine is not None:
                engine.replay([decode_record(body)])
            durability = self.state.effects.durability
            if durability is not None:
                durability.append(body)
            return
        self._dispatch(argv)

    def _dispatch(self, argv: list[bytes]) -> None:
        reply = self.app.run_as_master(self.session, argv)
        if isinstance(reply, ErrorReply):
            log.warning("a command from the leader failed here",
                        extra={"command": argv[0][:64].decode(errors="replace"),
                               "error": reply.text})

    # ------------------------------------------------------------------ across a restart

    def save_place(self, data_dir: str) -> None:
        """At a clean stop, after the link closed and the WAL drained: our place in the
        leader's stream and the cache built up to it (replication/resume.py), unless our
        data stands at no known offset."""
        path = str(Path(data_dir) / resume.FILE_NAME)
        durability = self.state.effects.durability
        if self.offset < 0 or not self._at_offset or (
                durability is not None and durability.failure is not None):
            resume.discard(path)
            return
        try:
            count = resume.save(path, self.replid, self.offset, self.session.db,
                                self.state.dbs, self.state.clock.now_ms())
        except OSError as exc:
            resume.discard(path)
            log.error("could not save our place in the leader's stream: the next start "
                      "syncs in full", extra={"path": path, "error": str(exc)})
            return
        log.info("saved our place in the leader's stream", extra={
            "replid": self.replid, "offset": self.offset, "commands": count})

    def resume(self, data_dir: str) -> None:
        """At start, before the link: load what `save_place` left (and delete it), so the
        first PSYNC asks to continue from there."""
        path = str(Path(data_dir) / resume.FILE_NAME)
        try:
            place = resume.take(path)
        except (OSError, resume.ResumeError) as exc:
            log.warning("ignoring the saved place in the leader's stream: syncing in full",
                        extra={"path": path, "error": str(exc)})
            return
        if place is None:
            return
        gc.disable()  # as in `_load`: many objects, all surviving
        try:
            self._dispatch([b"FLUSHALL", b"SYNC"])
            self._rebuild_cache(place.commands)
            self._dispatch([b"SELECT", str(place.db).encode()])
        finally:
            gc.enable()
        self.replid, self.offset = place.replid, place.offset
        self.state.backlog.reset(place.replid, place.offset)
        self.state.backlog.activate()
        log.info("resuming from our saved place in the leader's stream", extra={
            "replid": place.replid, "offset": place.offset, "keys": len(place.commands)})

    # ------------------------------------------------------------------ acknowledgements

    def _send_ack(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode_command([b"REPLCONF", b"ACK",
                                               str(self.offset).encode()]))

    async def _ack_every_second(self) -> None:
        while True:
            self._send_ack()
            await asyncio.sleep(ACK_INTERVAL_SECONDS)
