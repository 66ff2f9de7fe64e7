"""Server-assisted client-side caching (Redis' CLIENT TRACKING): who may cache which key.

Theory of operation, as Redis' tracking.c:

- **Default mode.** After a read-only command of a tracking client, the command's keys are
  remembered in the invalidation table (key -> ids of the clients that may hold a copy). When
  a key changes (every write, expiry and eviction reaches `Effects.cache` (server/effects.py) or
  `touch`), each client of its entry gets one invalidation and the entry is dropped: a client
  is told again only after it reads the key again.
- **BCAST mode.** Nothing is remembered. The client subscribes to key prefixes ("" = every
  key); changed keys that start with one are collected per prefix and sent, one message per
  prefix, when the event loop iteration ends (Redis' beforeSleep).
- **OPTIN / OPTOUT.** Keys are remembered only after CLIENT CACHING YES (OPTIN), or except
  after CLIENT CACHING NO (OPTOUT); the flag lasts for the next command (or transaction).
- **NOLOOP.** No invalidation for a key the client changed itself.
- **Bound.** The table holds at most `tracking-table-max-keys` keys (0 = no bound): past it,
  entries are dropped and their clients invalidated as if the keys had changed, so no client
  keeps a copy the server no longer watches. Redis drops random entries; we drop the oldest.
- **Flush.** FLUSHDB and FLUSHALL send every tracking client one invalidation with a null key
  list ("everything") and empty the table. Keys are not per database, as in Redis.

Delivery: a RESP3 client gets the push `invalidate [keys]`. With REDIRECT the target gets it
instead: a push if the target speaks RESP3, else a `message` on `__redis__:invalidate` if it
is subscribed (RESP2 pub/sub), else nothing. A target that has gone is reported to a RESP3
tracking client with the push `tracking-redir-broken <id>`. An invalidation for the client
whose command caused it goes after that command's reply (Redis' tracking_pending_keys).
Everything is written through `Connection.push`, so the output buffer limits apply.

This module does no I/O and knows no command: the command layer feeds it keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobcached.net.replies import Push

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from jobcached.server.session import Session

INVALIDATE_CHANNEL = b"__redis__:invalidate"


@dataclass(eq=False, slots=True)
class ClientTracking:
    """One client's tracking mode (Redis' CLIENT_TRACKING_* flags and redirection)."""

    on: bool = False
    redirect: int = 0
    bcast: bool = False
    optin: bool = False
    optout: bool = False
    noloop: bool = False
    #: CLIENT CACHING YES/NO was given for the next command
    caching: bool = False
    broken_redirect: bool = False
    #: BCAST prefixes this client is subscribed to
    prefixes: set[bytes] = field(default_factory=set)
    #: keys whose table entry names this client, so a disconnect can remove them
    keys: set[bytes] = field(default_factory=set)

    def flags(self) -> list[bytes]:
        """CLIENT TRACKINGINFO's flags, in Redis' order."""
        flags = [b"on" if self.on else b"off"]
        if self.bcast:
            flags.append(b"bcast")
        if self.optin:
            flags.append(b"optin")
            if self.caching:
                flags.append(b"caching-yes")
        if self.optout:
            flags.append(b"optout")
            if self.caching:
                flags.append(b"caching-no")
        if self.noloop:
            flags.append(b"noloop")
        if self.broken_redirect:
            flags.append(b"broken_redirect")
        return flags

    def wants(self) -> bool:
        """Should the keys of the read that just ran be remembered (OPTIN / OPTOUT)?"""
        return not ((self.optin and not self.caching) or (self.optout and self.caching))


@dataclass(eq=False, slots=True)
class _Broadcast:
    """One BCAST prefix: its clients, and the keys changed since the last broadcast, each
    with the client that changed it last (for NOLOOP)."""

    clients: dict[Session, None] = field(default_factory=dict)
    keys: dict[bytes, Session | None] = field(default_factory=dict)


class Tracking:
    """The invalidation table and the BCAST prefix table; see the module docstring."""

    def __init__(self, clients: dict[int, Session]) -> None:
        self.clients = clients
        #: key -> ids of the clients that may cache it (insertion order: oldest first)
        self.table: dict[bytes, set[int]] = {}
        #: ids stored in the whole table (INFO tracking_total_items)
        self.total_items = 0
        self.prefixes: dict[bytes, _Broadcast] = {}
        #: clients in tracking mode (INFO tracking_clients)
        self.tracking_clients = 0
        self.max_keys = 1_000_000
        #: how to run the broadcast at the end of this loop iteration (the app installs
        #: loop.call_soon); None runs it at once
        self.call_soon: Callable[[Callable[[], None]], Any] | None = None
        self._broadcast_scheduled = False

    # ------------------------------------------------------------------ client state

    def enable(self, s: Session, redirect: int, bcast: bool, optin: bool, optout: bool,
               noloop: bool, prefixes: list[bytes]) -> None:
        """CLIENT TRACKING ON with options already checked (enableTracking)."""
        t = s.tracking
        if t is None:
            t = s.tracking = ClientTracking()
        if not t.on:
            self.tracking_clients += 1
        t.on = True
        t.redirect = redirect
        t.broken_redirect = False
        t.bcast, t.optin, t.optout, t.noloop = bcast, optin, optout, noloop
        if bcast:
            for prefix in prefixes or [b""]:
                state = self.prefixes.get(prefix)
                if state is None:
                    state = self.prefixes[prefix] = _Broadcast()
                state.clients[s] = None
                t.prefixes.add(prefix)

    def disable(self, s: Session) -> None:
        """CLIENT TRACKING OFF (disableTracking). Table entries naming the client stay, as in
        Redis: they are skipped while it is off, and used again if it turns tracking back on."""
        t = s.tracking
        if t is None:
            return
        for prefix in t.prefixes:
            state = self.prefixes[prefix]
            del state.clients[s]
            if not state.clients:
                del self.prefixes[prefix]
        t.prefixes.clear()
        if t.on:
            self.tracking_clients -= 1
            t.on = t.bcast = t.optin = t.optout = t.noloop = t.caching = False
            t.broken_redirect = False

    def forget(self, s: Session) -> None:
        """The client disconnected: leave tracking and take its id out of the table."""
        t = s.tracking
        if t is None:
            return
        self.disable(s)
        table = self.table
        for key in t.keys:
            ids = table.get(key)
            if ids is not None and s.id in ids:
                ids.discard(s.id)
                self.total_items -= 1
                if not ids:
                    del table[key]
        t.keys.clear()

    @staticmethod
    def prefix_collision(t: ClientTracking | None, prefixes: list[bytes]) -> str | None:
        """Redis' checkPrefixCollisionsOrReply: the error text when two prefixes (new ones,
        or a new one and one the client has) would both match a key; None when they don't."""
        for i, prefix in enumerate(prefixes):
            for existing in sorted(t.prefixes) if t is not None else ():
                if prefix.startswith(existing) or existing.startswith(prefix):
                    return (f"Prefix '{_text(prefix)}' overlaps with an existing prefix "
                            f"'{_text(existing)}'. Prefixes for a single client must not "
                            "overlap.")
            for other in prefixes[i + 1:]:
                if prefix.startswith(other) or other.startswith(prefix):
                    return (f"Prefix '{_text(prefix)}' overlaps with another provided prefix "
                            f"'{_text(other)}'. Prefixes for a single client must not "
                            "overlap.")
        return None

    # ------------------------------------------------------------------ remembering

    def remember(self, s: Session, keys: Iterable[bytes], current: Session | None) -> None:
        """The keys a read-only command of client s (default mode) just served."""
        t = s.tracking
        assert t is not None
        if not t.wants():
            return
        table = self.table
        client_id = s.id
        for key in keys:
            ids = table.get(key)
            if ids is None:
                ids = table[key] = set()
            if client_id not in ids:
                ids.add(client_id)
                self.total_items += 1
                t.keys.add(key)
        if self.max_keys and len(table) > self.max_keys:
            self._limit(current)

    def _limit(self, current: Session | None) -> None:
        """Drop the oldest entries until the table fits tracking-table-max-keys, telling
        their clients (trackingLimitUsedSlots)."""
        table = self.table
        while len(table) > self.max_keys:
            self.invalidate(next(iter(table)), None, current, bcast=False)

    # ------------------------------------------------------------------ invalidating

    def invalidate(self, key: bytes, by: Session | None, current: Session | None,
                   bcast: bool = True) -> None:
        """Key changed (by client `by`, None for expiry and eviction) while `current` runs a
        command (trackingInvalidateKey). `bcast` False: the key did not change, the table
        only forgets it (the bound), so BCAST clients are not told."""
        if bcast and self.prefixes:
            self._collect_for_broadcast(key, by)
        ids = self.table.pop(key, None)
        if ids is None:
            return
        self.total_items -= len(ids)
        clients = self.clients
        for client_id in ids:
            target = clients.get(client_id)
            if target is None:
                continue
            t = target.tracking
            assert t is not None
            t.keys.discard(key)
            if not t.on or t.bcast or (t.noloop and target is by):
                continue
            self._send(target, [key], later=target is current)

    def invalidate_all(self, current: Session | None) -> None:
        """FLUSHDB / FLUSHALL: a null invalidation ("every key") to every tracking client
        (the flushing one gets it after the reply, as Redis 7.0.15 sends it), and an empty
        table (trackingInvalidateKeysOnFlush)."""
        if self.tracking_clients:
            for target in list(self.clients.values()):
                t = target.tracking
                if t is not None and t.on:
                    self._send(target, None, later=target is current)
        for target in self.clients.values():
            if target.tracking is not None:
                target.tracking.keys.clear()
        self.table.clear()
        self.total_items = 0

    def _collect_for_broadcast(self, key: bytes, by: Session | None) -> None:
        """Note a changed key under each prefix it starts with (trackingRememberKeyToBroadcast)
        and make sure the broadcast runs once this loop iteration is over."""
        for prefix, state in self.prefixes.items():
            if key.startswith(prefix):
                state.keys[key] = by
                if not self._broadcast_scheduled:
                    self._broadcast_scheduled = True
                    if self.call_soon is None:
                        self.broadcast()
                    else:
                        self.call_soon(self.broadcast)

    def broadcast(self) -> None:
        """Send each prefix's changed keys to its clients, in key order, prefix after prefix
        in prefix order; a NOLOOP client is
        not sent the keys it changed last (trackingBroadcastInvalidationMessages)."""
        self._broadcast_scheduled = False
        for _, state in sorted(self.prefixes.items()):  # prefix order, as Redis' radix tree
            if not state.keys:
                continue
            changed = sorted(state.keys.items())
            state.keys = {}
            everything = [key for key, _ in changed]
            for target in list(state.clients):
                t = target.tracking
                assert t is not None
                keys = [key for key, by in changed if by is not target] if t.noloop else \
                    everything
                if keys:
                    self._send(target, keys, later=False)

    def _send(self, target: Session, keys: list[bytes] | None, later: bool) -> None:
        """One invalidation for tracking client `target`, through its redirection if it has
        one (sendTrackingMessage). `later`: target runs the command that caused it, so the
        message goes after that command's reply."""
        t = target.tracking
        assert t is not None
        recipient = target
        redirected_to = False
        if t.redirect:
            redirected = self.clients.get(t.redirect)
            if redirected is None:
                t.broken_redirect = True
                if target.resp3:
                    _push(target, Push([b"tracking-redir-broken", t.redirect]), later)
                return
            recipient = redirected
            redirected_to = True
            later = later and recipient is target
        if recipient.resp3:
            _push(recipient, Push([b"invalidate", keys]), later)
        elif redirected_to and recipient.subscribed:
            _push(recipient, Push([b"message", INVALIDATE_CHANNEL, keys]), later)

    # ------------------------------------------------------------------ INFO

    def info(self) -> dict[str, int]:
        return {"tracking_total_keys": len(self.table),
                "tracking_total_items": self.total_items,
                "tracking_total_prefixes": len(self.prefixes)}


def _push(recipient: Session, message: Push, later: bool) -> None:
    if recipient.closing:
        return
    if later:
        recipient.conn.push_after_reply(message)
    else:
        recipient.conn.push(message)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
