"""Stream argument parsing and reply shapes shared by streams.py and streamgroups.py.

XREAD and XREADGROUP share one option parser (`parse_read`), as they share xreadCommand in
Redis: the same loop, the same error order, with the group options allowed for XREADGROUP only.
Interval bounds (`range_start`, `range_end`) are shared by XRANGE, XREVRANGE, XPENDING and
XAUTOCLAIM.

Ids are parsed exactly as Redis 7.0's streamGenericParseIDOrReply does: `ms-seq` or `ms` (with a
default sequence), `-` and `+` where allowed, each part through string2ull, which falls back to
strtoull: so ` 1`, `+1` and `01` are accepted, and `-1` only after the first attempt fails.
"""

from __future__ import annotations

import re
from typing import Any

from jobcached.cache.stream import MAX_ID, SEQ_MASK, Stream, format_id, make_id
from jobcached.commands.args import to_int
from jobcached.errors import CommandError, SyntaxErr
from jobcached.server.session import Session

INVALID_ID = "Invalid stream ID specified as stream command argument"
#: Entries a blocked XREAD / XREADGROUP without COUNT gets at once (XREAD_BLOCKED_DEFAULT_COUNT).
XREAD_BLOCKED_DEFAULT_COUNT = 1000
MAX_ID_ARG_BYTES = 127  # Redis copies an id argument into a 128-byte buffer
_U64 = 1 << 64
_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_STRING2LL = re.compile(rb"-?[1-9][0-9]*|0")

Entry = tuple[int, list[bytes]]  # as Stream reads it: the fields list is the entry's own


def _u64(raw: bytes) -> int | None:
    """string2ull: an unsigned 64-bit integer, None when Redis would refuse it."""
    if _STRING2LL.fullmatch(raw) and len(raw) <= 20:
        value = int(raw)
        if -(2**63) <= value < 2**63:
            return None if value < 0 else value
    m = _STRTOULL.fullmatch(raw)
    if m is None:
        return None
    value = int(m.group(2))
    if value >= _U64:
        return None  # ERANGE
    return (_U64 - value) % _U64 if m.group(1) == b"-" else value


def parse_id(raw: bytes, missing_seq: int = 0, strict: bool = False, star: bool = False
             ) -> tuple[int, bool]:
    """(id, seq_given). `strict` refuses `-` and `+`; `star` accepts `ms-*` (seq_given False)."""
    if len(raw) > MAX_ID_ARG_BYTES:
        raise CommandError(INVALID_ID)
    if raw == b"-" or raw == b"+":
        if strict:
            raise CommandError(INVALID_ID)
        return (0 if raw == b"-" else MAX_ID), True
    ms_raw, dash, seq_raw = raw.partition(b"-")
    ms = _u64(ms_raw)
    if ms is None:
        raise CommandError(INVALID_ID)
    if not dash:
        return make_id(ms, missing_seq), True
    if star and seq_raw == b"*":
        return make_id(ms, 0), False
    seq = _u64(seq_raw)
    if seq is None:
        raise CommandError(INVALID_ID)
    return make_id(ms, seq), True


def strict_id(raw: bytes, missing_seq: int = 0) -> int:
    return parse_id(raw, missing_seq, strict=True)[0]


def interval_id(raw: bytes, missing_seq: int) -> tuple[int, bool]:
    """streamParseIntervalIDOrReply: (id, exclusive) for XRANGE / XPENDING bounds."""
    if len(raw) > 1 and raw[:1] == b"(":
        return strict_id(raw[1:], missing_seq), True
    return parse_id(raw, missing_seq)[0], False


def range_start(raw: bytes) -> int:
    """An interval's first id; `(id` excludes it, so the start is the id after it."""
    sid, exclusive = interval_id(raw, 0)
    if exclusive:
        bumped = next_id(sid)
        if bumped is None:
            raise CommandError("invalid start ID for the interval")
        return bumped
    return sid


def range_end(raw: bytes) -> int:
    """An interval's last id; `(id` excludes it, so the end is the id before it."""
    sid, exclusive = interval_id(raw, SEQ_MASK)
    if exclusive:
        lowered = prev_id(sid)
        if lowered is None:
            raise CommandError("invalid end ID for the interval")
        return lowered
    return sid


def to_longlong(raw: bytes) -> int:
    """getLongLongFromObjectOrReply: `value is not an integer or out of range`."""
    return to_int(raw)


def parse_timeout_ms(raw: bytes) -> int:
    """BLOCK's milliseconds, as getTimeoutFromObjectOrReply(UNIT_MILLISECONDS)."""
    try:
        ms = to_longlong(raw)
    except CommandError:
        raise CommandError("timeout is not an integer or out of range") from None
    if ms < 0:
        raise CommandError("timeout is negative")
    return ms


class ReadArgs:
    """Parsed XREAD / XREADGROUP options: `timeout` -1 without BLOCK, `count` 0 without COUNT;
    `group` and `consumer` are None for XREAD."""

    __slots__ = ("consumer", "count", "group", "ids", "keys", "noack", "timeout")

    def __init__(self) -> None:
        self.timeout = -1
        self.count = 0
        self.noack = False
        self.group: bytes | None = None
        self.consumer: bytes | None = None
        self.keys: list[bytes] = []
        self.ids: list[bytes] = []


def parse_read(argv: list[bytes], with_group: bool, from_script: bool = False) -> ReadArgs:
    """xreadCommand's option loop for XREAD (`with_group` False) and XREADGROUP: options up to
    STREAMS, then as many ids as keys. The ids are left raw: `$` and `>` mean different things
    to the two commands, which check them against their keys. A script may not use BLOCK
    (`from_script`: Redis refuses it when it reaches the option, before reading its value)."""
    a = ReadArgs()
    streams_at = 0
    i = 1
    while i < len(argv):
        more = len(argv) - i - 1
        opt = argv[i].upper()
        if opt == b"BLOCK" and more:
            if from_script:
                raise CommandError(f"{argv[0].decode('utf-8', 'surrogateescape')} command is "
                                   f"not allowed with BLOCK option from scripts")
            a.timeout = parse_timeout_ms(argv[i + 1])
            i += 2
        elif opt == b"COUNT" and more:
            a.count = max(to_longlong(argv[i + 1]), 0)
            i += 2
        elif opt == b"STREAMS" and more:
            streams_at = i + 1
            if (len(argv) - streams_at) % 2:
                # Redis 7.0 words it the same for XREADGROUP
                raise CommandError("Unbalanced XREAD list of streams: for each stream key an ID "
                                   "or '$' must be specified.")
            break
        elif opt == b"GROUP" and more >= 2:
            if not with_group:
                raise CommandError("The GROUP option is only supported by XREADGROUP. You "
                                   "called XREAD instead.")
            a.group, a.consumer = argv[i + 1], argv[i + 2]
            i += 3
        elif opt == b"NOACK":
            if not with_group:
                raise CommandError("The NOACK option is only supported by XREADGROUP. You "
                                   "called XREAD instead.")
            a.noack = True
            i += 1
        else:
            raise SyntaxErr()
    if not streams_at:
        raise SyntaxErr()
    if with_group and a.group is None:
        raise CommandError("Missing GROUP option for XREADGROUP")
    n = (len(argv) - streams_at) // 2
    a.keys = argv[streams_at:streams_at + n]
    a.ids = argv[streams_at + n:]
    return a


def entries_reply(entries: list[Entry]) -> list[Any]:
    return [[format_id(sid), fields] for sid, fields in entries]


def keyed(s: Session, pairs: list[tuple[bytes, Any]]) -> Any:
    """XREAD-style replies: RESP3 a map key -> entries, RESP2 an array of [key, entries]."""
    if s.resp3:
        return dict(pairs)
    return [[k, v] for k, v in pairs]


def next_id(sid: int) -> int | None:
    """streamIncrID; None past the last possible id."""
    return None if sid >= MAX_ID else sid + 1


def prev_id(sid: int) -> int | None:
    """streamDecrID; None before 0-0."""
    return None if sid <= 0 else sid - 1


def last_valid_id(stream: Stream) -> int:
    """streamLastValidID: the id of the last entry still present (0 when empty)."""
    return stream.last_entry_id()


__all__ = ["INVALID_ID", "SEQ_MASK", "XREAD_BLOCKED_DEFAULT_COUNT", "ReadArgs", "entries_reply",
           "interval_id", "keyed", "last_valid_id", "next_id", "parse_id",
           "parse_read", "parse_timeout_ms", "prev_id", "range_end", "range_start", "strict_id",
           "to_longlong"]
