"""Stream commands without consumer groups: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID,
XREAD (blocking too). Groups are in streamgroups.py, XINFO in streaminfo.py.

The value is a `cache.stream.Stream`; handlers follow Redis 7.0's t_stream.c in the order they
check things, so the same bad command gets the same error. Effects are propagated with absolute
ids: XADD `*` (or `ms-*`) is propagated with the id it produced, and an approximate trim (`~`,
LIMIT) as the exact trim it turned out to be (`MAXLEN = <length>` / `MINID = <first id>`), as
Redis rewrites them, so a follower replaying the record ends with the same entries.

Blocking XREAD uses blocking.py: a waiter remembers, per key, the id it wants entries after and
is served (without consuming anything, so every waiter on the key is asked) when XADD's write
(cache/streams.py) reports the key ready. A deleted key does not wake XREAD, as in Redis 7.0.
"""

from __future__ import annotations

from typing import Any

from jobcached.cache.stream import MAX_ID, SEQ_MASK, Stream, format_id, id_ms, make_id
from jobcached.cache.streams import appended
from jobcached.commands import blocking
from jobcached.commands.registry import BLOCKING, DENYOOM, FAST, READONLY, WRITE, command
from jobcached.commands.streamargs import (
    XREAD_BLOCKED_DEFAULT_COUNT,
    entries_reply,
    keyed,
    last_valid_id,
    parse_id,
    parse_read,
    range_end,
    range_start,
    strict_id,
    to_longlong,
)
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import NULL_ARRAY, OK
from jobcached.server.notify import STREAM, notify
from jobcached.server.session import Session

#: Entries removed by one approximate trim without LIMIT: 100 * stream-node-max-entries.
APPROX_TRIM_DEFAULT_LIMIT = 10_000


class TrimArgs:
    """Parsed XADD / XTRIM options (Redis' streamAddTrimArgs)."""

    __slots__ = ("approx", "id", "id_given", "idpos", "limit", "maxlen", "minid", "nomkstream",
                 "seq_given", "strategy_at")

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: int | None = None
        self.approx = False
        self.limit = 0
        self.nomkstream = False
        self.id = 0
        self.id_given = False
        self.seq_given = True
        self.idpos = 0
        self.strategy_at = 0  # argv index of MAXLEN / MINID

    @property
    def trims(self) -> bool:
        return self.maxlen is not None or self.minid is not None


def parse_add_or_trim(argv: list[bytes], xadd: bool) -> TrimArgs:
    """streamParseAddOrTrimArgsOrReply: options, then (XADD) the id; same checks, same order."""
    a = TrimArgs()
    limit: int | None = None
    i = 2
    both = "syntax error, MAXLEN and MINID options at the same time are not compatible"
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = argv[i].upper()
        if xadd and argv[i] == b"*":
            break
        if opt in (b"MAXLEN", b"MINID") and more:
            if a.trims:
                raise CommandError(both)
            a.strategy_at = i
            a.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt in (b"~", b"="):
                a.approx = nxt == b"~"
                i += 1
            if opt == b"MAXLEN":
                maxlen = to_longlong(argv[i + 1])
                if maxlen < 0:
                    raise CommandError("The MAXLEN argument must be >= 0.")
                a.maxlen = maxlen
            else:
                a.minid = strict_id(argv[i + 1])
            i += 2
        elif opt == b"LIMIT" and more:
            limit = to_longlong(argv[i + 1])
            if limit < 0:
                raise CommandError("The LIMIT argument must be >= 0.")
            i += 2
        elif xadd and opt == b"NOMKSTREAM":
            a.nomkstream = True
            i += 1
        elif xadd:
            a.id, a.seq_given = parse_id(argv[i], strict=True, star=True)
            a.id_given = True
            break
        else:
            raise SyntaxErr()
    a.idpos = i
    if limit and not a.trims:
        raise CommandError(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy")
    if not xadd and not a.trims:
        raise CommandError("syntax error, XTRIM must be called with a trimming strategy")
    if limit is not None:
        if not a.approx:
            raise CommandError("syntax error, LIMIT cannot be used without the special ~ option")
        a.limit = limit
    elif a.approx:
        a.limit = APPROX_TRIM_DEFAULT_LIMIT
    return a


_AUTO_ID_ARGS = TrimArgs()
"""`XADD key * ...` (no options): what parse_add_or_trim returns for it, shared (read-only)."""
_AUTO_ID_ARGS.idpos = 2
_AUTO_ID_ARGS.id_given = False


def apply_trim(s: Session, key: bytes, stream: Stream, a: TrimArgs) -> int:
    """Trim as parsed; returns how many entries went."""
    return stream.trim(a.maxlen, a.minid, a.approx, a.limit)


def exact_trim_argv(stream: Stream, a: TrimArgs) -> list[bytes]:
    """The trim as an exact one (what Redis' streamRewriteTrimArgument propagates)."""
    if a.maxlen is not None:
        return [b"MAXLEN", b"=", b"%d" % (len(stream) if a.approx else a.maxlen)]
    first = stream.first_id() if a.approx else a.minid
    return [b"MINID", b"=", format_id(first or 0)]


# ------------------------------------------------------------------------------- adding


@command("XADD", arity=-5, flags=WRITE | DENYOOM | FAST, group="stream", keys=(1, 1, 1))
def xadd(s: Session, argv: list[bytes]) -> Any:
    """XADD key [NOMKSTREAM] [MAXLEN | MINID [= | ~] threshold [LIMIT count]] * | id field value
    [field value ...]

    Append an entry. The id is `*` (the server's clock), `ms-*` (the next sequence of that
    millisecond) or explicit, and must be greater than the stream's last id. NOMKSTREAM: do
    nothing when the key does not exist. MAXLEN / MINID trim after adding: `=` exactly, `~`
    whole nodes only, at most LIMIT entries (default 10000 with `~`).

    Reply: the id added, as a bulk string; nil with NOMKSTREAM and no key.
    Errors: `The ID specified in XADD is equal or smaller than the target stream top item`;
    `The ID specified in XADD must be greater than 0-0`; `Invalid stream ID specified as stream
    command argument`; `The MAXLEN argument must be >= 0.`; `syntax error, LIMIT cannot be used
    without the special ~ option`; `wrong number of arguments`; `WRONGTYPE`.
    """
    key = argv[1]
    a = _AUTO_ID_ARGS if argv[2] == b"*" else parse_add_or_trim(argv, xadd=True)
    field_pos = a.idpos + 1
    nfields = len(argv) - field_pos
    if nfields < 2 or nfields % 2:
        raise CommandError("wrong number of arguments for 'xadd' command")
    if a.id_given and a.seq_given and a.id == 0:
        raise CommandError("The ID specified in XADD must be greater than 0-0")
    ks = s.keyspace
    stream = ks.get_stream(key, write=True)
    created = stream is None
    if stream is None:
        if a.nomkstream:
            return None
        stream = Stream()
    last = stream.last_id
    if last == MAX_ID:
        raise CommandError(
            "The stream has exhausted the last possible ID, unable to add more items")
    if not a.id_given:
        now = s.server.clock.now_ms()
        sid = make_id(now, 0) if now > id_ms(last) else last + 1
    elif not a.seq_given and id_ms(a.id) == id_ms(last):
        if last & SEQ_MASK == SEQ_MASK:
            raise CommandError("The ID specified in XADD is equal or smaller than the target "
                               "stream top item")
        sid = last + 1
    else:
        sid = a.id
    if a.id_given and sid <= last:
        raise CommandError(
            "The ID specified in XADD is equal or smaller than the target stream top item")
    fields = tuple(argv[field_pos:])
    stream.add(sid, fields)
    trimmed = a.trims and apply_trim(s, key, stream, a)
    appended(s.keyspace, key, stream, created)  # stores, and wakes the key's readers
    notify(s.server, STREAM, b"xadd", key)
    if trimmed:
        notify(s.server, STREAM, b"xtrim", key)
    out = [b"XADD", key]
    if a.nomkstream:
        out.append(b"NOMKSTREAM")
    if a.trims:
        out += exact_trim_argv(stream, a)
    added = format_id(sid)
    s.server.effects.cache([*out, added, *fields], (key,))
    return added


# ------------------------------------------------------------------------------- reading


def _range(s: Session, argv: list[bytes], rev: bool) -> Any:
    start_raw, end_raw = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start = range_start(start_raw)
    end = range_end(end_raw)
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].upper() == b"COUNT" and j + 1 < len(argv):
            count = max(to_longlong(argv[j + 1]), 0)
            j += 2
        else:
            raise SyntaxErr()
    stream = s.keyspace.get_stream(argv[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return entries_reply(stream.range(start, end, max(count, 0), rev))


@command("XRANGE", arity=-4, flags=READONLY, group="stream", keys=(1, 1, 1))
def xrange(s: Session, argv: list[bytes]) -> Any:
    """XRANGE key start end [COUNT count]

    Entries with ids between start and end, in id order. `-` and `+` are the smallest and the
    greatest id, `(id` excludes the bound, an id without sequence means its first (start) or last
    (end) sequence.

    Reply: array of [id, [field, value, ...]]; a null array with COUNT 0.
    Errors: `Invalid stream ID specified as stream command argument`; `invalid start ID for the
    interval`; `invalid end ID for the interval`; `syntax error`; `WRONGTYPE`.
    """
    return _range(s, argv, rev=False)


@command("XREVRANGE", arity=-4, flags=READONLY, group="stream", keys=(1, 1, 1))
def xrevrange(s: Session, argv: list[bytes]) -> Any:
    """XREVRANGE key end start [COUNT count]

    As XRANGE, from the greatest id down (note the order of the bounds).

    Reply: array of [id, [field, value, ...]]; a null array with COUNT 0.
    Errors: as XRANGE.
    """
    return _range(s, argv, rev=True)


@command("XLEN", arity=2, flags=READONLY | FAST, group="stream", keys=(1, 1, 1))
def xlen(s: Session, argv: list[bytes]) -> int:
    """XLEN key

    The number of entries in the stream.

    Reply: integer, 0 when the key does not exist.
    Errors: `WRONGTYPE`.
    """
    stream = s.keyspace.get_stream(argv[1])
    return 0 if stream is None else len(stream)


# ------------------------------------------------------------------------------- removing


@command("XDEL", arity=-3, flags=WRITE | FAST, group="stream", keys=(1, 1, 1))
def xdel(s: Session, argv: list[bytes]) -> int:
    """XDEL key id [id ...]

    Delete entries by id. The stream stays, even when empty; its max deleted id is kept for
    consumer-group lag.

    Reply: integer: entries deleted.
    Errors: `Invalid stream ID specified as stream command argument` (nothing is deleted);
    `WRONGTYPE`.
    """
    key = argv[1]
    stream = s.keyspace.get_stream(key, write=True)
    if stream is None:
        return 0
    ids = [strict_id(raw) for raw in argv[2:]]
    deleted = sum(1 for sid in ids if stream.delete(sid))
    if deleted:
        s.keyspace.notify_modified(key, 0)
        notify(s.server, STREAM, b"xdel", key)
    return deleted


@command("XTRIM", arity=-4, flags=WRITE, group="stream", keys=(1, 1, 1))
def xtrim(s: Session, argv: list[bytes]) -> int:
    """XTRIM key MAXLEN | MINID [= | ~] threshold [LIMIT count]

    Trim the stream's head: down to MAXLEN entries, or below the MINID id. `~` removes whole
    nodes only (cheaper, may leave more), at most LIMIT entries (default 10000).

    Reply: integer: entries removed.
    Errors: `syntax error, XTRIM must be called with a trimming strategy`; `syntax error, LIMIT
    cannot be used without the special ~ option`; `The MAXLEN argument must be >= 0.`;
    `Invalid stream ID specified as stream command argument`; `WRONGTYPE`.
    """
    key = argv[1]
    a = parse_add_or_trim(argv, xadd=False)
    stream = s.keyspace.get_stream(key, write=True)
    if stream is None:
        return 0
    deleted = apply_trim(s, key, stream, a)
    if deleted:
        s.keyspace.notify_modified(key, 0)
        s.server.effects.cache([b"XTRIM", key, *exact_trim_argv(stream, a)], (key,))
        notify(s.server, STREAM, b"xtrim", key)
    return deleted


@command("XSETID", arity=-3, flags=WRITE | DENYOOM | FAST, group="stream", keys=(1, 1, 1))
def xsetid(s: Session, argv: list[bytes]) -> Any:
    """XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]

    Set the stream's last generated id (and its added-entries counter and max deleted id), as
    replication and restores need.

    Reply: OK.
    Errors: `no such key`; `The ID specified in XSETID is smaller than the target stream top
    item`; `The ID specified in XSETID is smaller than the provided max_deleted_entry_id`; `The
    entries_added specified in XSETID is smaller than the target stream length`;
    `entries_added must be positive`; `WRONGTYPE`.
    """
    key = argv[1]
    sid = strict_id(argv[2])
    entries_added = -1
    max_deleted = 0
    i = 3
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"ENTRIESADDED" and i + 1 < len(argv):
            entries_added = to_longlong(argv[i + 1])
            if entries_added < 0:
                raise CommandError("entries_added must be positive")
        elif opt == b"MAXDELETEDID" and i + 1 < len(argv):
            max_deleted = strict_id(argv[i + 1])
            if sid < max_deleted:
                raise CommandError("The ID specified in XSETID is smaller than the provided "
                                   "max_deleted_entry_id")
        else:
            raise SyntaxErr()
        i += 2
    stream = s.keyspace.get_stream(key, write=True)
    if stream is None:
        raise CommandError("no such key")
    if len(stream):
        if sid < last_valid_id(stream):
            raise CommandError(
                "The ID specified in XSETID is smaller than the target stream top item")
        if entries_added != -1 and len(stream) > entries_added:
            raise CommandError("The entries_added specified in XSETID is smaller than the "
                               "target stream length")
    stream.last_id = sid
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted:
        stream.max_deleted_id = max_deleted
    s.keyspace.notify_modified(key, 0)  # a change in place: re-measured, and logged
    notify(s.server, STREAM, b"xsetid", key)
    return OK


# ------------------------------------------------------------------------------- XREAD


@command("XREAD", arity=-4, flags=READONLY | BLOCKING, group="stream", keys=(0, 0, 0))
def xread(s: Session, argv: list[bytes]) -> Any:
    """XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]

    Entries with ids greater than the given ones, from each stream that has some. `$` means the
    stream's last id (only entries added from now on). BLOCK waits up to that many
    milliseconds (0: forever) for the first XADD to any of the keys.

    Reply: RESP2 an array of [key, entries], RESP3 a map key -> entries; a null array when
    nothing came (or the timeout expired).
    Errors: `Unbalanced XREAD list of streams: for each stream key an ID or '$' must be
    specified.`; `The > ID can be specified only when calling XREADGROUP ...`; `The GROUP option
    is only supported by XREADGROUP. You called XREAD instead.`; `timeout is negative`;
    `syntax error`; `WRONGTYPE`.
    """
    a = parse_read(argv, with_group=False, from_script=s.script)
    keys, count = a.keys, a.count
    ks = s.keyspace
    after: dict[bytes, int] = {}
    for key, raw in zip(keys, a.ids, strict=True):
        stream = ks.get_stream(key)
        if raw == b"$":
            sid = stream.last_id if stream is not None else 0
        elif raw == b">":
            raise CommandError("The > ID can be specified only when calling XREADGROUP using "
                               "the GROUP <group> <consumer> option.")
        else:
            sid = strict_id(raw)
        after.setdefault(key, sid)
    found: list[tuple[bytes, Any]] = []
    for key in keys:
        stream = ks.get_stream(key)
        if stream is not None and len(stream) and last_valid_id(stream) > after[key]:
            found.append((key, entries_reply(stream.after(after[key], count))))
    if found:
        return keyed(s, found)
    if a.timeout < 0 or not blocking.may_block(s):
        return NULL_ARRAY
    limit = count or XREAD_BLOCKED_DEFAULT_COUNT

    def serve(key: bytes) -> Any:
        value = s.keyspace.lookup_read(key)
        if type(value) is not Stream or value.last_id <= after[key]:
            return blocking.SKIP
        return keyed(s, [(key, entries_reply(value.after(after[key], limit)))])

    return blocking.block(s, keys, a.timeout, serve, NULL_ARRAY)
