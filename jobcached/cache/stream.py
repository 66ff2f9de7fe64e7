"""The stream value: entries ordered by id, trimmed from the head, read by range.

Theory of operation
-------------------
An id `ms-seq` is packed into one int, `ms << 64 | seq`: ints compare in id order, hash fast and
cost one object, where a tuple would cost three. Entries live in two structures that share those
int objects:

  - `entries`, a dict id -> fields (a flat tuple `f1, v1, f2, v2 ...`): O(1) lookup for XCLAIM,
    XDEL and XPENDING's pending entries;
  - `ids`, a sortedcontainers SortedList of the ids: O(log n) bisect for the first id of a range,
    then O(k) slicing, so XRANGE, XREAD and trims cost O(log n + k).

Nodes. Redis keeps entries in listpack nodes of at most `stream-node-max-entries` (100) entries
or `stream-node-max-bytes` (4096) bytes, and the `~` form of MAXLEN / MINID only drops *whole*
nodes; which entries survive `XTRIM s MAXLEN ~ 10` therefore depends on node boundaries. We keep
the same boundaries as light bookkeeping (`_Node`: first id, last id, live and total counts, an
estimate of its listpack bytes) so approximate trims remove exactly what Redis removes. The byte
estimate follows the listpack element sizes only roughly; entries of a few short fields never
reach the byte limit, and for them the boundaries are exact.

Field names. Entries of one stream usually repeat the same field names; Redis stores them once
per node (the "master entry"). We keep one object per distinct name (up to SHARED_NAMES_MAX per
stream, enough for any schema, bounded against streams of random names) and every entry points
to it, which saves a bytes object per field of every entry. Memory is counted to match: a
shared name once, in the table; an entry's values and its unshared names with the entry.

Consumer groups (`Group`, `Consumer`, `Nack`) belong to the value, as in Redis: they are copied,
deleted and expired with the key. Every method takes parsed arguments and the current time;
errors that are part of Redis' replies are raised by the command layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from sortedcontainers import SortedDict, SortedList

from jobcached.cache.memory import item_size

ID_BITS = 64
SEQ_MASK = (1 << ID_BITS) - 1
MAX_ID = (1 << (2 * ID_BITS)) - 1  # 18446744073709551615-18446744073709551615
NODE_MAX_ENTRIES = 100  # stream-node-max-entries, Redis' default
NODE_MAX_BYTES = 4096  # stream-node-max-bytes, Redis' default
LISTPACK_HEADER_BYTES = 7  # total bytes (4), element count (2), end marker (1)
ENTRY_FIXED_BYTES = 8  # flags, ms and seq deltas, lp-count: small integers of ~2 bytes each
INVALID_READ = -1  # SCG_INVALID_ENTRIES_READ: a group's read counter that is unknown
SHARED_NAMES_MAX = 256  # distinct field names a stream shares between its entries (see below)
SHARED_NAME_SLOT_BYTES = 80  # a shared name's slot in the name table (dict entry and index)

ENTRY_OBJECT_BYTES = 144  # per entry: the id int (48), its SortedList slot and dict slot
STREAM_BASE_BYTES = 720  # Stream, its dict, SortedList and node index with their first tables
GROUP_BYTES = 400  # a Group with its PEL SortedDict and consumers dict
CONSUMER_BYTES = 300  # a Consumer with its PEL SortedDict
NACK_BYTES = 160  # a Nack object and its slots in the group's and the consumer's PEL


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


def _lp_elements(items: tuple[bytes, ...]) -> int:
    """Sum of `_lp_element` over items; one C-level pass when all are short (the usual case)."""
    data = sum(map(len, items))
    if data < 64:  # then every item is shorter than 64 bytes
        return data + 2 * len(items)
    return sum(map(_lp_element, items))


class _Node:
    """One listpack node as Redis would have it: only what approximate trimming needs."""

    __slots__ = ("first", "last", "live", "nbytes", "total")

    def __init__(self, first: int, nbytes: int) -> None:
        self.first = first
        self.last = first
        self.live = 0
        self.total = 0
        self.nbytes = nbytes


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
    __slots__ = ("__weakref__", "_names", "_nbytes", "_tail", "entries", "entries_added",
                 "groups", "ids", "last_id", "max_deleted_id", "nodes")

    def __init__(self) -> None:
        self.entries: dict[int, tuple[bytes, ...]] = {}
        self.ids: SortedList = SortedList()
        self.nodes: SortedDict = SortedDict()  # first id -> _Node
        self._tail: _Node | None = None  # the last node, where entries are appended
        self.last_id = 0
        self.max_deleted_id = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}
        self._nbytes = 0  # payload bytes of the fields (memory.item_size), kept incrementally
        self._names: dict[bytes, bytes] = {}  # field name -> the one object entries share

    # ---- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        # A stream key exists while empty (XDEL, XTRIM never delete it), so it is always true.
        return True

    def first_id(self) -> int:
        return self.ids[0] if self.ids else 0

    def range(self, lo: int, hi: int, count: int = 0, reverse: bool = False
              ) -> list[tuple[int, tuple[bytes, ...]]]:
        """Entries with lo <= id <= hi in id order (reverse: from hi down), at most `count`
        (0: all)."""
        if lo > hi:
            return []
        ids = self.ids
        it: Iterator[int] = ids.irange(lo, hi, reverse=reverse)
        if count:
            it = islice(it, count)
        entries = self.entries
        return [(sid, entries[sid]) for sid in it]

    def after(self, sid: int, count: int = 0) -> list[tuple[int, tuple[bytes, ...]]]:
        """Entries with an id greater than `sid` (XREAD, XREADGROUP `>`)."""
        if sid >= self.last_id:
            return []
        return self.range(sid + 1, MAX_ID, count)

    # ---- writing ------------------------------------------------------------------------------
    def _share_names(self, fields: tuple[bytes, ...]) -> tuple[tuple[bytes, ...], int]:
        """The entry with its field names replaced by the stream's shared name objects, and its
        payload bytes (values, plus the names that are not shared)."""
        names = self._names
        items = list(fields)
        payload = 0
        for i in range(0, len(items), 2):
            name = items[i]
            shared = names.get(name)
            if shared is not None:
                items[i] = shared
            elif len(names) < SHARED_NAMES_MAX:
                names[name] = name
                self._nbytes += item_size(name) + SHARED_NAME_SLOT_BYTES
            else:
                payload += item_size(name)
        return tuple(items), payload + sum(map(item_size, items[1::2]))

    def _entry_bytes(self, fields: tuple[bytes, ...]) -> int:
        """The payload `_share_names` counted for this entry (shared names are never unshared,
        so the identity test gives the same answer for the entry's whole life)."""
        names = self._names
        own = sum(item_size(f) for f in fields[::2] if names.get(f) is not f)
        return own + sum(map(item_size, fields[1::2]))

    def add(self, sid: int, fields: tuple[bytes, ...]) -> None:
        """Append an entry; `sid` must be greater than `last_id` (the command layer checks)."""
        fields, payload = self._share_names(fields)
        size = ENTRY_FIXED_BYTES + _lp_elements(fields)
        node = self._tail
        if (node is None or node.total >= NODE_MAX_ENTRIES
                or node.nbytes + size >= NODE_MAX_BYTES):
            master = LISTPACK_HEADER_BYTES + _lp_elements(fields[::2]) + 4
            node = self.nodes[sid] = self._tail = _Node(sid, master)
        node.last = sid
        node.live += 1
        node.total += 1
        node.nbytes += size
        self.entries[sid] = fields
        self.ids.add(sid)
        self.last_id = sid
        self.entries_added += 1
        self._nbytes += payload

    def _node_of(self, sid: int) -> _Node:
        nodes = self.nodes
        return nodes.peekitem(nodes.bisect_right(sid) - 1)[1]  # type: ignore[no-any-return]

    def _drop(self, sid: int) -> tuple[bytes, ...]:
        fields = self.entries.pop(sid)
        self.ids.remove(sid)
        self._nbytes -= self._entry_bytes(fields)
        return fields

    def _drop_node(self, node: _Node) -> None:
        del self.nodes[node.first]
        if node is self._tail:
            self._tail = self.nodes.peekitem(-1)[1] if self.nodes else None

    def delete(self, sid: int) -> tuple[bytes, ...] | None:
        """XDEL one id: the removed fields, None if absent. Empty nodes go, as in Redis."""
        if sid not in self.entries:
            return None
        fields = self._drop(sid)
        node = self._node_of(sid)
        node.live -= 1
        if not node.live:
            self._drop_node(node)
        if sid > self.max_deleted_id:
            self.max_deleted_id = sid
        return fields

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int
             ) -> list[tuple[bytes, ...]]:
        """Redis' streamTrim: drop whole head nodes, then (exact only) entries inside the next
        one, until len <= maxlen or the head id >= minid; `limit` (0: none) bounds the entries
        removed by whole nodes. Returns the removed fields (for memory accounting)."""
        removed: list[tuple[bytes, ...]] = []
        nodes = self.nodes
        while nodes:
            if maxlen is not None and len(self.entries) <= maxlen:
                break
            node: _Node = nodes.peekitem(0)[1]
            if limit and len(removed) + node.live > limit:
                break
            if maxlen is not None:
                whole = len(self.entries) - node.live >= maxlen
            else:
                whole = node.last < minid  # type: ignore[operator]
            if whole:
                self._drop_node(node)
                for sid in list(self.ids.irange(node.first, node.last)):
                    removed.append(self._drop(sid))
                continue
            if approx:
                break
            for sid in list(self.ids.irange(node.first, node.last)):
                if maxlen is not None and len(self.entries) <= maxlen:
                    break
                if minid is not None and sid >= minid:
                    break
                removed.append(self._drop(sid))
                node.live -= 1
            break
        return removed

    # ---- memory (memory.py asks for these) ----------------------------------------------------
    def struct_size(self) -> int:
        """Every byte of the value: entry overheads, field bytes and group state, in O(groups)."""
        size = STREAM_BASE_BYTES + len(self.entries) * ENTRY_OBJECT_BYTES + self._nbytes
        for g in self.groups.values():
            size += GROUP_BYTES + len(g.consumers) * CONSUMER_BYTES + len(g.pel) * NACK_BYTES
        return size

    def payload_size(self) -> int:
        """Zero: `struct_size` already counts the fields (kept incrementally, never walked)."""
        return 0

    def copy(self) -> Stream:
        """COPY: an independent stream with the same entries, counters and groups."""
        dup = Stream()
        dup.entries = dict(self.entries)
        dup.ids = SortedList(self.ids)
        for first, n in self.nodes.items():
            m = dup.nodes[first] = _Node(first, n.nbytes)
            m.last, m.live, m.total = n.last, n.live, n.total
        dup._tail = dup.nodes.peekitem(-1)[1] if dup.nodes else None
        dup.last_id, dup.max_deleted_id = self.last_id, self.max_deleted_id
        dup.entries_added, dup._nbytes = self.entries_added, self._nbytes
        dup._names = dict(self._names)  # the same name objects the copied entries hold
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
        if not self.entries or not self.max_deleted_id:
            return False
        if self.first_id() > self.max_deleted_id:
            return False
        return start <= self.max_deleted_id

    def estimate_read(self, sid: int) -> int:
        """streamEstimateDistanceFromFirstEverEntry: the read counter of `sid`, or
        INVALID_READ when it cannot be known (a deletion fragments the range)."""
        if not self.entries_added:
            return 0
        if not self.entries and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_READ
        first = self.first_id()
        if not self.max_deleted_id or self.max_deleted_id < first:
            if sid < first:
                return self.entries_added - len(self.entries)
            if sid == first:
                return self.entries_added - len(self.entries) + 1
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
