"""One shard of the keyspace: its dict, its key lists for sampling, and the Entry record.

Why shards in a single-threaded process: each step of active expiry and eviction visits one shard,
so work per event-loop iteration stays bounded, and a dict resize (CPython copies the whole table
at once, with no incremental rehash like Redis's) only ever copies 1/N of the keys.

Why two lists beside the dict: Python dicts cannot return a random key in O(1), and Redis-style
eviction and expiry both need random samples. So every shard keeps `keys` (all keys) and
`volatile` (keys with a TTL) as arrays; each Entry remembers its index (`pos`, `vpos`) so removal
is a swap with the last element and a pop: O(1), no holes. The same swap-remove rule is what makes
SCAN's cursor sound (see keyspace.scan): positions only ever move *down*, into the part of the
array a descending cursor has not visited yet.
"""

from __future__ import annotations

from typing import Any

from jobcached.cache.memory import SHARED_INT_LIMIT, SHARED_INTS, VOLATILE_OVERHEAD_BYTES


class Entry:
    """What the shard dict maps a key to.

    value     bytes | dict | deque | set | ZSet
    expire_at absolute unix ms, 0 when the key has no TTL
    access    LRU: monotonic ms of the last access; LFU: (minutes << 8) | counter (as Redis's
              24-bit `lru` field, read according to the current policy)
    size      this key's estimated bytes (memory.py), included in CacheStats.used_memory
    aux       containers: the struct size measured at the last accounting; strings: 0
    pos       index in Shard.keys
    vpos      index in Shard.volatile, -1 when the key has no TTL
    """

    __slots__ = ("access", "aux", "expire_at", "pos", "size", "value", "vpos")

    def __init__(self, value: Any, access: int, size: int, aux: int, pos: int) -> None:
        self.value = value
        self.expire_at = 0
        self.access = access
        self.size = size
        self.aux = aux
        self.pos = pos
        self.vpos = -1


class CacheStats:
    """Counters for INFO: shared by all shards of one keyspace (and all databases).

    `dirty` counts the changes commands made (Redis' server.dirty): every write method of a
    Keyspace adds one when it changed something; expiry and eviction do not. The dispatcher
    compares it around a write command to know whether the command had an effect to log.
    """

    __slots__ = ("dirty", "evicted_keys", "expired_keys", "keyspace_hits", "keyspace_misses",
                 "used_memory")

    def __init__(self) -> None:
        self.dirty = 0
        self.used_memory = 0
        self.expired_keys = 0
        self.evicted_keys = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0


class Shard:
    """A dict of entries plus the arrays that make random sampling O(1)."""

    __slots__ = ("data", "keys", "stats", "volatile")

    def __init__(self, stats: CacheStats) -> None:
        self.data: dict[bytes, Entry] = {}
        self.keys: list[bytes] = []
        self.volatile: list[bytes] = []
        self.stats = stats

    def clear(self) -> None:
        """Drop every key at once (FLUSHDB): new containers, the old ones are freed by refcount."""
        self.stats.used_memory -= sum(e.size for e in self.data.values())
        self.data, self.keys, self.volatile = {}, [], []

    def add(self, key: bytes, entry: Entry) -> None:
        """Insert a new key whose `size` is already set; `expire_at` must still be 0."""
        keys = self.keys
        pos = len(keys)
        entry.pos = SHARED_INTS[pos] if pos < SHARED_INT_LIMIT else pos
        keys.append(key)
        self.data[key] = entry
        self.stats.used_memory += entry.size

    def remove(self, key: bytes, entry: Entry) -> None:
        """Drop a key from the dict and both arrays, and its bytes from the counter."""
        data = self.data
        del data[key]
        keys = self.keys
        last = keys.pop()
        if entry.pos < len(keys):
            keys[entry.pos] = last
            data[last].pos = entry.pos
        if entry.vpos >= 0:
            self._unvolatile(entry)
        self.stats.used_memory -= entry.size

    def set_expire(self, key: bytes, entry: Entry, at_ms: int) -> None:
        """Give the key a TTL (absolute ms) or, with 0, remove it; keeps memory in step."""
        if at_ms:
            if entry.vpos < 0:
                vpos = len(self.volatile)
                entry.vpos = SHARED_INTS[vpos] if vpos < SHARED_INT_LIMIT else vpos
                self.volatile.append(key)
                entry.size = shared(entry.size + VOLATILE_OVERHEAD_BYTES)
                self.stats.used_memory += VOLATILE_OVERHEAD_BYTES
        elif entry.vpos >= 0:
            self._unvolatile(entry)
            entry.size = shared(entry.size - VOLATILE_OVERHEAD_BYTES)
            self.stats.used_memory -= VOLATILE_OVERHEAD_BYTES
        entry.expire_at = at_ms

    def _unvolatile(self, entry: Entry) -> None:
        vol = self.volatile
        last = vol.pop()
        vpos = entry.vpos
        if vpos < len(vol):
            vol[vpos] = last
            self.data[last].vpos = vpos
        entry.vpos = -1

    def resize(self, entry: Entry, new_size: int) -> None:
        """Replace an entry's size estimate, moving the shared counter by the difference."""
        self.stats.used_memory += new_size - entry.size
        entry.size = shared(new_size)


def shared(n: int) -> int:
    """The shared int object for n when there is one (see memory.SHARED_INTS)."""
    return SHARED_INTS[n] if 0 <= n < SHARED_INT_LIMIT else n
