"""Reading command arguments: strict numbers and option lists, with Redis' error texts.

Handlers read argv through these helpers so every command rejects `12abc`, ` 12`, `1_000` and
NaN the same way Redis does (string2ll / strtod rules), and so option loops end with a clear
`syntax error` on anything left over (mini-redis' `finish()`).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from jobcached.errors import CommandError, NotFloatError, NotIntegerError, SyntaxErr

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # a C int, as Redis' getIntFromObjectOrReply reads
_INT_RE = re.compile(rb"0|-?[1-9][0-9]*")
_FLOAT_RE = re.compile(rb"[-+]?(inf|infinity|(\d+\.?\d*|\.\d+)(e[-+]?\d+)?)", re.IGNORECASE)


def subcommand_syntax_error(command: str, name: bytes) -> CommandError:
    """Redis' addReplySubcommandSyntaxError: the subcommand echoed as the client spelled it."""
    text = name.decode("utf-8", "surrogateescape")
    return CommandError(f"unknown subcommand or wrong number of arguments for '{text}'. "
                        f"Try {command} HELP.")


def to_int(raw: bytes, error: type[Exception] = NotIntegerError) -> int:
    """A signed 64-bit integer written exactly as Redis' string2ll accepts it."""
    if 0 < len(raw) < 19 and raw.isdigit() and (raw[0] != 48 or len(raw) == 1):
        return int(raw)  # the common case, a small non-negative number: no regex, no range
    if len(raw) > 20 or not _INT_RE.fullmatch(raw):
        raise error()
    value = int(raw)
    if not INT64_MIN <= value <= INT64_MAX:
        raise error()
    return value


def to_c_int(raw: bytes, error: str | None = None) -> int:
    """A C int as Redis' getIntFromObjectOrReply reads it (database indexes); `error`, when
    given, replaces both of its messages, as its `msg` argument does."""
    try:
        value = to_int(raw)
    except CommandError:
        if error is None:
            raise
        raise CommandError(error) from None
    if not INT_MIN <= value <= INT_MAX:
        raise CommandError(
            error or f"value is out of range, value must between {INT_MIN} and {INT_MAX}")
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


# ---------------------------------------------------------------------------- SCAN arguments

UINT64_MAX = 2**64 - 1
_CURSOR_RE = re.compile(rb"(?:([+-]?)0*([0-9]*))")


def to_cursor(raw: bytes) -> int:
    """A SCAN cursor as Redis reads it with strtoul: `""` is 0, `+5` is 5, `-1` wraps to
    2**64 - 1; spaces, other bytes and values past 64 bits are `ERR invalid cursor`."""
    m = _CURSOR_RE.fullmatch(raw)
    if m is None or (m.group(1) and len(raw) == 1) or len(m.group(2)) > 20:
        raise CommandError("invalid cursor")
    value = int(m.group(2) or b"0")
    if value > UINT64_MAX:
        raise CommandError("invalid cursor")
    return (-value) & UINT64_MAX if m.group(1) == b"-" else value


def scan_options(argv: list[bytes], start: int,
                 allow_type: bool = False) -> tuple[int, bytes | None, bytes | None]:
    """(count, pattern, type) from `[MATCH pattern] [COUNT count] [TYPE type]` at argv[start:],
    as Redis' scanGenericCommand parses them. A lone `*` pattern comes back as None (no
    filter); the type comes back lower-cased (Redis compares it without case)."""
    count, pattern, type_name = 10, None, None
    i, n = start, len(argv)
    while i < n:
        option = argv[i].upper()
        if option == b"COUNT" and i + 1 < n:
            count = to_int(argv[i + 1])
            if count < 1:
                raise SyntaxErr()
        elif option == b"MATCH" and i + 1 < n:
            pattern = None if argv[i + 1] == b"*" else argv[i + 1]
        elif option == b"TYPE" and allow_type and i + 1 < n:
            type_name = argv[i + 1].lower()
        else:
            raise SyntaxErr()
        i += 2
    return count, pattern, type_name


# ------------------------------------------------------------------------------------------------
# C-library number parsing, for the commands whose Redis code calls strtod / strtold / strtoul
# directly (sorted-set scores and ranges, blocking timeouts). These accept what the
# C functions accept, hexadecimal floats (`0x1p3`) included, and reject what Redis rejects.

#: Replies are refused (with an error) rather than built past this many elements; only commands
#: whose reply size is not bounded by stored data need it (SRANDMEMBER with a negative count).
MAX_REPLY_ELEMENTS = 10_000_000
#: Redis' MAX_LONG_DOUBLE_CHARS: string2ld refuses longer input.
MAX_LONG_DOUBLE_CHARS = 5 * 1024
#: x86-64 long double range: strtold reports ERANGE beyond these magnitudes.
_LDBL_MAX = "1.18973149535723176502e4932"
_LDBL_TRUE_MIN = "3.64519953188247460253e-4951"

_C_SPACE = b" \t\n\v\f\r"
_STRTOD_DEC = re.compile(rb"([-+]?)(?:(\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(inf|infinity|nan))",
                         re.IGNORECASE)
_STRTOD_HEX = re.compile(rb"([-+]?)0x([0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[-+]?\d+)?",
                         re.IGNORECASE)


def _strtod(raw: bytes) -> tuple[float, bool] | None:
    """(value, out of range) if the whole of `raw` is one strtod number; None otherwise.

    "Out of range" is strtod's ERANGE case that Redis refuses: a finite literal that overflows to
    infinity, or a non-zero literal that underflows to zero.
    """
    m = _STRTOD_DEC.fullmatch(raw)
    if m is not None:
        value = float(raw)
        if m.group(3) is not None:  # inf / infinity / nan literals
            return value, False
        mantissa = m.group(2)
        huge = math.isinf(value)
        tiny = value == 0.0 and any(48 < c <= 57 for c in mantissa)
        return value, huge or tiny
    m = _STRTOD_HEX.fullmatch(raw)
    if m is None:
        return None
    try:
        value = float.fromhex(raw.decode())
    except OverflowError:
        return (-math.inf if m.group(1) == b"-" else math.inf), True
    tiny = value == 0.0 and any(c not in b"0." for c in m.group(2))
    return value, tiny


def to_double(raw: bytes, error: type[Exception] = NotFloatError) -> float:
    """A double as Redis' getDoubleFromObject reads it (ZADD and ZINCRBY scores): all of strtod's
    syntax, hex included, but no leading space, no NaN, no overflow or underflow."""
    parsed = _strtod(raw) if raw[:1] not in _C_SPACE else None
    if parsed is None or parsed[1] or math.isnan(parsed[0]):
        raise error()
    return parsed[0]


def to_range_double(raw: bytes) -> float | None:
    """One end of a score range as zslParseRange reads it (after any `(`): strtod skips leading
    spaces, an empty string is 0, overflow saturates; None when invalid (NaN, trailing bytes)."""
    if not raw:
        return 0.0
    stripped = raw.lstrip(_C_SPACE)
    parsed = _strtod(stripped) if stripped else None
    if parsed is None or math.isnan(parsed[0]):
        return None
    return parsed[0]


#: Digit strings up to this long are exact doubles: float() reads them as strtod does.
EXACT_DIGITS = 15


def to_weight(raw: bytes) -> float | None:
    """A SORT weight as Redis 7.0 reads it: strtod over the C string (it ends at a NUL byte),
    leading spaces skipped, the empty string is 0; None when bytes are left over, the value is
    NaN, or strtod reports ERANGE (overflow, or underflow to zero)."""
    if raw.isdigit() and len(raw) <= EXACT_DIGITS:
        return float(raw)  # most weights: exact, read by float() as strtod reads them
    raw = raw.split(b"\0", 1)[0]
    if not raw:
        return 0.0
    stripped = raw.lstrip(_C_SPACE)
    parsed = _strtod(stripped) if stripped else None
    if parsed is None or parsed[1] or math.isnan(parsed[0]):
        return None
    return parsed[0]


def to_timeout_ms(raw: bytes) -> int:
    """A blocking command's timeout in seconds, as milliseconds: Redis 7.0's
    getTimeoutFromObjectOrReply(UNIT_SECONDS), quirks included. The number is a long double
    (strtold); `(long long)(seconds * 1000)` truncates toward zero (so 0.0001 means "forever",
    like 0), and a product beyond the 64-bit range turns into LLONG_MIN, i.e. "negative"."""
    bad = "timeout is not a float or out of range"
    if not raw or len(raw) >= MAX_LONG_DOUBLE_CHARS or raw[:1] in _C_SPACE:
        raise CommandError(bad)
    if _STRTOD_DEC.fullmatch(raw):
        try:
            seconds = Decimal(raw.decode())
        except InvalidOperation:
            raise CommandError(bad) from None
    elif _STRTOD_HEX.fullmatch(raw):
        try:
            seconds = Decimal(float.fromhex(raw.decode()))
        except OverflowError:
            seconds = Decimal("-Infinity" if raw[:1] == b"-" else "Infinity")
    else:
        raise CommandError(bad)
    if seconds.is_nan():
        raise CommandError(bad)
    if seconds.is_finite() and seconds != 0 and not (
            Decimal(_LDBL_TRUE_MIN) / 2 < abs(seconds) <= Decimal(_LDBL_MAX)):
        raise CommandError(bad)  # strtold's ERANGE: overflow, or underflow to zero
    millis = seconds * 1000
    if not millis.is_finite() or not INT64_MIN <= millis < 2**63:
        raise CommandError("timeout is negative")  # the C cast gives LLONG_MIN
    ms = int(millis)  # truncates toward zero, as the cast does
    if ms < 0:
        raise CommandError("timeout is negative")
    return ms


def check_reply_size(elements: int) -> None:
    """Refuse to build a reply larger than MAX_REPLY_ELEMENTS (a bound of our own)."""
    if elements > MAX_REPLY_ELEMENTS:
        raise CommandError(f"count is too large: the reply would exceed {MAX_REPLY_ELEMENTS} "
                           "elements")


def to_long_in(raw: bytes, low: int, high: int, message: str | None = None) -> int:
    """An integer within [low, high], as Redis' getRangeLongFromObjectOrReply: `message` (when
    given) is the error for both a non-integer and an out-of-range value."""
    try:
        value = to_int(raw)
    except CommandError:
        if message is None:
            raise
        raise CommandError(message) from None
    if not low <= value <= high:
        raise CommandError(message or f"value is out of range, value must between {low} and "
                                      f"{high}")
    return value


def mpop_args(argv: list[bytes], numkeys_at: int,
              ends: tuple[bytes, bytes]) -> tuple[list[bytes], bytes, int]:
    """(keys, end, count) of `numkeys key [key ...] END [COUNT count]` at argv[numkeys_at:], as
    Redis 7.0 parses LMPOP (ends LEFT / RIGHT) and ZMPOP (MIN / MAX); `end` comes upper-cased,
    count defaults to 1."""
    numkeys = to_long_in(argv[numkeys_at], 1, INT64_MAX, "numkeys should be greater than 0")
    end_at = numkeys_at + numkeys + 1
    if end_at >= len(argv):
        raise SyntaxErr()
    end = argv[end_at].upper()
    if end not in ends:
        raise SyntaxErr()
    count = None
    j = end_at + 1
    while j < len(argv):
        if count is None and argv[j].upper() == b"COUNT" and j + 1 < len(argv):
            count = to_long_in(argv[j + 1], 1, INT64_MAX, "count should be greater than 0")
            j += 2
        else:
            raise SyntaxErr()
    return argv[numkeys_at + 1 : end_at], end, 1 if count is None else count


def to_count(raw: bytes, message: str = "value is out of range, must be positive") -> int:
    """A non-negative count, as Redis' getPositiveLongFromObjectOrReply (LPOP, SPOP, ZPOPMIN)."""
    return to_long_in(raw, 0, INT64_MAX, message)
