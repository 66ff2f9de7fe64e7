"""Stream argument parsing and reply shapes shared by streams.py and streamgroups.py.

Ids are parsed exactly as Redis 7.0's streamGenericParseIDOrReply does: `ms-seq` or `ms` (with a
default sequence), `-` and `+` where allowed, each part through string2ull, which falls back to
strtoull: so ` 1`, `+1` and `01` are accepted, and `-1` only after the first attempt fails.
"""

from __future__ import annotations

import re
from typing import Any

from jobcached.cache.stream import MAX_ID, SEQ_MASK, Stream, format_id, make_id
from jobcached.commands.args import to_int
from jobcached.errors import CommandError
from jobcached.net.session import Session

INVALID_ID = "Invalid stream ID specified as stream command argument"
MAX_ID_ARG_BYTES = 127  # Redis copies an id argument into a 128-byte buffer
_U64 = 1 << 64
_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_STRING2LL = re.compile(rb"-?[1-9][0-9]*|0")

Entry = tuple[int, tuple[bytes, ...]]


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


def to_longlong(raw: bytes) -> int:
    """getLongLongFromObjectOrReply: `value is not an integer or out of range`."""
    return to_int(raw)


def entry_reply(entry: Entry) -> list[Any]:
    return [format_id(entry[0]), list(entry[1])]


def entries_reply(entries: list[Entry]) -> list[Any]:
    return [[format_id(sid), list(fields)] for sid, fields in entries]


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
    return stream.ids[-1] if stream.ids else 0


__all__ = ["INVALID_ID", "SEQ_MASK", "entries_reply", "entry_reply", "interval_id", "keyed",
           "last_valid_id", "next_id", "parse_id", "prev_id", "strict_id", "to_longlong"]
