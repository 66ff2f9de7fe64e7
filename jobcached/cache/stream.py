"""The stream value: entries ordered by id, packed in nodes, trimmed from the head, read by range.

Theory of operation
-------------------
An id `ms-seq` is one int, `ms << 64 | seq`, wherever ids are passed around: ints compare in id
order. Stored entries are packed, as Redis packs them in listpacks: a stream is a SortedDict of
nodes (first id -> `_Node`), and a node holds up to `stream-node-max-entries` (100) entries or
`stream-node-max-bytes` (4096) bytes as

  - `ms`, `seq`: two arrays of unsigned 64-bit ints, the ids of its live entries, in order;
  - `offsets`: an array of where each live entry starts in `data`;
  - `data`: one bytes object, every entry's fields encoded one after the other: a flag, the
    item lengths (one byte each, or 4 when an item reaches 256 bytes), the items;
  - `names`: the field names of the node's first entry (Redis' master entry). An entry with the
    same names stores only its values; another stores its names too.

An entry costs its 20 bytes of arrays plus its encoding: 43 bytes for two fields of 10 bytes,
where a dict of tuples of bytes objects cost six times that. The tail node's data is replaced
by a new bytes object on each append (a copy bounded by the node's ~4 KB), so every node's data
is exact-size and a read slices values out of it without decoding lengths byte by byte.

Reads find the node by bisection in the SortedDict and the entry by bisection in the node's ids,
then walk on: O(log n + k) for XRANGE, XREAD and trims; point lookups (XCLAIM, the PEL's
entries) are O(log n).

A deleted entry (XDEL, an exact trim inside a node) leaves the arrays; its bytes stay in `data`
until the node goes, as a deleted listpack entry stays in Redis. A node with no live entry left
goes (XDEL), except after a trim inside it, which Redis also leaves in place.

Node boundaries are Redis': `total` counts every entry the node received, `nbytes` estimates
its listpack bytes, and the `~` form of MAXLEN / MINID drops whole nodes only, so approximate
trims remove exactly what Redis removes. The byte estimate follows listpack element sizes only
roughly; entries of a few short fields never reach the byte limit, and for them the boundaries
are exact.

Field-name tuples are shared: nodes whose first entries have the same names (the usual case:
one schema per stream) point to one tuple kept in `_masters`, up to SHARED_NAMES_MAX distinct
tuples per stream; past that a new node has no master and its entries carry their names.

Memory is counted incrementally (`_nbytes`): a node's fixed cost, its entries' array slots and
encoded bytes (garbage included, as it is held), and each shared name tuple once.

Consumer groups (`Group`, `Consumer`, `Nack`) belong to the value, as in Redis: they are copied,
deleted and expired with the key. Every method takes parsed arguments and the current time;
errors that are part of Redis' replies are raised by the command layer.
"""

from __future__ import annotations

import struct as _struct
from array import array
from bisect import bisect_left, bisect_right
from typing import Any

from sortedcontainers import SortedDict

from jobcached.cache.memory import item_size

ID_BITS = 64
SEQ_MASK = (1 << ID_BITS) - 1
MAX_ID = (1 << (2 * ID_BITS)) - 1  # 18446744073709551615-18446744073709551615
NODE_MAX_ENTRIES = 100  # stream-node-max-entries, Redis' default
NODE_MAX_BYTES = 4096  # stream-node-max-bytes, Redis' default
LISTPACK_HEADER_BYTES = 7  # total bytes (4), element count (2), end marker (1)
ENTRY_FIXED_BYTES = 8  # flags, ms and seq deltas, lp-count: small integers of ~2 bytes each
INVALID_READ = -1  # SCG_INVALID_ENTRIES_READ: a group's read counter that is unknown
SHARED_NAMES_MAX = 256  # distinct field-name tuples a stream shares between its nodes

ENTRY_SLOT_BYTES = 20  # per live entry: ms (8) and seq (8) array items, its offset (4)
NAME_TUPLE_BYTES = 56  # a shared name tuple's header and table slot; 8 more per name
NODE_BYTES = 480  # a _Node, its three arrays and data object, its SortedDict key and slots
STREAM_BASE_BYTES = 400  # Stream, its node SortedDict and name table with their first tables
GROUP_BYTES = 400  # a Group with its PEL SortedDict and consumers dict
CONSUMER_BYTES = 300  # a Consumer with its PEL SortedDict
NACK_BYTES = 160  # a Nack object and its slots in the group's and the consumer's PEL

# Entry flags: values only (the node's master names) or names and values, with one-byte or
# 4-byte item lengths.
_MASTER_SHORT, _OWN_SHORT, _MASTER_LONG, _OWN_LONG = 0, 1, 2, 3

Fields = tuple[bytes, ...]  # an entry as added: f1, v1, f2, v2 ...
Entry = tuple[int, list[bytes]]  # an entry as read: a fresh list, ready to be a reply


def make_id(ms: int, seq: int) -> int:
    return (ms << ID_BITS) | seq


def id_ms(sid: int) -> int:
    return sid >> ID_BITS


def format_id(sid: int) -> bytes:
    return b"%d-%d" % (sid >> ID_BITS, sid & SEQ_MASK)


def _lp_element(b: bytes) -> int:
    """Approximate listpack bytes of one string element (encoding, data, back-length)."""
    n = len(b)
    return n + 2 if n < 64 else n + 3 if n < 128 else n + 5


def _lp_elements(items: Fields) -> int:
    """Sum of `_lp_element` over items; one C-level pass when all are short (the usual case)."""
    data = sum(map(len, items))
    if data < 64:  # then every item is shorter than 64 bytes
        return data + 2 * len(items)
    return sum(map(_lp_element, items))


def _encode(fields: Fields, names: Fields | None) -> bytes:
    """An entry's encoding (see the module docstring): values only when its names are the
    node's master `names`, else names and values; one length byte per item when every item
    is shorter than 256 bytes (the usual case), else 4-byte lengths."""
    items = fields[1::2] if names is not None and tuple(fields[::2]) == names else fields
    own = items is fields
    lengths = list(map(len, items))
    if max(lengths, default=0) < 256 and len(items) < 256:
        head = bytes((_OWN_SHORT, len(items), *lengths)) if own else bytes((_MASTER_SHORT,
                                                                            *lengths))
    else:
        head = _struct.pack(f"<BI{len(items)}I", _OWN_LONG if own else _MASTER_LONG, len(items),
                            *lengths)
    return b"".join((head, *items))


class _Node:
    """One listpack node's entries, packed (see the module docstring)."""

    __slots__ = ("data", "first", "last", "ms", "names", "nbytes", "offsets", "seq", "total")

    def __init__(self, first: int, nbytes: int, names: Fields | None) -> None:
        self.first = first  # its key in Stream.nodes: the first id it ever held
        self.last = first  # the last id it ever received (deleted or not)
        self.total = 0
        self.nbytes = nbytes
        self.names = names
        self.ms = array("Q")
        self.seq = array("Q")
        self.offsets = array("I")
        self.data = b""

    @property
    def live(self) -> int:
        return len(self.offsets)

    def id_at(self, i: int) -> int:
        return (self.ms[i] << ID_BITS) | self.seq[i]

    def lower(self, sid: int) -> int:
        """Index of the first live entry with an id >= sid: by ms, then by seq among the
        entries of that ms (C-level bisections over the arrays)."""
        ms = self.ms
        target = sid >> ID_BITS
        i = bisect_left(ms, target)
        j = bisect_right(ms, target, i)
        return bisect_left(self.seq, sid & SEQ_MASK, i, j) if i < j else i

    def upper(self, sid: int) -> int:
        """Index of the first live entry with an id > sid."""
        ms = self.ms
        target = sid >> ID_BITS
        i = bisect_left(ms, target)
        j = bisect_right(ms, target, i)
        return bisect_right(self.seq, sid & SEQ_MASK, i, j) if i < j else i

    def fields_at(self, i: int) -> list[bytes]:
        """Decode the i-th live entry (the hot path of every read: kept to one tight loop)."""
        data = self.data
        pos = self.offsets[i]
        flag = data[pos]
        out: list[bytes] = []
        add = out.append
        if flag == _MASTER_SHORT:
            names = self.names
            assert names is not None
            at = pos + 1 + len(names)
            for name, n in zip(names, data[pos + 1:at], strict=True):
                add(name)
                add(data[at:at + n])
                at += n
            return out
        if flag == _OWN_SHORT:
            count = data[pos + 1]
            at = pos + 2 + count
            lengths: Any = data[pos + 2:at]
        else:
            count = _struct.unpack_from("<I", data, pos + 1)[0]
            at = pos + 5 + 4 * count
            lengths = _struct.unpack_from(f"<{count}I", data, pos + 5)
        if flag == _MASTER_LONG:
            names = self.names
            assert names is not None
            for name, n in zip(names, lengths, strict=True):
                add(name)
                add(data[at:at + n])
                at += n
            return out
        for n in lengths:
            add(data[at:at + n])
            at += n
        return out

    def read(self, indexes: range) -> list[Entry]:
        """The live entries at `indexes`, as (id, fields): `fields_at` inlined for entries
        with the master's names and short values, the usual case, to spare a call each."""
        data, offsets, ms, seq, names = self.data, self.offsets, self.ms, self.seq, self.names
        start = 1 + len(names) if names is not None else 0
        out: list[Entry] = []
        for k in indexes:
            pos = offsets[k]
            if data[pos] == _MASTER_SHORT:
                at = pos + start
                fields: list[bytes] = []
                add = fields.append
                for name, n in zip(names, data[pos + 1:at], strict=True):  # type: ignore[arg-type]
                    add(name)
                    add(data[at:at + n])
                    at += n
            else:
                fields = self.fields_at(k)
            out.append(((ms[k] << ID_BITS) | seq[k], fields))
        return out

    def remove(self, lo: int, hi: int) -> None:
        """Drop live entries lo..hi-1 (their bytes stay in `data`)."""
        del self.ms[lo:hi]
        del self.seq[lo:hi]
        del self.offsets[lo:hi]

    def clone(self) -> _Node:
        dup = _Node(self.first, self.nbytes, self.names)
        dup.last, dup.total = self.last, self.total
        dup.ms, dup.seq, dup.offsets = array("Q", self.ms), array("Q", self.seq), array(
            "I", self.offsets)
        dup.data = self.data
        return dup


class Nack:
    """A pending entry: who has it, when it was last delivered, how many times."""

    __slots__ = ("consumer", "count", "delivery_ms")

    def __init__(self, consumer: Consumer, delivery_ms: int, count: int) -> None:
        self.consumer = consumer
        self.delivery_ms = delivery_ms
        self.count = count


class Consumer:
    """A group's consumer: its name, when it was last seen, its own pending entries."""

    __slots__ = ("name", "pel", "seen_ms")

    def __init__(self, name: bytes, seen_ms: int) -> None:
        self.name = name
        self.seen_ms = seen_ms
        self.pel: SortedDict = SortedDict()  # id -> Nack, shared with the group's PEL


class Group:
    """A consumer group: its last delivered id, read counter, PEL and consumers."""

    __slots__ = ("consumers", "entries_read", "last_id", "pel")

    def __init__(self, last_id: int, entries_read: int) -> None:
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()  # id -> Nack
        self.consumers: dict[bytes, Consumer] = {}

    def consumer(self, name: bytes, now_ms: int, create: bool = True) -> Consumer | None:
        """The named consumer, created when missing (XREADGROUP, XCLAIM create consumers)."""
        c = self.consumers.get(name)
        if c is None and create:
            c = self.consumers[name] = Consumer(name, now_ms)
        return c

    def ack(self, sid: int) -> bool:
        nack = self.pel.pop(sid, None)
        if nack is None:
            return False
        del nack.consumer.pel[sid]
        return True

    def delete_consumer(self, name: bytes) -> int | None:
        """Drop a consumer and its pending entries; how many it had, None if unknown."""
        c = self.consumers.pop(name, None)
        if c is None:
            return None
        for sid in c.pel:
            del self.pel[sid]
        return len(c.pel)


class Stream:
    """A Redis stream; see the module docstring."""

    # __weakref__: blocked XREADGROUP clients learn of the stream's deletion through one
    __slots__ = ("__weakref__", "_len", "_masters", "_nbytes", "_tail", "entries_added",
                 "groups", "last_id", "max_deleted_id", "nodes")

    def __init__(self) -> None:
        self.nodes: SortedDict = SortedDict()  # first id -> _Node
        self._tail: _Node | None = None  # the last node, where entries are appended
        self._len = 0
        self.last_id = 0
        self.max_deleted_id = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}
        self._nbytes = 0  # memory of the nodes and name tuples, kept incrementally
        self._masters: dict[Fields, Fields] = {}  # field-name tuple -> the one nodes share

    # ---- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        # A stream key exists while empty (XDEL, XTRIM never delete it), so it is always true.
        return True

    def first_id(self) -> int:
        """The first live entry's id, 0 when empty."""
        if not self._len:
            return 0
        node: _Node = self.nodes.peekitem(0)[1]
        if not node.live:  # left empty by a trim inside it
            node = next(n for n in self.nodes.values() if n.live)
        return node.id_at(0)

    def last_entry_id(self) -> int:
        """The last live entry's id (streamLastValidID), 0 when empty."""
        if not self._len:
            return 0
        node = self._tail
        if node is None or not node.live:
            node = next(n for n in reversed(self.nodes.values()) if n.live)
        return node.id_at(node.live - 1)

    def _node_of(self, sid: int) -> _Node | None:
        """The node whose id span may hold `sid`."""
        nodes = self.nodes
        i = nodes.bisect_right(sid) - 1
        return None if i < 0 else nodes.peekitem(i)[1]

    def get(self, sid: int) -> list[bytes] | None:
        """The fields of entry `sid`, None if there is none."""
        node = self._node_of(sid)
        if node is None:
            return None
        i = node.lower(sid)
        return node.fields_at(i) if i < node.live and node.id_at(i) == sid else None

    def range(self, lo: int, hi: int, count: int = 0, reverse: bool = False) -> list[Entry]:
        """Entries with lo <= id <= hi in id order (reverse: from hi down), at most `count`
        (0: all)."""
        out: list[Entry] = []
        if lo > hi or not self._len:
            return out
        nodes = self.nodes
        values = nodes.values()
        if reverse:
            at = nodes.bisect_right(hi) - 1
            while at >= 0:
                node: _Node = values[at]
                at -= 1
                end = node.upper(hi)
                start = node.lower(lo)
                if count:
                    start = max(start, end - (count - len(out)))
                out += node.read(range(end - 1, start - 1, -1))
                if start or len(out) == count:  # reached lo, or count
                    break
            return out
        last = len(nodes) - 1
        tail = self._tail
        if tail is not None and lo >= tail.first:  # XREAD / XREADGROUP `>`: new entries
            at, node = last, tail
        else:
            at = max(nodes.bisect_right(lo) - 1, 0)
            node = values[at]
        while True:
            start = node.lower(lo)
            end = node.upper(hi)
            if count:
                end = min(end, start + count - len(out))
            out += node.read(range(start, end))
            if end < node.live or len(out) == count or at == last:  # hi, count, or the end
                return out
            at += 1
            node = values[at]

    def after(self, sid: int, count: int = 0) -> list[Entry]:
        """Entries with an id greater than `sid` (XREAD, XREADGROUP `>`)."""
        if sid >= self.last_id:
            return []
        return self.range(sid + 1, MAX_ID, count)

    # ---- writing ------------------------------------------------------------------------------
    def _new_node(self, sid: int, names: Fields) -> _Node:
        """Start a node at `sid` whose master names are `names` (shared when known)."""
        masters = self._masters
        shared = masters.get(names)
        if shared is None and len(masters) < SHARED_NAMES_MAX:
            shared = masters[names] = names
            self._nbytes += NAME_TUPLE_BYTES + 8 * len(names) + sum(map(item_size, names))
        node = self.nodes[sid] = self._tail = _Node(
            sid, LISTPACK_HEADER_BYTES + _lp_elements(names) + 4, shared)
        self._nbytes += NODE_BYTES
        return node

    def add(self, sid: int, fields: Fields) -> None:
        """Append an entry; `sid` must be greater than `last_id` (the command layer checks)."""
        size = ENTRY_FIXED_BYTES + _lp_elements(fields)
        node = self._tail
        if (node is None or node.total >= NODE_MAX_ENTRIES
                or node.nbytes + size >= NODE_MAX_BYTES):
            node = self._new_node(sid, tuple(fields[::2]))
        encoded = _encode(fields, node.names)
        # A new bytes object per append: a copy of at most ~4 KB (the node's byte limit), which
        # keeps every node's data an exact-size bytes object that reads slice without a copy.
        node.offsets.append(len(node.data))
        node.data += encoded
        node.ms.append(sid >> ID_BITS)
        node.seq.append(sid & SEQ_MASK)
        node.last = sid
        node.total += 1
        node.nbytes += size
        self._len += 1
        self.last_id = sid
        self.entries_added += 1
        self._nbytes += ENTRY_SLOT_BYTES + len(encoded)

    def _drop_node(self, node: _Node) -> None:
        del self.nodes[node.first]
        self._len -= node.live
        self._nbytes -= NODE_BYTES + len(node.data) + ENTRY_SLOT_BYTES * node.live
        if node is self._tail:
            self._tail = self.nodes.peekitem(-1)[1] if self.nodes else None

    def _remove(self, node: _Node, lo: int, hi: int) -> None:
        node.remove(lo, hi)
        self._len -= hi - lo
        self._nbytes -= ENTRY_SLOT_BYTES * (hi - lo)

    def delete(self, sid: int) -> bool:
        """XDEL one id: whether it was there. A node left without entries goes, as in Redis."""
        node = self._node_of(sid)
        if node is None:
            return False
        i = node.lower(sid)
        if i >= node.live or node.id_at(i) != sid:
            return False
        if node.live == 1:
            self._drop_node(node)
        else:
            self._remove(node, i, i + 1)
        if sid > self.max_deleted_id:
            self.max_deleted_id = sid
        return True

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int) -> int:
        """Redis' streamTrim: drop whole head nodes, then (exact only) entries inside the next
        one, until len <= maxlen or the head id >= minid; `limit` (0: none) bounds the entries
        removed by whole nodes. Returns how many entries went."""
        removed = 0
        nodes = self.nodes
        while nodes:
            if maxlen is not None and self._len <= maxlen:
                break
            node: _Node = nodes.peekitem(0)[1]
            live = node.live
            if limit and removed + live > limit:
                break
            # exactly one of maxlen and minid is given
            whole = self._len - live >= maxlen if maxlen is not None else node.last < (minid or 0)
            if whole:
                self._drop_node(node)
                removed += live
                continue
            if approx:
                break
            k = self._len - maxlen if maxlen is not None else node.lower(minid or 0)
            self._remove(node, 0, k)
            removed += k
            break
        return removed

    # ---- memory (memory.py asks for these) ----------------------------------------------------
    def struct_size(self) -> int:
        """Every byte of the value: nodes, entries and group state, in O(groups)."""
        size = STREAM_BASE_BYTES + self._nbytes
        for g in self.groups.values():
            size += GROUP_BYTES + len(g.consumers) * CONSUMER_BYTES + len(g.pel) * NACK_BYTES
        return size

    def payload_size(self) -> int:
        """Zero: `struct_size` already counts the entries (kept incrementally, never walked)."""
        return 0

    def copy(self) -> Stream:
        """COPY: an independent stream with the same entries, counters and groups."""
        dup = Stream()
        for first, node in self.nodes.items():
            dup.nodes[first] = node.clone()
        dup._tail = dup.nodes.peekitem(-1)[1] if dup.nodes else None
        dup._len, dup.last_id, dup.max_deleted_id = self._len, self.last_id, self.max_deleted_id
        dup.entries_added, dup._nbytes = self.entries_added, self._nbytes
        dup._masters = dict(self._masters)  # the same tuples the cloned nodes hold
        for name, g in self.groups.items():
            h = dup.groups[name] = Group(g.last_id, g.entries_read)
            for cname, c in g.consumers.items():
                d = h.consumers[cname] = Consumer(cname, c.seen_ms)
                for sid, nack in c.pel.items():
                    h.pel[sid] = d.pel[sid] = Nack(d, nack.delivery_ms, nack.count)
        return dup

    # ---- consumer-group counters (Redis' t_stream.c, same names) ------------------------------
    def has_tombstones_from(self, start: int) -> bool:
        """streamRangeHasTombstones(start, +): a deleted id at or after `start` may remain."""
        if not self._len or not self.max_deleted_id:
            return False
        if self.first_id() > self.max_deleted_id:
            return False
        return start <= self.max_deleted_id

    def estimate_read(self, sid: int) -> int:
        """streamEstimateDistanceFromFirstEverEntry: the read counter of `sid`, or
        INVALID_READ when it cannot be known (a deletion fragments the range)."""
        if not self.entries_added:
            return 0
        if not self._len and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_READ
        first = self.first_id()
        if not self.max_deleted_id or self.max_deleted_id < first:
            if sid < first:
                return self.entries_added - self._len
            if sid == first:
                return self.entries_added - self._len + 1
        return INVALID_READ

    def lag(self, g: Group) -> int | None:
        """streamReplyWithCGLag: entries the group has not read yet, None when unknown."""
        if not self.entries_added:
            return 0
        if g.entries_read != INVALID_READ and not self.has_tombstones_from(g.last_id):
            return self.entries_added - g.entries_read
        read = self.estimate_read(g.last_id)
        return None if read == INVALID_READ else self.entries_added - read

    def advance_group(self, g: Group, sid: int) -> None:
        """A new entry `sid` was delivered to the group: move last_id and the read counter."""
        if g.entries_read != INVALID_READ and not self.has_tombstones_from(sid):
            g.entries_read += 1
        elif self.entries_added:
            g.entries_read = self.estimate_read(sid)
        g.last_id = sid
