"""The asyncio Protocol: thin glue between a transport and the sans-I/O codec.

`data_received` feeds the parser and runs every complete command; the replies of everything
parsed from one read go out in one `write` (pipelining). Flow control, as uvicorn does it: when
a client does not read, its pending output crosses `output-buffer-high-water`, asyncio calls
`pause_writing`, and we stop reading its requests until `resume_writing`; we also stop running
its pipelined commands once one batch of replies crosses that mark, so memory is bounded by
what the client actually sent and read, not by how fast it can write.

Replies wait in order behind a `Deferred` one (a durable write, a blocked command); what waits
there (`_held`) is pending output like the transport's buffer: both count in CLIENT LIST's
`omem`, in the budget of the next batch of commands, and against the client output buffer
limits (`jobcached.net.outlimit`). The codec is the compiled one when it is built
(`jobcached.net.speedups` chooses). Pushes (pub/sub messages) to a blocked client go before the
reply it waits for, as Redis sends them, rather than waiting for it to unblock.

Commands run through the `Execute` function the connection is given (the dispatcher's
`execute`, passed in by `jobcached.app`): the connection knows the session and the wire, not
the command table, so `server/` does not import `commands/`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from jobcached.errors import ProtocolError
from jobcached.net.outlimit import OutputLimiter, output_limit
from jobcached.net.replies import Deferred, ErrorReply, NoReply
from jobcached.net.speedups import RequestParser, encode
from jobcached.server.session import Session
from jobcached.server.state import ServerState

log = logging.getLogger("jobcached.net")

#: runs one command for a session and returns its reply value (commands.dispatch.execute)
Execute = Callable[[Session, list[bytes]], Any]

MAX_CLIENTS_ERROR = b"-ERR max number of clients reached\r\n"
PROTECTED_MODE_ERROR = (
    b"-DENIED jobcached is running in protected mode because protected mode is enabled and no "
    b"password is set. In this mode connections are only accepted from the loopback interface "
    b"and the unix socket. To accept other clients, set a password (requirepass), or disable "
    b"protected mode with 'CONFIG SET protected-mode no' from a local client or "
    b"'--protected-mode no' at startup, after making sure the port is not reachable from "
    b"untrusted networks.\r\n")


def is_local_address(peer: Any) -> bool:
    """True for loopback TCP peers and unix-socket peers (which have no IP address)."""
    if not isinstance(peer, tuple):
        return True
    try:
        ip = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _format_addr(sockname: Any, fallback: str) -> str:
    if isinstance(sockname, tuple):
        host = sockname[0]
        return f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"
    return f"{sockname or fallback}:0"


class RespProtocol(asyncio.Protocol):
    """One client connection; see the module docstring."""

    def __init__(self, server: ServerState, execute: Execute) -> None:
        self.server = server
        self._execute = execute
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.parser: RequestParser | None = None
        self._closing = False
        self._reading_paused = False
        self._writing_paused = False
        self._backlogged = False  # parsed-but-unrun commands wait for the client to read
        #: replies held back behind a Deferred that has not resolved yet (keeps reply order)
        self._held: deque[bytes | Deferred] = deque()
        #: bytes of the encoded replies and pushes in `_held` (part of the pending output)
        self._held_bytes = 0
        self._limiter = OutputLimiter()
        #: a blocking command (BLOCK, WAIT) this client waits on; no commands run meanwhile
        self._blocked_on: Deferred | None = None
        #: the oldest held Deferred not resolved yet: the only one whose resolution can
        #: release replies, so the only one (with a blocking one) that has our callback
        self._waiting_on: Deferred | None = None
        #: while a batch of commands runs: pushes they caused, sent before their reply
        self._pushes: list[bytes] | None = None
        #: while a batch of commands runs: pushes sent after the reply of the command that
        #: caused them (tracking invalidations of the client's own writes)
        self._late_pushes: list[bytes] = []

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport = transport
        server = self.server
        config = server.config
        peer = transport.get_extra_info("peername")
        if len(server.clients) >= config.maxclients:
            server.stats.rejected_connections += 1
            transport.write(MAX_CLIENTS_ERROR)
            transport.close()
            self._closing = True
            return
        server.stats.total_connections_received += 1
        is_unix = not isinstance(peer, tuple)
        laddr = _format_addr(transport.get_extra_info("sockname"), "/unixsocket")
        session = Session(server, self, laddr if is_unix else _format_addr(peer, ""), laddr,
                          is_local_address(peer), unix=is_unix)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            session.fd = sock.fileno()
        if (config.protected_mode and not config.requirepass and not session.is_local
                and not is_unix):
            server.stats.rejected_connections += 1
            server.stats.rejected_protected += 1
            transport.write(PROTECTED_MODE_ERROR)
            transport.close()
            self._closing = True
            return
        self.session = session
        server.clients[session.id] = session
        self.parser = RequestParser(server.parser_limits, authenticated=session.authenticated)
        high = max(config.output_buffer_high_water, 1)
        transport.set_write_buffer_limits(high=high, low=high // 4)

    def data_received(self, data: bytes) -> None:
        if self._closing or self.parser is None:
            return
        self.server.stats.total_net_input_bytes += len(data)
        self.parser.feed(data)
        self._run_commands()

    def eof_received(self) -> bool | None:
        return False  # close our side too, after flushing what is queued

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        for item in self._held:
            if isinstance(item, Deferred):
                item.cancel()
        self._held.clear()
        self._held_bytes = 0
        self._waiting_on = None
        if self._blocked_on is not None:
            self._blocked_on.cancel()
            self._blocked_on = None
        if self.session is not None:
            self.server.clients.pop(self.session.id, None)
            self.session.closing = True
            self.session.unwatch()
            self.session.drop_subscriptions()
            self.session.stop_monitoring()
            self.session.blocked_on = None
            self.server.tracking.forget(self.session)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._resume_reading()
        if self._backlogged:
            self._run_commands()

    # ------------------------------------------------------------------ command loop

    def _run_commands(self) -> None:
        """Run every complete command buffered, reply to all of them with one write."""
        parser = self.parser
        session = self.session
        transport = self.transport
        assert parser is not None and session is not None and transport is not None
        out: list[bytes] = []
        out_bytes = 0
        budget = self.server.config.output_buffer_high_water - self.output_buffer_bytes()
        if budget <= 0 and self._held and parser.buffered_bytes():
            # Replies held behind a pending one already fill the budget: run nothing more
            # until they go out (_flush_held resumes us), or they would grow without bound.
            self._backlogged = True
            self._pause_reading()
            return
        self._backlogged = False
        session.last_interaction_ms = self.server.clock.monotonic_ms()
        pushes: list[bytes] = []
        self._pushes = pushes
        late = self._late_pushes
        gets = parser.gets
        execute = self._execute
        while not self._closing and self._blocked_on is None:
            if late:  # after the previous command's reply, whatever became of it
                out.extend(late)
                out_bytes += sum(map(len, late))
                late.clear()
            try:
                argv = gets()
            except ProtocolError as exc:
                self.server.stats.protocol_errors += 1
                log.info("protocol error", extra={"client": session.addr, "reason": exc.message})
                out.append(encode(ErrorReply(exc.wire), session.resp3))
                self.close_after_reply()
                break
            if argv is None:
                break
            reply = execute(session, argv)
            parser.authenticated = session.authenticated
            if pushes:
                out.extend(pushes)
                out_bytes += sum(map(len, pushes))
                pushes.clear()
            if session.reply_mode != "on" and self._suppress_reply():
                continue
            kind = type(reply)
            if kind is bytes:
                chunk = b"$%d\r\n%b\r\n" % (len(reply), reply)
            elif kind is NoReply:
                continue
            elif kind is Deferred:
                if not reply.done:
                    self._hold(out, reply)
                    out = []
                    continue
                chunk = encode(reply.value, session.resp3)
            else:
                chunk = encode(reply, session.resp3)
            out.append(chunk)
            out_bytes += len(chunk)
            if out_bytes > budget:
                self._backlogged = True  # let the client read before we run more
                break
        self._pushes = None
        if late:
            out.extend(late)
            late.clear()
        if self._held:
            if out:
                self._park(b"".join(out))
            self._flush_held()
            self._enforce_output_limit()
        elif out:
            self._write(b"".join(out) if len(out) > 1 else out[0])
        if self._backlogged and not self._closing:
            self._pause_reading()
            if not self._writing_paused and not self._held:
                # The transport took it all at once: no resume_writing will come, go on soon.
                asyncio.get_running_loop().call_soon(self._resume_backlog)
        elif (not self._closing
              and parser.buffered_bytes() > self.server.config.client_query_buffer_limit):
            self.server.stats.client_query_buffer_limit_disconnections += 1
            log.warning("closing client: query buffer limit", extra={"client": session.addr})
            self.abort()

    def _hold(self, out: list[bytes], deferred: Deferred) -> None:
        """Queue `deferred` (and what precedes it) until it resolves.

        Only the oldest unresolved one gets a callback (and a blocking one, which must
        unblock the connection): replies go out in order, so a later one resolving first can
        release nothing. A pipeline of 50 durable writes then costs one callback and one
        flush, not 50: the WAL resolves a batch newest first, the oldest last."""
        if out:
            self._park(b"".join(out))
        self._held.append(deferred)
        if deferred.blocking:
            self._blocked_on = deferred
            if self.session is not None:
                self.session.blocked_on = deferred
            deferred.add_callback(self._on_resolved)
        elif self._waiting_on is None:
            self._waiting_on = deferred
            deferred.add_callback(self._on_resolved)

    def _on_resolved(self, deferred: Deferred) -> None:
        if self._closing:
            return
        if deferred is self._waiting_on:
            self._waiting_on = None
        self._flush_held()
        if deferred is self._blocked_on:
            self._blocked_on = None
            if self.session is not None:
                self.session.blocked_on = None
            if self.parser is not None and self.parser.buffered_bytes():
                self._run_commands()

    def _flush_held(self) -> None:
        """Write the held replies that are ready, stopping at the first unresolved one."""
        ready: list[bytes] = []
        held = self._held
        resp3 = self.session.resp3 if self.session else False
        while held:
            item = held[0]
            if type(item) is Deferred:
                if not item.done:
                    if self._waiting_on is None and not item.blocking:
                        self._waiting_on = item
                        item.add_callback(self._on_resolved)
                    break
                ready.append(encode(item.value, resp3))
            else:
                ready.append(item)
                self._held_bytes -= len(item)
            held.popleft()
        if ready:
            self._write(b"".join(ready))
            if self._backlogged and not self._writing_paused and not self._closing:
                asyncio.get_running_loop().call_soon(self._resume_backlog)

    def _park(self, data: bytes) -> None:
        """Queue encoded output behind the held replies."""
        self._held.append(data)
        self._held_bytes += len(data)

    def _resume_backlog(self) -> None:
        if self._backlogged and not self._writing_paused and not self._closing:
            self._resume_reading()
            self._run_commands()

    def _suppress_reply(self) -> bool:
        """Apply CLIENT REPLY OFF / SKIP; True if this reply must not be sent."""
        session = self.session
        assert session is not None
        mode = session.reply_mode
        if mode == "skip-next":  # the CLIENT REPLY SKIP command itself just ran
            session.reply_mode = "skip"
            return True
        if mode == "skip":
            session.reply_mode = "on"
            return True
        return mode == "off"

    def _write(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self.server.stats.total_net_output_bytes += len(data)
        transport.write(data)
        self._enforce_output_limit()

    def _enforce_output_limit(self) -> None:
        """Close the client if its pending output breaks its class's limits (outlimit.py)."""
        session = self.session
        if self._closing or session is None:
            return
        pending = self.output_buffer_bytes()
        if not pending and self._limiter.soft_since_ms is None:
            return  # the common case: the socket took everything, nothing to check
        subscribed = bool(session.subscriptions)
        if self._limiter.exceeded(pending, output_limit(self.server.config, subscribed),
                                  self.server.clock.monotonic_ms()):
            self.server.stats.client_output_buffer_limit_disconnections += 1
            log.warning("closing client: output buffer limit",
                        extra={"client": session.addr,
                               "class": "pubsub" if subscribed else "normal",
                               "pending_bytes": pending})
            self.abort()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None and not self._closing:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self._closing:
            self._reading_paused = False
            self.transport.resume_reading()

    # ------------------------------------------------------------------ Connection interface

    def close_after_reply(self) -> None:
        self._closing = True
        if self.transport is not None:
            asyncio.get_running_loop().call_soon(self.transport.close)

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def push(self, value: Any) -> None:
        if self._closing or self.transport is None or self.session is None:
            return
        data = encode(value, self.session.resp3)
        if self._pushes is not None:  # caused by this client's own command: keep reply order
            self._pushes.append(data)
            return
        if not self._held:
            self._write(data)
            return
        blocked = self._blocked_on
        if blocked is not None and self._held[-1] is blocked:
            # A blocked client's reply does not exist yet (Redis has nothing in its buffer):
            # the push goes before it, after the replies of the commands before it.
            self._held.pop()
            self._park(data)
            self._held.append(blocked)
        else:  # replies wait behind a deferred one: queue after them
            self._park(data)
        self._flush_held()
        self._enforce_output_limit()

    def push_after_reply(self, value: Any) -> None:
        if self._pushes is None or self._closing or self.session is None:
            self.push(value)
            return
        self._late_pushes.append(encode(value, self.session.resp3))

    def query_buffer_bytes(self) -> int:
        return self.parser.buffered_bytes() if self.parser else 0

    def output_buffer_bytes(self) -> int:
        """Pending output: what the transport has not sent plus what waits in `_held`."""
        sent_later = self.transport.get_write_buffer_size() if self.transport else 0
        return sent_later + self._held_bytes
