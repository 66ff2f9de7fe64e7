"""Reply values: what handlers return, before any bytes exist.

Handlers return plain Python values wherever RESP has an obvious one, so they stay readable and
testable without a connection (mini-redis's lesson, reversed: *return* the reply):

    bytes -> bulk string        int -> integer          None -> null
    list/tuple -> array         dict -> map (RESP2: flat array of pairs)
    float -> double (RESP2: bulk string)                 set/frozenset -> set (RESP2: array)
    bool -> boolean (RESP2: integer 1/0)                 str -> bulk string (UTF-8)

The wrappers below cover what plain values cannot say: status lines, errors, verbatim text, push
messages and the RESP2 null array. `resp.encode` turns any of them into bytes for one protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobcached.errors import CommandError


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
