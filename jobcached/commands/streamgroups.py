"""Stream consumer groups: XGROUP, XREADGROUP (blocking too), XACK, XPENDING, XCLAIM, XAUTOCLAIM.

Groups live in the stream value (`cache.stream.Group`), so they expire, evict, copy and vanish
with the key. Handlers follow Redis 7.0's t_stream.c check by check.

Propagation follows Redis too, so a follower's groups match the leader's: a delivery by
XREADGROUP is propagated as `XCLAIM key group consumer 0 id TIME <ms> RETRYCOUNT <n> FORCE JUSTID
LASTID <id>` (absolute delivery time, the entry's delivery count), the group's new position as
`XGROUP SETID key group <id> ENTRIESREAD <n>`; XCLAIM and XAUTOCLAIM propagate the same XCLAIM
form per entry instead of themselves. Replaying these records runs the same handlers.

Blocking XREADGROUP `>` waits in blocking.py's queues like XREAD, but a served waiter consumes
entries (they move to its PEL), so waiters are served first come first served and a later one
only sees what an earlier one left. A waiter whose group was destroyed gets `-NOGROUP` (XGROUP
DESTROY's write, cache/streams.py, reports the key for that reason), and one whose key is
deleted, renamed or moved gets `-UNBLOCKED` (`watch_deletion`); after XGROUP SETID moves the
group back, waiters are served from the new position by the next XADD, as in Redis 7.0 (SETID
itself wakes nobody).
"""

from __future__ import annotations

import weakref
from typing import Any

from jobcached.cache.stream import MAX_ID, Consumer, Group, Nack, Stream, format_id
from jobcached.cache.streams import watch_dropped
from jobcached.commands import blocking
from jobcached.commands.registry import BLOCKING, FAST, READONLY, WRITE, command
from jobcached.commands.streamargs import (
    XREAD_BLOCKED_DEFAULT_COUNT,
    entries_reply,
    keyed,
    last_valid_id,
    next_id,
    parse_read,
    range_end,
    range_start,
    strict_id,
    to_longlong,
)
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import NULL_ARRAY, Deferred, ErrorReply
from jobcached.server.notify import STREAM, notify
from jobcached.server.session import Session

#: XAUTOCLAIM visits at most COUNT * this many PEL entries per call (Redis' attempts_factor).
AUTOCLAIM_ATTEMPTS_FACTOR = 10
AUTOCLAIM_DEFAULT_COUNT = 100
_LONG_MAX = 2**63 - 1


def nogroup(key: bytes, group: bytes, suffix: str = "") -> CommandError:
    return CommandError(f"No such key '{key.decode(errors='replace')}' or consumer group "
                        f"'{group.decode(errors='replace')}'{suffix}", code="NOGROUP")


def group_of(s: Session, key: bytes, name: bytes, write: bool = True
             ) -> tuple[Stream | None, Group | None]:
    stream = s.keyspace.get_stream(key, write=write)
    return stream, (None if stream is None else stream.groups.get(name))


def propagate_claim(s: Session, key: bytes, gname: bytes, g: Group, sid: int, nack: Nack) -> None:
    """streamPropagateXCLAIM: the NACK's whole state, replayable with FORCE."""
    s.server.effects.cache([b"XCLAIM", key, gname, nack.consumer.name, b"0", format_id(sid),
                        b"TIME", b"%d" % nack.delivery_ms, b"RETRYCOUNT", b"%d" % nack.count,
                        b"FORCE", b"JUSTID", b"LASTID", format_id(g.last_id)], (key,))


def propagate_setid(s: Session, key: bytes, gname: bytes, g: Group) -> None:
    """streamPropagateGroupID."""
    s.server.effects.cache([b"XGROUP", b"SETID", key, gname, format_id(g.last_id), b"ENTRIESREAD",
                        b"%d" % g.entries_read], (key,))


def account(s: Session, key: bytes) -> None:
    """Group state is part of the value's size: re-measure it after a change."""
    s.keyspace.notify_modified(key, 0)


# ------------------------------------------------------------------------------- delivering


def member(s: Session, key: bytes, g: Group, cname: bytes, now: int) -> tuple[Consumer, bool]:
    """The named consumer and whether it is new: created when missing, which Redis reports as
    `xgroup-createconsumer` (XREADGROUP, XCLAIM and XAUTOCLAIM create consumers)."""
    consumer = g.consumers.get(cname)
    if consumer is not None:
        return consumer, False
    consumer = g.consumers[cname] = Consumer(cname, now)
    notify(s.server, STREAM, b"xgroup-createconsumer", key)
    return consumer, True


def reader(s: Session, key: bytes, gname: bytes, g: Group, cname: bytes, now: int) -> Consumer:
    """The reading consumer, seen now; a new one is propagated as XGROUP CREATECONSUMER (Redis'
    streamPropagateConsumerCreation), so followers have it even when it gets nothing pending."""
    consumer, created = member(s, key, g, cname, now)
    if created:
        s.server.effects.cache([b"XGROUP", b"CREATECONSUMER", key, gname, cname], (key,))
    consumer.seen_ms = now
    return consumer


def deliver_new(s: Session, key: bytes, gname: bytes, stream: Stream, g: Group, cname: bytes,
                count: int, noack: bool) -> list[Any]:
    """Entries after the group's last id go to the consumer (its PEL unless NOACK)."""
    now = s.server.clock.now_ms()
    consumer = reader(s, key, gname, g, cname, now)
    entries = stream.after(g.last_id, count)
    for sid, _ in entries:
        stream.advance_group(g, sid)
        if noack:
            continue
        nack = g.pel.get(sid)
        if nack is None:
            nack = g.pel[sid] = Nack(consumer, now, 1)
        else:  # delivered before (SETID moved back): it changes hands
            del nack.consumer.pel[sid]
            nack.consumer, nack.delivery_ms, nack.count = consumer, now, 1
        consumer.pel[sid] = nack
        propagate_claim(s, key, gname, g, sid, nack)
    if entries:
        propagate_setid(s, key, gname, g)
    account(s, key)
    return entries_reply(entries)


def deliver_history(s: Session, key: bytes, gname: bytes, stream: Stream, g: Group,
                    cname: bytes, start: int, count: int) -> list[Any]:
    """The consumer's own pending entries from `start`: delivered again (count and time).
    An entry deleted from the stream since is listed with no fields and left as it was, as in
    Redis (streamReplyWithRangeFromConsumerPEL): nothing is propagated for it either, since
    an XCLAIM of a missing entry drops it from a follower's PEL."""
    now = s.server.clock.now_ms()
    consumer = reader(s, key, gname, g, cname, now)
    out: list[Any] = []
    for sid in list(consumer.pel.irange(start, MAX_ID)):
        if count and len(out) >= count:
            break
        fields = stream.get(sid)
        out.append([format_id(sid), fields])
        if fields is not None:
            nack = consumer.pel[sid]
            nack.delivery_ms = now
            nack.count += 1
            propagate_claim(s, key, gname, g, sid, nack)
    account(s, key)
    return out


@command("XREADGROUP", arity=-7, flags=WRITE | BLOCKING, group="stream", keys=(0, 0, 0))
def xreadgroup(s: Session, argv: list[bytes]) -> Any:
    """XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key
    [key ...] id [id ...]

    Read as a member of a consumer group. `>`: entries never delivered to the group (they join
    the consumer's pending list unless NOACK); an id: the consumer's own pending entries after
    it (history). BLOCK waits for new entries (`>` only).

    Reply: RESP2 an array of [key, entries], RESP3 a map; a null array when nothing came.
    Errors: `NOGROUP No such key ... or consumer group ... in XREADGROUP with GROUP option`;
    `Missing GROUP option for XREADGROUP`; `The $ ID is meaningless in the context of
    XREADGROUP ...`; `Unbalanced XREAD list of streams ...` (XREAD's words, as in Redis);
    `WRONGTYPE`; a blocked client gets `NOGROUP the consumer group this client was blocked on
    no longer exists` when the group is destroyed, `UNBLOCKED the stream key no longer exists`
    when the key is deleted, renamed or moved.
    """
    a = parse_read(argv, with_group=True, from_script=s.script)
    gname, cname, keys, count, noack = a.group, a.consumer, a.keys, a.count, a.noack
    assert gname is not None and cname is not None  # parse_read requires GROUP
    targets: list[tuple[Stream, Group, int | None]] = []  # start None: `>`
    for key, raw in zip(keys, a.ids, strict=True):
        stream, g = group_of(s, key, gname, write=False)
        if stream is None or g is None:
            raise nogroup(key, gname, " in XREADGROUP with GROUP option")
        if raw == b"$":
            raise CommandError(
                "The $ ID is meaningless in the context of XREADGROUP: you want to read the "
                "history of this consumer by specifying a proper ID, or use the > ID to get new "
                "messages. The $ ID would just return an empty result set.")
        targets.append((stream, g, None if raw == b">" else strict_id(raw)))
    found: list[tuple[bytes, Any]] = []
    for key, (stream, g, start) in zip(keys, targets, strict=True):
        if start is not None:
            first = next_id(start)
            found.append((key, deliver_history(s, key, gname, stream, g, cname,
                                               MAX_ID if first is None else first, count)))
        elif len(stream) and last_valid_id(stream) > g.last_id:
            found.append((key, deliver_new(s, key, gname, stream, g, cname, count, noack)))
    if found:
        return keyed(s, found)
    if a.timeout < 0 or not blocking.may_block(s):
        return NULL_ARRAY
    limit = count or XREAD_BLOCKED_DEFAULT_COUNT

    def serve(key: bytes) -> Any:
        value = s.keyspace.lookup_write(key)
        if type(value) is not Stream:
            return ErrorReply.from_exc(CommandError("the stream key no longer exists",
                                                    code="UNBLOCKED"))
        g = value.groups.get(gname)
        if g is None:
            return ErrorReply.from_exc(CommandError(
                "the consumer group this client was blocked on no longer exists", code="NOGROUP"))
        if value.last_id <= g.last_id:
            return blocking.SKIP
        return keyed(s, [(key, deliver_new(s, key, gname, value, g, cname, limit, noack))])

    reply = blocking.block(s, keys, a.timeout, serve, NULL_ARRAY)
    watch_deletion(s, keys, reply)
    return reply


def watch_deletion(s: Session, keys: list[bytes], reply: Deferred) -> None:
    """Wake the waiter when one of its streams is deleted (DEL, overwrite, expiry, eviction,
    FLUSHALL), as Redis' signalDeletedKeyAsReady does, through `streams.watch_dropped`, held
    until the waiter is done."""
    ks = s.keyspace
    refs: list[weakref.ref[Stream]] = []
    for key in keys:
        value = ks.lookup_write(key)
        if type(value) is Stream:
            refs.append(watch_dropped(ks, key, value))
    if refs:
        reply.add_callback(lambda _: refs.clear())


# ------------------------------------------------------------------------------- acknowledging


@command("XACK", arity=-4, flags=WRITE | FAST, group="stream", keys=(1, 1, 1))
def xack(s: Session, argv: list[bytes]) -> int:
    """XACK key group id [id ...]

    Remove entries from the group's pending list (they were processed).

    Reply: integer: entries acknowledged.
    Errors: `Invalid stream ID specified as stream command argument` (nothing acknowledged);
    `WRONGTYPE`.
    """
    key = argv[1]
    _, g = group_of(s, key, argv[2])
    if g is None:
        return 0
    ids = [strict_id(raw) for raw in argv[3:]]
    acked = sum(1 for sid in ids if g.ack(sid))
    if acked:
        account(s, key)
    return acked


@command("XPENDING", arity=-3, flags=READONLY, group="stream", keys=(1, 1, 1))
def xpending(s: Session, argv: list[bytes]) -> Any:
    """XPENDING key group [[IDLE min-idle-time] start end count [consumer]]

    Without a range: a summary (count, smallest and greatest pending id, and per consumer how
    many it has). With one: the pending entries in [start, end], at most count, optionally of
    one consumer and only those idle for at least IDLE milliseconds.

    Reply: summary [count, first, last, [[consumer, count-as-string] ...]] (nils when none);
    extended: array of [id, consumer, idle-ms, deliveries].
    Errors: `NOGROUP No such key ... or consumer group ...`; `syntax error`; `WRONGTYPE`.
    """
    argc = len(argv)
    if argc != 3 and not 6 <= argc <= 9:
        raise SyntaxErr()
    minidle = count = 0
    start = end = 0
    consumer_name = None
    if argc >= 6:
        at = 3
        if argv[3].upper() == b"IDLE":
            minidle = to_longlong(argv[4])
            if argc < 8:
                raise SyntaxErr()
            at = 5
        count = max(to_longlong(argv[at + 2]), 0)
        start = range_start(argv[at])
        end = range_end(argv[at + 1])
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    _, g = group_of(s, argv[1], argv[2], write=False)
    if g is None:
        raise nogroup(argv[1], argv[2])
    if argc == 3:
        if not g.pel:
            return [0, None, None, NULL_ARRAY]
        per = [[name, b"%d" % len(c.pel)] for name, c in sorted(g.consumers.items()) if c.pel]
        return [len(g.pel), format_id(g.pel.peekitem(0)[0]), format_id(g.pel.peekitem(-1)[0]),
                per]
    pel = g.pel
    if consumer_name is not None:
        c = g.consumers.get(consumer_name)
        if c is None:
            return []
        pel = c.pel
    now = s.server.clock.now_ms()
    out: list[Any] = []
    if start > end:
        return out
    for sid in pel.irange(start, end):
        if len(out) >= count:
            break
        nack: Nack = pel[sid]
        if minidle and now - nack.delivery_ms < minidle:
            continue
        out.append([format_id(sid), nack.consumer.name, max(now - nack.delivery_ms, 0),
                    nack.count])
    return out


# ------------------------------------------------------------------------------- claiming


def claim_one(consumer: Consumer, sid: int, nack: Nack, now: int, when: int, retrycount: int,
              justid: bool) -> Nack:
    """Move a pending entry to the consumer and update its counters."""
    consumer.seen_ms = now
    if nack.consumer is not consumer:
        nack.consumer.pel.pop(sid, None)
        consumer.pel[sid] = nack
        nack.consumer = consumer
    nack.delivery_ms = when
    if retrycount >= 0:
        nack.count = retrycount
    elif not justid:
        nack.count += 1
    return nack


def _claim_option(raw: bytes, what: str) -> int:
    try:
        return to_longlong(raw)
    except CommandError:
        raise CommandError(f"Invalid {what} option argument for XCLAIM") from None


@command("XCLAIM", arity=-6, flags=WRITE | FAST, group="stream", keys=(1, 1, 1))
def xclaim(s: Session, argv: list[bytes]) -> Any:
    """XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-ms]
    [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]

    Take pending entries idle for at least min-idle-time over to the consumer. IDLE / TIME set
    their delivery time, RETRYCOUNT their delivery count (else it grows by one, unless JUSTID);
    FORCE creates pending entries for existing entries nobody has; JUSTID replies ids only;
    LASTID moves the group's last id forward. Pending entries whose stream entry was deleted
    are dropped.

    Reply: array of the claimed entries ([id, fields]) or ids (JUSTID).
    Errors: `NOGROUP No such key ... or consumer group ...`; `Invalid min-idle-time argument for
    XCLAIM`; `Unrecognized XCLAIM option '...'`; `WRONGTYPE`.
    """
    key, gname, cname = argv[1], argv[2], argv[3]
    stream, g = group_of(s, key, gname)
    if stream is None or g is None:
        raise nogroup(key, gname)
    try:
        minidle = max(to_longlong(argv[4]), 0)
    except CommandError:
        raise CommandError("Invalid min-idle-time argument for XCLAIM") from None
    ids: list[int] = []
    j = 5
    while j < len(argv):
        try:
            ids.append(strict_id(argv[j]))
        except CommandError:
            break
        j += 1
    now = s.server.clock.now_ms()
    retrycount = when = -1
    force = justid = False
    last_id = 0
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].upper()
        if opt == b"FORCE":
            force = True
        elif opt == b"JUSTID":
            justid = True
        elif opt == b"IDLE" and more:
            j += 1
            when = now - _claim_option(argv[j], "IDLE")
        elif opt == b"TIME" and more:
            j += 1
            when = _claim_option(argv[j], "TIME")
        elif opt == b"RETRYCOUNT" and more:
            j += 1
            retrycount = _claim_option(argv[j], "RETRYCOUNT")
        elif opt == b"LASTID" and more:
            j += 1
            last_id = strict_id(argv[j])
        else:
            raise CommandError(f"Unrecognized XCLAIM option '{argv[j].decode(errors='replace')}'")
        j += 1
    moved_last = last_id > g.last_id
    if moved_last:
        g.last_id = last_id
    if when < 0 or when > now:
        when = now
    out: list[Any] = []
    changed = moved_last
    for sid in ids:
        nack = g.pel.get(sid)
        fields = stream.get(sid)
        if fields is None:
            if nack is not None:
                propagate_claim(s, key, gname, g, sid, nack)
                moved_last = False
                g.ack(sid)
                changed = True
            continue
        if nack is None:
            if not force:
                continue
            consumer = member(s, key, g, cname, now)[0]
            nack = g.pel[sid] = consumer.pel[sid] = Nack(consumer, now, 1)
        elif minidle and now - nack.delivery_ms < minidle:
            continue
        claim_one(member(s, key, g, cname, now)[0], sid, nack, now, when, retrycount, justid)
        out.append(format_id(sid) if justid else [format_id(sid), fields])
        propagate_claim(s, key, gname, g, sid, nack)
        moved_last = False
        changed = True
    if moved_last:
        propagate_setid(s, key, gname, g)
    if changed:
        account(s, key)
    return out


@command("XAUTOCLAIM", arity=-6, flags=WRITE | FAST, group="stream", keys=(1, 1, 1))
def xautoclaim(s: Session, argv: list[bytes]) -> Any:
    """XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]

    XCLAIM over the group's pending list from `start`: up to COUNT (default 100) entries idle
    for at least min-idle-time, visiting at most 10 * COUNT of them; pending entries whose stream
    entry was deleted are dropped and reported.

    Reply: [next start id (0-0 when the scan is complete), claimed entries or ids, deleted ids].
    Errors: `Invalid min-idle-time argument for XAUTOCLAIM`; `COUNT must be > 0`;
    `NOGROUP No such key ... or consumer group ...`; `syntax error`; `WRONGTYPE`.
    """
    key, gname, cname = argv[1], argv[2], argv[3]
    try:
        minidle = max(to_longlong(argv[4]), 0)
    except CommandError:
        raise CommandError("Invalid min-idle-time argument for XAUTOCLAIM") from None
    start = range_start(argv[5])
    count, justid = AUTOCLAIM_DEFAULT_COUNT, False
    j = 6
    while j < len(argv):
        opt = argv[j].upper()
        if opt == b"COUNT" and j + 1 < len(argv):
            try:
                count = to_longlong(argv[j + 1])
            except CommandError:
                raise CommandError("COUNT must be > 0") from None
            if not 1 <= count <= _LONG_MAX // AUTOCLAIM_ATTEMPTS_FACTOR:
                raise CommandError("COUNT must be > 0")
            j += 2
        elif opt == b"JUSTID":
            justid = True
            j += 1
        else:
            raise SyntaxErr()
    stream, g = group_of(s, key, gname)
    if stream is None or g is None:
        raise nogroup(key, gname)
    attempts = count * AUTOCLAIM_ATTEMPTS_FACTOR
    now = s.server.clock.now_ms()
    claimed: list[Any] = []
    deleted: list[bytes] = []
    last_seen = start - 1
    for sid in list(g.pel.irange(start, MAX_ID)):
        if not attempts or not count:
            break
        attempts -= 1
        last_seen = sid
        nack: Nack = g.pel[sid]
        fields = stream.get(sid)
        if fields is None:
            propagate_claim(s, key, gname, g, sid, nack)
            g.ack(sid)
            deleted.append(format_id(sid))
            count -= 1
            continue
        if minidle and now - nack.delivery_ms < minidle:
            continue
        claim_one(member(s, key, g, cname, now)[0], sid, nack, now, now, -1, justid)
        claimed.append(format_id(sid) if justid else [format_id(sid), fields])
        count -= 1
        propagate_claim(s, key, gname, g, sid, nack)
    following = next(iter(g.pel.irange(last_seen + 1, MAX_ID)), None) if last_seen < MAX_ID \
        else None
    if claimed or deleted:
        account(s, key)
    return [format_id(following or 0), claimed, deleted]

