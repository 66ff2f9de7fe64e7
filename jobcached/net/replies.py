"""Reply values: what handlers return, before any bytes exist.

Handlers return plain Python values wherever RESP has an obvious one, so they stay readable and
testable without a connection (mini-redis's lesson, reversed: *return* the reply):

    bytes -> bulk string        int -> integer          None -> null
    list/tuple -> array         dict -> map (RESP2: flat array of pairs)
    float -> double (RESP2: bulk string)                 set/frozenset -> set (RESP2: array)
    bool -> boolean (RESP2: integer 1/0)                 str -> bulk string (UTF-8)

The wrappers below cover what plain values cannot say: status lines, errors, verbatim text, push
messages and the RESP2 null array. `resp.encode` turns any of them into bytes for one protocol.
`Encoded` is the escape hatch for a hot reply a handler formats itself for the session's
protocol (JOB.FETCH's job maps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

from jobcached.errors import CommandError


@dataclass(frozen=True, slots=True)
class Encoded:
    """A reply (or an element of one) already in wire form for the session's protocol."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Simple:
    """A status reply: `+OK`."""

    text: bytes


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error reply: `-CODE message`; used where an error is a value (inside EXEC results)."""

    text: str

    @classmethod
    def from_exc(cls, exc: CommandError) -> ErrorReply:
        return cls(exc.wire)


@dataclass(frozen=True, slots=True)
class Verbatim:
    """RESP3 verbatim string (`=`), e.g. INFO; a bulk string under RESP2."""

    text: bytes
    fmt: bytes = b"txt"


@dataclass(frozen=True, slots=True)
class SetOf:
    """A RESP3 set whose members need not be hashable (COMMAND INFO's key specs are maps);
    an array under RESP2. Plain `set` stays the reply for sets of scalars."""

    items: list[Any]


@dataclass(frozen=True, slots=True)
class Push:
    """An out-of-band message (pub/sub): `>` under RESP3, a plain array under RESP2."""

    items: list[Any]


class _NullArray:
    """The RESP2 null array `*-1` (e.g. a blocking pop that timed out); `_` under RESP3."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


@dataclass(frozen=True, slots=True)
class NoReply:
    """Nothing is written (CLIENT REPLY OFF, QUIT after its +OK was queued...)."""


OK = Simple(b"OK")
PONG = Simple(b"PONG")
QUEUED = Simple(b"QUEUED")
NULL_ARRAY = _NullArray()
NO_REPLY = NoReply()
#: `Deferred.timeout_reply` of a wait CLIENT UNBLOCK may not end (a script, a durable write)
UNBLOCKABLE = object()


#: `Deferred.pending` of a reply whose value is not known before it resolves.
UNKNOWN: Any = object()


@final  # `type(x) is Deferred` tells a reply from written bytes (mypy narrows on it)
class Deferred:
    """A reply not known yet: a blocked command (BLOCK, WAIT), or a write waiting until it is
    as durable as `appendfsync` promises.

    Replies still go out in request order: the connection holds later replies back until this
    one resolves. A `blocking` deferred also stops the connection from running its next
    commands until it resolves, as a blocked Redis client does. `on_cancel` runs if the client
    disconnects first (to unregister a waiter). No event loop is involved, so commands and
    engines can create and resolve these freely.
    """

    __slots__ = ("_callbacks", "blocking", "done", "on_cancel", "pending", "timeout_reply",
                 "value")

    def __init__(self, blocking: bool = False, pending: Any = UNKNOWN) -> None:
        self.blocking = blocking
        self.done = False
        self.value: Any = None
        #: the value it will resolve with, when that is known from the start (a write
        #: waiting to be durable): a script, which cannot wait in the middle, takes it at
        #: once and waits once, at its end (commands/scripting.py)
        self.pending = pending
        self.on_cancel: Callable[[], None] | None = None
        #: what the command answers when its timeout fires: CLIENT UNBLOCK ... TIMEOUT
        #: answers it early; UNBLOCKABLE for a wait CLIENT UNBLOCK may not end
        self.timeout_reply: Any = UNBLOCKABLE
        self._callbacks: list[Callable[[Deferred], None]] = []

    def resolve(self, value: Any) -> None:
        if self.done:
            return
        self.done = True
        self.value = value
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def add_callback(self, callback: Callable[[Deferred], None]) -> None:
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def resolve_with(self, value: Any) -> None:
        """Resolve with `value`, or, if it is a Deferred itself (a write still waiting to be
        durable), with its value once it has one."""
        if isinstance(value, Deferred):
            value.add_callback(lambda done: self.resolve(done.value))
        else:
            self.resolve(value)

    def interrupt(self, value: Any) -> None:
        """CLIENT UNBLOCK: stop waiting (the owner unregisters through `on_cancel`) and
        answer `value` now."""
        on_cancel, self.on_cancel = self.on_cancel, None
        if not self.done and on_cancel is not None:
            on_cancel()
        self.resolve(value)

    def cancel(self) -> None:
        """The client went away: forget the callbacks, tell the owner."""
        self._callbacks = []
        if not self.done and self.on_cancel is not None:
            self.on_cancel()
        self.done = True
