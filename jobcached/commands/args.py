"""Reading command arguments: strict numbers and option lists, with Redis' error texts.

Handlers read argv through these helpers so every command rejects `12abc`, ` 12`, `1_000` and
NaN the same way Redis does (string2ll / strtod rules), and so option loops end with a clear
`syntax error` on anything left over (mini-redis' `finish()`).
"""

from __future__ import annotations

import math
import re

from jobcached.errors import NotFloatError, NotIntegerError, SyntaxErr

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_INT_RE = re.compile(rb"-?(0|[1-9][0-9]*)")
_FLOAT_RE = re.compile(rb"[-+]?(inf|infinity|(\d+\.?\d*|\.\d+)(e[-+]?\d+)?)", re.IGNORECASE)


def to_int(raw: bytes, error: type[Exception] = NotIntegerError) -> int:
    """A signed 64-bit integer written exactly as Redis' string2ll accepts it."""
    if len(raw) > 20 or not _INT_RE.fullmatch(raw):
        raise error()
    value = int(raw)
    if not INT64_MIN <= value <= INT64_MAX:
        raise error()
    return value


def to_float(raw: bytes, error: type[Exception] = NotFloatError) -> float:
    """A double as Redis' strtold-based parsing accepts it; NaN is refused."""
    if not _FLOAT_RE.fullmatch(raw):
        raise error()
    value = float(raw)
    if math.isnan(value):
        raise error()
    return value


class Args:
    """A cursor over argv[start:], for option loops."""

    __slots__ = ("argv", "pos")

    def __init__(self, argv: list[bytes], start: int = 1) -> None:
        self.argv = argv
        self.pos = start

    def __bool__(self) -> bool:
        return self.pos < len(self.argv)

    def next(self) -> bytes:
        if self.pos >= len(self.argv):
            raise SyntaxErr()
        value = self.argv[self.pos]
        self.pos += 1
        return value

    def next_upper(self) -> bytes:
        return self.next().upper()

    def next_int(self) -> int:
        return to_int(self.next())

    def rest(self) -> list[bytes]:
        values = self.argv[self.pos :]
        self.pos = len(self.argv)
        return values

    def finish(self) -> None:
        if self.pos < len(self.argv):
            raise SyntaxErr()
