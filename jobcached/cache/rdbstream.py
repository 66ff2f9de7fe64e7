"""A stream in Redis 7.0's RDB serialization (RDB_TYPE_STREAM_LISTPACKS_2, and reading the
6.x form STREAM_LISTPACKS), as src/rdb.c saves it and src/t_stream.c lays out its nodes.

    nodes          count; per node: its master id (16 bytes: ms, seq big-endian) and a listpack
    length, last id, first id*, max deleted id*, entries added*     (* only in the 7.0 form)
    groups         count; per group (in name order): name, last id, entries read*,
                   PEL (id, delivery ms, delivery count), consumers (in name order):
                   name, seen ms, their PEL ids

A node's listpack starts with a master entry (live count, deleted count, field count, the
field names, 0), then one record per entry: flags, ms and seq relative to the master id,
either the values alone (flag SAMEFIELDS: the master's names) or a field count and
name/value pairs, and the number of listpack elements of the record.

We keep the node boundaries Redis has (cache/stream.py) but not the deleted entries inside a
node, so a node is written with its live entries only (deleted count 0) and the first live
entry's names as the master fields: a stream never edited by XDEL or XTRIM dumps to
redis-server's bytes, others to the same content in other bytes.
"""

from __future__ import annotations

from jobcached.cache.listpack import lp_build, lp_decode, lp_entry
from jobcached.cache.rdbformat import RdbError, Reader, save_len, save_ms, save_string
from jobcached.cache.stream import (
    ID_BITS,
    INVALID_READ,
    SEQ_MASK,
    Consumer,
    Group,
    Nack,
    Stream,
    make_id,
)

FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2
UINT64_MASK = (1 << 64) - 1
MASTER_TERMINATOR = 0
STREAM_ID_BYTES = 16


def _raw_id(sid: int) -> bytes:
    return (sid >> ID_BITS).to_bytes(8, "big") + (sid & SEQ_MASK).to_bytes(8, "big")


def _save_id(sid: int) -> bytes:
    return save_len(sid >> ID_BITS) + save_len(sid & SEQ_MASK)


# ---- writing ------------------------------------------------------------------------------------
def _node_listpack(master: int, entries: list[tuple[int, list[bytes]]]) -> bytes:
    names = entries[0][1][::2]
    out = [lp_entry(len(entries)), lp_entry(0), lp_entry(len(names))]
    out += [lp_entry(name) for name in names]
    out.append(lp_entry(MASTER_TERMINATOR))
    master_ms, master_seq = master >> ID_BITS, master & SEQ_MASK
    for sid, fields in entries:
        same = fields[::2] == names
        out += [lp_entry(FLAG_SAMEFIELDS if same else 0), lp_entry((sid >> ID_BITS) - master_ms),
                lp_entry((sid & SEQ_MASK) - master_seq)]
        n = len(fields) // 2
        if same:
            out += [lp_entry(v) for v in fields[1::2]]
            out.append(lp_entry(n + 3))
        else:
            out.append(lp_entry(n))
            out += [lp_entry(x) for x in fields]
            out.append(lp_entry(2 * n + 4))
    return lp_build(out)


def dump_stream(s: Stream) -> bytes:
    """rdbSaveObject for a stream (the type byte is the caller's)."""
    nodes = []
    for node in s.nodes.values():
        entries = s.range(node.first, node.last)
        if entries:
            nodes.append((node.first, entries))
    out = [save_len(len(nodes))]
    for master, entries in nodes:
        out += (save_string(_raw_id(master)), save_string(_node_listpack(master, entries)))
    out += (save_len(len(s)), _save_id(s.last_id), _save_id(s.first_id()),
            _save_id(s.max_deleted_id), save_len(s.entries_added), save_len(len(s.groups)))
    for name in sorted(s.groups):
        g = s.groups[name]
        out += (save_string(name), _save_id(g.last_id), save_len(g.entries_read & UINT64_MASK),
                save_len(len(g.pel)))
        for sid, nack in g.pel.items():
            out += (_raw_id(sid), save_ms(nack.delivery_ms), save_len(nack.count))
        out.append(save_len(len(g.consumers)))
        for cname in sorted(g.consumers):
            c = g.consumers[cname]
            out += (save_string(cname), save_ms(c.seen_ms), save_len(len(c.pel)))
            out += [_raw_id(sid) for sid in c.pel]
    return b"".join(out)


# ---- reading ------------------------------------------------------------------------------------
def _read_id(r: Reader) -> int:
    ms = r.length()
    seq = r.length()
    return make_id(ms, seq)


def _raw_id_of(raw: bytes) -> int:
    if len(raw) != STREAM_ID_BYTES:
        raise RdbError("stream id of the wrong size")
    return make_id(int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big"))


def _node_entries(master: int, items: list[bytes]) -> list[tuple[int, tuple[bytes, ...]]]:
    """The live entries of one node's listpack (deleted ones are skipped)."""
    if not items:
        raise RdbError("Empty listpack inside stream")
    pos = 0

    def number() -> int:
        nonlocal pos
        if pos >= len(items):
            raise RdbError("truncated stream node")
        pos += 1
        return int(items[pos - 1])

    def strings(n: int) -> list[bytes]:
        nonlocal pos
        if n < 0 or pos + n > len(items):
            raise RdbError("truncated stream node")
        pos += n
        return items[pos - n:pos]

    try:
        live, deleted, nnames = number(), number(), number()
        names = strings(nnames)
        if number() != MASTER_TERMINATOR:
            raise RdbError("bad master entry")
        out = []
        for _ in range(live + deleted):
            flags, ms_diff, seq_diff = number(), number(), number()
            if flags & FLAG_SAMEFIELDS:
                values = strings(nnames)
                fields = tuple(x for pair in zip(names, values, strict=True) for x in pair)
            else:
                fields = tuple(strings(2 * number()))
            number()  # lp-count: only for walking backwards
            if not flags & FLAG_DELETED:
                ms = (master >> ID_BITS) + ms_diff
                seq = (master & SEQ_MASK) + seq_diff
                if not (0 <= ms <= UINT64_MASK and 0 <= seq <= UINT64_MASK) or not fields:
                    raise RdbError("bad stream entry")
                out.append((make_id(ms, seq), fields))
    except ValueError:
        raise RdbError("bad stream node") from None
    if pos != len(items) or len(out) != live:
        raise RdbError("stream node count mismatch")
    return out


def load_stream(r: Reader, version_2: bool) -> Stream:
    """rdbLoadObject for STREAM_LISTPACKS(_2)."""
    s = Stream()
    for _ in range(r.length()):
        master = _raw_id_of(r.string())
        for sid, fields in _node_entries(master, lp_decode(r.string())):
            if sid <= s.last_id and len(s):
                raise RdbError("stream entries out of order")
            s.add(sid, fields)
    length = r.length()
    last_id = _read_id(r)
    if length != len(s) or (len(s) and last_id < s.last_id):
        raise RdbError("stream length or last id mismatch")
    s.last_id = last_id
    if version_2:
        _read_id(r)  # first id: we know it from the entries
        s.max_deleted_id = _read_id(r)
        s.entries_added = r.length()
    else:
        s.max_deleted_id, s.entries_added = 0, length
    for _ in range(r.length()):
        name = r.string()
        if name in s.groups:
            raise RdbError("Duplicated consumer group name")
        s.groups[name] = _load_group(r, s, version_2)
    return s


def _load_group(r: Reader, s: Stream, version_2: bool) -> Group:
    last_id = _read_id(r)
    if version_2:
        read = r.length()
        entries_read = INVALID_READ if read == UINT64_MASK else read
    else:
        entries_read = s.estimate_read(last_id)
    g = Group(last_id, entries_read)
    for _ in range(r.length()):
        sid = _raw_id_of(r.take(STREAM_ID_BYTES))
        if sid in g.pel:
            raise RdbError("Duplicated global PEL entry loading stream consumer group")
        g.pel[sid] = Nack(None, r.ms(), r.length())  # type: ignore[arg-type]
    for _ in range(r.length()):
        cname = r.string()
        if cname in g.consumers:
            raise RdbError("Duplicate stream consumer detected.")
        c = g.consumers[cname] = Consumer(cname, r.ms())
        for _ in range(r.length()):
            sid = _raw_id_of(r.take(STREAM_ID_BYTES))
            nack = g.pel.get(sid)
            if nack is None or nack.consumer is not None:
                raise RdbError("Consumer PEL NACK not found in group PEL")
            nack.consumer = c
            c.pel[sid] = nack
    if any(nack.consumer is None for nack in g.pel.values()):
        raise RdbError("Stream CG PEL entry without consumer")
    return g
