"""Managing and inspecting streams: XGROUP (CREATE, CREATECONSUMER, DELCONSUMER, DESTROY, SETID)
and XINFO (STREAM [FULL], GROUPS, CONSUMERS).

XGROUP checks in Redis 7.0's order: options, then the key (`requires the key to exist` unless
CREATE ... MKSTREAM), then the group. XINFO lists groups and consumers in name order, as Redis'
radix trees do. `radix-tree-nodes` is Redis' internal node count, which we cannot reproduce; we
report the node count plus one (exact for a stream of one node), and say so in SPEC.md.
"""

from __future__ import annotations

from typing import Any

from jobcached.cache.stream import INVALID_READ, Group, Stream, format_id
from jobcached.cache.streams import destroy_group
from jobcached.commands.args import subcommand_syntax_error
from jobcached.commands.registry import DENYOOM, READONLY, WRITE, container, subcommand
from jobcached.commands.streamargs import entries_reply, parse_id, strict_id, to_longlong
from jobcached.commands.streamgroups import account
from jobcached.errors import CommandError
from jobcached.net.replies import OK
from jobcached.server.notify import STREAM, notify
from jobcached.server.session import Session

XINFO_FULL_DEFAULT_COUNT = 10  # entries and PEL items per group/consumer in XINFO STREAM FULL

container("XGROUP", group="stream", summary="Manage the consumer groups of a stream.")
container("XINFO", group="stream", summary="Inspect a stream, its groups and consumers.")


def _entries_read(raw: bytes) -> int:
    value = to_longlong(raw)
    if value < 0 and value != INVALID_READ:
        raise CommandError("value for ENTRIESREAD must be positive or -1")
    return value


def _target(s: Session, argv: list[bytes], may_create: bool, needs_group: bool
            ) -> tuple[Stream | None, Group | None]:
    """The key and group checks every XGROUP subcommand shares."""
    stream = s.keyspace.get_stream(argv[2], write=True)
    if stream is None and not may_create:
        raise CommandError(
            "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want "
            "to use the MKSTREAM option to create an empty stream automatically.")
    g = None if stream is None else stream.groups.get(argv[3])
    if g is None and needs_group:
        raise CommandError(f"No such consumer group '{argv[3].decode(errors='replace')}' for "
                           f"key name '{argv[2].decode(errors='replace')}'", code="NOGROUP")
    return stream, g


@subcommand("XGROUP", "CREATE", arity=-5, flags=WRITE | DENYOOM, keys=(2, 2, 1))
def xgroup_create(s: Session, argv: list[bytes]) -> Any:
    """XGROUP CREATE key group id | $ [MKSTREAM] [ENTRIESREAD entries-read]

    Create a consumer group that will deliver entries after `id` (`$`: the stream's last id).
    MKSTREAM creates an empty stream when the key does not exist. ENTRIESREAD sets the group's
    read counter (for lag).

    Reply: OK.
    Errors: `BUSYGROUP Consumer Group name already exists`; `The XGROUP subcommand requires the
    key to exist ...`; `value for ENTRIESREAD must be positive or -1`; `WRONGTYPE`.
    """
    if len(argv) > 8:
        raise subcommand_syntax_error("XGROUP", argv[1])
    mkstream = False
    entries_read = INVALID_READ
    i = 5
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"MKSTREAM":
            mkstream = True
            i += 1
        elif opt == b"ENTRIESREAD" and i + 1 < len(argv):
            entries_read = _entries_read(argv[i + 1])
            i += 2
        else:
            raise subcommand_syntax_error("XGROUP", argv[1])
    key = argv[2]
    stream, g = _target(s, argv, mkstream, needs_group=False)
    last = 0 if stream is None else stream.last_id
    sid = last if argv[4] == b"$" else strict_id(argv[4])
    if g is not None:
        raise CommandError("Consumer Group name already exists", code="BUSYGROUP")
    created = stream is None
    if stream is None:
        stream = Stream()
    stream.groups[argv[3]] = Group(sid, entries_read)
    if created:
        s.keyspace.set(key, stream)
    else:
        account(s, key)
    # MKSTREAM only when it made the stream: a follower must create it too.
    s.server.effects.cache([*argv[:4], format_id(sid), *((b"MKSTREAM",) if created else ()),
                            b"ENTRIESREAD", b"%d" % entries_read], (key,))
    notify(s.server, STREAM, b"xgroup-create", key)
    return OK


@subcommand("XGROUP", "SETID", arity=-5, flags=WRITE, keys=(2, 2, 1))
def xgroup_setid(s: Session, argv: list[bytes]) -> Any:
    """XGROUP SETID key group id | $ [ENTRIESREAD entries-read]

    Move the group's last delivered id (entries after it will be delivered by `>`).

    Reply: OK.
    Errors: `NOGROUP No such consumer group ...`; `The XGROUP subcommand requires the key to
    exist ...`; `WRONGTYPE`.
    """
    entries_read = INVALID_READ
    if len(argv) == 7:
        if argv[5].upper() != b"ENTRIESREAD":
            raise subcommand_syntax_error("XGROUP", argv[1])
        entries_read = _entries_read(argv[6])
    elif len(argv) != 5:
        raise subcommand_syntax_error("XGROUP", argv[1])
    stream, g = _target(s, argv, False, needs_group=True)
    assert stream is not None and g is not None
    g.last_id = stream.last_id if argv[4] == b"$" else parse_id(argv[4])[0]
    g.entries_read = entries_read
    s.server.effects.cache([*argv[:4], format_id(g.last_id), b"ENTRIESREAD", b"%d" % entries_read],
                       (argv[2],))
    notify(s.server, STREAM, b"xgroup-setid", argv[2])
    return OK


@subcommand("XGROUP", "DESTROY", arity=4, flags=WRITE, keys=(2, 2, 1))
def xgroup_destroy(s: Session, argv: list[bytes]) -> int:
    """XGROUP DESTROY key group

    Delete the group, its consumers and pending entries; clients blocked reading it get
    `NOGROUP`.

    Reply: integer: 1 if the group existed, else 0.
    Errors: `The XGROUP subcommand requires the key to exist ...`; `WRONGTYPE`.
    """
    stream, g = _target(s, argv, False, needs_group=False)
    if stream is None or g is None:
        return 0
    destroy_group(s.keyspace, argv[2], stream, argv[3])  # wakes its readers, to get NOGROUP
    notify(s.server, STREAM, b"xgroup-destroy", argv[2])
    return 1


@subcommand("XGROUP", "CREATECONSUMER", arity=5, flags=WRITE | DENYOOM, keys=(2, 2, 1))
def xgroup_createconsumer(s: Session, argv: list[bytes]) -> int:
    """XGROUP CREATECONSUMER key group consumer

    Create a consumer in the group.

    Reply: integer: 1 if it was created, 0 if it existed.
    Errors: `NOGROUP No such consumer group ...`; `The XGROUP subcommand requires the key to
    exist ...`; `WRONGTYPE`.
    """
    _, g = _target(s, argv, False, needs_group=True)
    assert g is not None
    if argv[4] in g.consumers:
        return 0
    g.consumer(argv[4], s.server.clock.now_ms())
    account(s, argv[2])
    notify(s.server, STREAM, b"xgroup-createconsumer", argv[2])
    return 1


@subcommand("XGROUP", "DELCONSUMER", arity=5, flags=WRITE, keys=(2, 2, 1))
def xgroup_delconsumer(s: Session, argv: list[bytes]) -> int:
    """XGROUP DELCONSUMER key group consumer

    Delete a consumer; its pending entries are dropped from the group.

    Reply: integer: how many pending entries the consumer had (0 if it did not exist).
    Errors: `NOGROUP No such consumer group ...`; `The XGROUP subcommand requires the key to
    exist ...`; `WRONGTYPE`.
    """
    _, g = _target(s, argv, False, needs_group=True)
    assert g is not None
    pending = g.delete_consumer(argv[4])
    if pending is not None:
        account(s, argv[2])
        notify(s.server, STREAM, b"xgroup-delconsumer", argv[2])
    return pending or 0


# ------------------------------------------------------------------------------- XINFO


def _stream_of(s: Session, key: bytes) -> Stream:
    stream = s.keyspace.get_stream(key)
    if stream is None:
        raise CommandError("no such key")
    return stream


def _edge(stream: Stream, last: bool) -> Any:
    if not len(stream):
        return None
    sid = stream.last_entry_id() if last else stream.first_id()
    return [format_id(sid), stream.get(sid)]


def _read_counter(g: Group) -> int | None:
    return None if g.entries_read == INVALID_READ else g.entries_read


@subcommand("XINFO", "STREAM", arity=-3, flags=READONLY, keys=(2, 2, 1))
def xinfo_stream(s: Session, argv: list[bytes]) -> Any:
    """XINFO STREAM key [FULL [COUNT count]]

    The stream's length, counters (last generated id, max deleted id, entries added), groups
    and first and last entries; FULL adds up to COUNT (default 10, 0: all) entries and every
    group with its pending entries and consumers.

    Reply: a map (RESP2: flat array).
    Errors: `no such key`; `unknown subcommand or wrong number of arguments for 'stream'. Try
    XINFO HELP.`; `WRONGTYPE`.
    """
    full = False
    count = XINFO_FULL_DEFAULT_COUNT
    if len(argv) > 3:
        if argv[3].upper() != b"FULL":
            raise subcommand_syntax_error("XINFO", argv[1])
        full = True
        if len(argv) == 6 and argv[4].upper() == b"COUNT":
            count = max(to_longlong(argv[5]), 0)
        elif len(argv) != 4:
            raise subcommand_syntax_error("XINFO", argv[1])
    stream = _stream_of(s, argv[2])
    info: dict[str, Any] = {
        "length": len(stream),
        "radix-tree-keys": len(stream.nodes),
        "radix-tree-nodes": len(stream.nodes) + 1,
        "last-generated-id": format_id(stream.last_id),
        "max-deleted-entry-id": format_id(stream.max_deleted_id),
        "entries-added": stream.entries_added,
        "recorded-first-entry-id": format_id(stream.first_id()),
    }
    if not full:
        info["groups"] = len(stream.groups)
        info["first-entry"] = _edge(stream, last=False)
        info["last-entry"] = _edge(stream, last=True)
        return info
    info["entries"] = entries_reply(stream.range(0, stream.last_id, count))
    groups = []
    for name, g in sorted(stream.groups.items()):
        pel = list(g.pel.items())[:count] if count else list(g.pel.items())
        consumers = []
        for cname, c in sorted(g.consumers.items()):
            cpel = list(c.pel.items())[:count] if count else list(c.pel.items())
            consumers.append({
                "name": cname, "seen-time": c.seen_ms, "pel-count": len(c.pel),
                "pending": [[format_id(sid), n.delivery_ms, n.count] for sid, n in cpel],
            })
        groups.append({
            "name": name, "last-delivered-id": format_id(g.last_id),
            "entries-read": _read_counter(g), "lag": stream.lag(g), "pel-count": len(g.pel),
            "pending": [[format_id(sid), n.consumer.name, n.delivery_ms, n.count]
                        for sid, n in pel],
            "consumers": consumers,
        })
    info["groups"] = groups
    return info


@subcommand("XINFO", "GROUPS", arity=3, flags=READONLY, keys=(2, 2, 1))
def xinfo_groups(s: Session, argv: list[bytes]) -> list[Any]:
    """XINFO GROUPS key

    The stream's consumer groups: name, consumers, pending, last delivered id, entries read and
    lag (nil when it cannot be known after deletions).

    Reply: array of maps (RESP2: flat arrays).
    Errors: `no such key`; `WRONGTYPE`.
    """
    stream = _stream_of(s, argv[2])
    return [{"name": name, "consumers": len(g.consumers), "pending": len(g.pel),
             "last-delivered-id": format_id(g.last_id), "entries-read": _read_counter(g),
             "lag": stream.lag(g)} for name, g in sorted(stream.groups.items())]


@subcommand("XINFO", "CONSUMERS", arity=4, flags=READONLY, keys=(2, 2, 1))
def xinfo_consumers(s: Session, argv: list[bytes]) -> list[Any]:
    """XINFO CONSUMERS key group

    The group's consumers: name, pending entries and idle time (ms since last seen).

    Reply: array of maps (RESP2: flat arrays).
    Errors: `no such key`; `NOGROUP No such consumer group ...`; `WRONGTYPE`.
    """
    stream = _stream_of(s, argv[2])
    g = stream.groups.get(argv[3])
    if g is None:
        raise CommandError(f"No such consumer group '{argv[3].decode(errors='replace')}' for "
                           f"key name '{argv[2].decode(errors='replace')}'", code="NOGROUP")
    now = s.server.clock.now_ms()
    return [{"name": name, "pending": len(c.pel), "idle": max(now - c.seen_ms, 0)}
            for name, c in sorted(g.consumers.items())]

