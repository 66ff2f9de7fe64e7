"""The leader's side of replication: attached followers, full syncs, the live stream, WAIT.

A follower connects as a client, says who it is (`REPLCONF listening-port`, `capa`) and asks
`PSYNC <replid> <offset>`. If the backlog (backlog.py) still holds everything after its offset
under the same history, it gets `+CONTINUE` and those bytes; otherwise a full sync:

1. In one step of the event loop: the effects not yet sent to the followers already attached
   go out, the follower is attached in state `wait_bgsave` (from now on the stream collects
   in its own buffer), the effect log is told to SELECT again before its next effect (the
   follower's database after the payload is unknown), a child is forked (forkwrite.py) and
   `+FULLRESYNC <replid> <offset>` is the reply. The child's copy of the state is exactly what
   the stream up to `offset` built, and it writes it as commands (snapshot.py) to a file.
2. When the child is done: `$<length>\\r\\n`, the file, then the buffered stream; the follower
   is `online` and gets each later burst of effects as it happens (one write per loop turn).

The follower sends `REPLCONF ACK <offset>` every second: its `lag` in INFO, what WAIT and a
job write's REPLICAS option count (`wait_for_acks`), and what `min-replicas-to-write` checks
(`refuses_writes`). Whoever waits for acks asks for them at once: the end of the loop turn's
burst carries a `REPLCONF GETACK *` (as Redis' WAIT does), so a wait lasts a round trip, not up
to a second. A link whose connection closed is dropped the next time it is looked at.

Limitation of this slice: each full sync forks its own child (Redis lets followers that ask
at the same time share one), and the payload goes through a file in the data dir (Redis can
also stream it from the child's memory: repl-diskless-sync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from jobcached.errors import CommandError
from jobcached.net.replies import Deferred, Encoded
from jobcached.persistence.forkwrite import ChildFailed, ForkedWrite
from jobcached.replication.snapshot import snapshot_commands, write_payload
from jobcached.scripting import rdbdump

if TYPE_CHECKING:
    from jobcached.jobs.timerwheel import TimerHandle
    from jobcached.server.session import Session
    from jobcached.server.state import ServerState

log = logging.getLogger("jobcached.replication")

#: Bytes of the payload file read and queued per write to the follower.
SEND_CHUNK_BYTES = 1024 * 1024
#: The payload is queued to the follower's socket no further ahead than this (bytes), so a
#: large snapshot does not sit in memory a second time.
SEND_AHEAD_BYTES = 4 * SEND_CHUNK_BYTES
#: How long the sender waits for the socket to take some of it (seconds).
SEND_WAIT_SECONDS = 0.002
#: A follower whose own buffer (the stream during its full sync) grows past this is dropped:
#: it would sync again from scratch (Redis' client-output-buffer-limit replica, hard part).
SYNC_BUFFER_MAX_BYTES = 256 * 1024 * 1024
#: What asks the followers for their offset now (Redis' WAIT sends it too); a follower answers
#: with REPLCONF ACK and does not count it in its offset (it is not in the backlog).
GETACK = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"


class AckWait(NamedTuple):
    """A reply waiting for acks: the offset, how many followers, what to answer with the
    count of those that acked it (see `Leader.wait_for_acks`)."""

    offset: int
    replicas: int
    reply: Deferred
    answer: Callable[[int], Any]


class ReplicaLink:
    """One attached follower."""

    def __init__(self, session: Session, port: int, ip: str) -> None:
        self.session = session
        self.port = port
        self.ip = ip
        self.state = "wait_bgsave"  # then "send_bulk", "online"
        self.ack_offset = 0
        self.ack_ms = 0
        self.buffer: list[bytes] = []
        self.buffered = 0

    def send(self, data: bytes) -> None:
        """Raw bytes to the follower, after what its connection has queued already."""
        if data:
            self.session.conn.push(Encoded(data))

    def feed(self, data: bytes) -> bool:
        """A burst of the stream; False if the link must be dropped (see the constant)."""
        if self.state == "online":
            self.send(data)
            return True
        self.buffer.append(data)
        self.buffered += len(data)
        return self.buffered <= SYNC_BUFFER_MAX_BYTES


class Leader:
    """See the module docstring. One per server."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.links: dict[Session, ReplicaLink] = {}
        #: (listening-port, ip-address) a connection announced before its PSYNC
        self.announced: dict[Session, tuple[int, str]] = {}
        self._scheduled = False
        self._children: set[ForkedWrite] = set()
        #: replies waiting for acks (WAIT, a job write's REPLICAS), an ordered set: a
        #: pipeline of REPLICAS pushes leaves thousands, each removed on its own
        self.waiters: dict[AckWait, None] = {}
        self._getack = False  # the next flush asks the followers for acks
        self.full_syncs = 0
        self.partial_syncs_ok = 0
        self.partial_syncs_err = 0

    # ------------------------------------------------------------------ attaching

    def announce(self, session: Session, port: int | None = None, ip: str | None = None) -> None:
        """REPLCONF listening-port / ip-address, kept for the coming PSYNC."""
        for gone in [other for other in self.announced if other.closing]:
            del self.announced[gone]  # announced, then left without a PSYNC
        old_port, old_ip = self.announced.get(session, (0, ""))
        self.announced[session] = (old_port if port is None else port,
                                   old_ip if ip is None else ip)

    def psync(self, session: Session, replid: bytes, offset_text: bytes,
              function_codes: list[bytes], legacy: bool = False) -> Any:
        """PSYNC (or SYNC when `legacy`): the reply, and the sync under way."""
        backlog = self.state.backlog
        self.live()
        self.flush()  # the effects of this turn so far go to the others now, to it below
        port, ip = self.announced.pop(session, (0, ""))
        link = ReplicaLink(session, port, ip or session.addr.rsplit(":", 1)[0])
        wanted = _parse_offset(offset_text) - 1  # Redis asks for the byte after its last
        history = replid.decode(errors="replace")
        if not legacy and wanted >= 0 and (
                history == backlog.replid
                or (history == backlog.replid2 and wanted < backlog.second_offset)):
            data = backlog.bytes_since(wanted)
            if data is not None:
                self.partial_syncs_ok += 1
                link.state = "online"
                link.ack_ms = self.state.clock.monotonic_ms()  # Redis: no false timeout
                self.links[session] = link
                log.info("follower continues from the backlog (partial resync)",
                         extra={"follower": session.addr, "offset": wanted})
                return Encoded(b"+CONTINUE %s\r\n%b" % (backlog.replid.encode(), data))
            self.partial_syncs_err += 1
        elif not legacy and history != "?":
            self.partial_syncs_err += 1
        return self._full_sync(link, function_codes, legacy)

    def _full_sync(self, link: ReplicaLink, function_codes: list[bytes], legacy: bool) -> Any:
        state = self.state
        backlog = state.backlog
        offset = backlog.offset
        path = str(Path(state.config.dir) / f"repl-sync-{os.getpid()}-{link.session.id}.tmp")

        functions = rdbdump.dump(function_codes) if function_codes else None

        def write(check_parent: Callable[[], None]) -> int:
            commands: Iterator[list[bytes]] = snapshot_commands(
                state.dbs, state.clock.now_ms(), state.jobs, functions)
            return write_payload(path, commands, check_parent)

        try:
            child = ForkedWrite.start(write)
        except OSError as exc:
            log.error("cannot fork for a full sync", extra={"error": str(exc)})
            raise CommandError(f"cannot fork for the sync: {exc}") from None
        self.links[link.session] = link  # the stream from `offset` on collects in its buffer
        state.effects.db = -1  # the stream after the payload starts with a SELECT
        self._children.add(child)
        self.full_syncs += 1
        log.info("full sync of a follower", extra={"follower": link.session.addr,
                                                   "offset": offset})
        asyncio.get_running_loop().create_task(self._send_payload(link, child, path))
        if legacy:
            return NO_LINE
        return Encoded(b"+FULLRESYNC %s %d\r\n" % (backlog.replid.encode(), offset))

    async def _send_payload(self, link: ReplicaLink, child: ForkedWrite, path: str) -> None:
        """Wait for the child, send its file and the stream buffered meanwhile."""
        try:
            count = await asyncio.get_running_loop().run_in_executor(None, child.wait)
            if link.session.closing or self.links.get(link.session) is not link:
                return
            link.state = "send_bulk"
            size = os.path.getsize(path)
            link.send(b"$%d\r\n" % size)
            conn = link.session.conn
            with open(path, "rb") as payload:
                while chunk := payload.read(SEND_CHUNK_BYTES):
                    while conn.output_buffer_bytes() > SEND_AHEAD_BYTES:
                        if link.session.closing:
                            return
                        await asyncio.sleep(SEND_WAIT_SECONDS)
                    link.send(chunk)
            link.state = "online"
            link.ack_ms = self.state.clock.monotonic_ms()  # Redis: no false timeout
            link.send(b"".join(link.buffer))
            link.buffer, link.buffered = [], 0
            if self.waiters:  # someone waits for acks: this one may count now
                link.send(GETACK)
            log.info("follower synced", extra={"follower": link.session.addr,
                                               "commands": count, "bytes": size})
        except (OSError, ChildFailed) as exc:
            log.error("full sync failed: dropping the follower",
                      extra={"follower": link.session.addr, "error": str(exc)})
            self.drop(link.session)
        finally:
            self._children.discard(child)
            with contextlib.suppress(OSError):
                os.remove(path)

    def live(self) -> None:
        """Followers attach: the backlog keeps and feeds the stream from now on."""
        backlog = self.state.backlog
        backlog.activate()
        backlog.feed = self._schedule

    # ------------------------------------------------------------------ the stream

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Send the effects of this loop turn to every attached follower, then, if someone
        waits for acks, a GETACK to those online."""
        self._scheduled = False
        data = self.state.backlog.take_unsent()
        if data:
            for session, link in list(self.links.items()):
                if session.closing:
                    del self.links[session]
                elif not link.feed(data):
                    log.warning("follower dropped: its stream buffer overflowed during its "
                                "sync", extra={"follower": session.addr})
                    self.drop(session)
        if self._getack:
            self._getack = False
            for link in self.online_links():
                link.send(GETACK)

    def request_acks(self) -> None:
        """Ask the online followers for their offset at the end of this loop turn (one GETACK
        for all the waits a turn starts, after the effects they wait for)."""
        self._getack = True
        self._schedule()

    def ping(self) -> None:
        """Keep the links alive (Redis' repl-ping-replica-period): a PING in the stream."""
        if self.online_links():
            self.state.backlog.append([b"PING"])

    def drop(self, session: Session) -> None:
        if self.links.pop(session, None) is not None:
            session.conn.abort()

    def drop_all(self) -> None:
        """This server becomes a follower itself: its followers must sync again."""
        for session in list(self.links):
            self.drop(session)
        for child in list(self._children):
            child.kill()

    # ------------------------------------------------------------------ acknowledgements

    def ack(self, session: Session, offset: int) -> None:
        link = self.links.get(session)
        if link is None:
            return
        link.ack_offset = max(link.ack_offset, offset)
        link.ack_ms = self.state.clock.monotonic_ms()
        if self.waiters:
            self._wake_waiters()

    def acked(self, offset: int) -> int:
        """How many online followers acknowledged `offset` or more."""
        return sum(1 for link in self.online_links() if link.ack_offset >= offset)

    def wait(self, replicas: int, timeout_ms: int) -> Any:
        """WAIT: the count now if enough, else a blocking Deferred resolved by the acks or
        by the timeout (0: none). With too few followers attached it waits all the same, as
        Redis' waitCommand does (one may attach meanwhile)."""
        self.flush()
        offset = self.state.backlog.offset
        count = self.acked(offset)
        if count >= replicas:
            return count
        return self.wait_for_acks(offset, replicas, timeout_ms, _count, blocking=True)

    def wait_for_acks(self, offset: int, replicas: int, timeout_ms: int,
                      answer: Callable[[int], Any], blocking: bool) -> Deferred:
        """A reply that resolves with `answer(count)` once `replicas` followers acknowledged
        `offset` (count: those that did), or when `timeout_ms` runs out (0: never). The
        followers are asked for acks at the end of this turn."""
        reply = Deferred(blocking=blocking)
        entry = AckWait(offset, replicas, reply, answer)
        self.waiters[entry] = None
        self.request_acks()
        timer: TimerHandle[Callable[[], None]] | None = None

        def forget() -> None:
            self.waiters.pop(entry, None)
            if timer is not None:
                self.state.timers.cancel(timer)

        reply.on_cancel = forget
        if timeout_ms:
            def expire() -> None:
                forget()
                reply.resolve(answer(self.acked(offset)))

            timer = self.state.timers.schedule(self.state.clock.now_ms() + timeout_ms, expire)
        return reply

    def _wake_waiters(self) -> None:
        """Resolve the waits the acks satisfy, newest first: a connection sends its held
        replies when the oldest resolves, so a pipeline's replies then go out in one write
        (as the WAL releases a batch's)."""
        acked = [link.ack_offset for link in self.online_links()]
        for entry in reversed(list(self.waiters)):
            count = sum(1 for ack_offset in acked if ack_offset >= entry.offset)
            if count >= entry.replicas:
                on_cancel = entry.reply.on_cancel  # forgets the entry and its timer
                if on_cancel is not None:
                    on_cancel()
                entry.reply.resolve(entry.answer(count))

    # ------------------------------------------------------------------ min-replicas

    def good_replicas(self) -> int:
        """Online followers whose last ack is at most `min-replicas-max-lag` seconds old
        (Redis' repl_good_slaves_count, counted when asked rather than once a second)."""
        max_lag = self.state.config.min_replicas_max_lag
        now = self.state.clock.monotonic_ms()
        return sum(1 for link in self.online_links() if (now - link.ack_ms) // 1000 <= max_lag)

    def refuses_writes(self) -> bool:
        """`min-replicas-to-write` is in force and too few followers are good (Redis'
        checkGoodReplicasStatus): writes get `-NOREPLICAS`. Never on a follower, and off
        while either setting is 0."""
        state = self.state
        config = state.config
        wanted = config.min_replicas_to_write
        return (state.follower is None and wanted > 0 and config.min_replicas_max_lag > 0
                and self.good_replicas() < wanted)

    def attached(self) -> int:
        """Followers attached, whether online or still syncing (a syncing one receives the
        stream in its buffer and acknowledges it once loaded)."""
        return sum(1 for session in self.links if not session.closing)

    # ------------------------------------------------------------------ visibility

    def online_links(self) -> list[ReplicaLink]:
        return [link for session, link in self.links.items() if not session.closing
                and link.state == "online"]

    def info_lines(self) -> list[tuple[str, object]]:
        """INFO replication's slaveN lines."""
        now = self.state.clock.monotonic_ms()
        lines: list[tuple[str, object]] = []
        index = 0
        for session, link in list(self.links.items()):
            if session.closing:
                continue
            lag = (now - link.ack_ms) // 1000 if link.ack_ms else 0
            lines.append((f"slave{index}", f"ip={link.ip},port={link.port},state={link.state},"
                                           f"offset={link.ack_offset},lag={lag}"))
            index += 1
        return lines

    def role_entries(self) -> list[list[bytes]]:
        """ROLE's followers: [ip, port, acknowledged offset] each."""
        return [[link.ip.encode(), str(link.port).encode(), str(link.ack_offset).encode()]
                for link in self.online_links()]


#: SYNC's reply: nothing before the payload's `$<length>` line
NO_LINE = Encoded(b"")


def _count(count: int) -> int:
    """WAIT's answer: the count itself."""
    return count


def remove_stale_payloads(data_dir: str) -> None:
    """Payload files a killed server left behind (at start: no sync runs yet)."""
    for path in Path(data_dir).glob("repl-sync-*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()


def _parse_offset(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        return -1
