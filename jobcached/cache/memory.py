"""How many bytes a key costs, estimated the way CPython really allocates them.

Why estimate at all: `maxmemory` eviction needs a running byte count that is cheap to keep. Redis
asks its allocator; we cannot (tracemalloc costs 2-3x in speed), so every entry carries its own
estimate, kept up to date incrementally: a write adjusts the counter by a delta, never by walking a
whole container.

Theory of operation. The cost of a key is

    KEY_OVERHEAD_BYTES + alloc(key)                  every key (Entry, dict and list slot)
  + VOLATILE_OVERHEAD_BYTES                          only while the key has a TTL
  + alloc(value)                                     strings
  + CONTAINER_OVERHEAD_BYTES + struct + payload      containers

where `struct` is the container's own tables, read in O(1) with `sys.getsizeof` (a dict, set or
deque knows its table size without walking it; a ZSet computes it from its length), and `payload`
is the sum of the item objects it holds (member/field/value bytes). The command layer reports the
payload change of each write (`item_size()` of what it added minus what it removed) and the
keyspace re-reads `struct`, so growth steps of a dict's table are exact, not averaged.

`alloc(n)` is what the allocator hands out for an n-byte request: pymalloc serves requests up to
512 bytes from 16-byte size classes (Python >= 3.8 on 64-bit), larger ones go to the C malloc,
which adds an 8-byte header and rounds to 16. tracemalloc reports the requested sizes, so our
figure runs about 10% above tracemalloc: that is the rounding, which is real memory.

Known blind spots: objects shared between keys (interned single bytes, the same `bytes` object
stored twice) are counted twice; in LFU mode each key's access counter is its own int (32 bytes)
that is not counted; the shard dicts' table growth is averaged into DICT_SLOT_BYTES.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobcached.cache.zset import ZSet

PYMALLOC_MAX_REQUEST_BYTES = 512  # pymalloc's SMALL_REQUEST_THRESHOLD (obmalloc.c)
PYMALLOC_ALIGNMENT_BYTES = 16  # pymalloc size classes are multiples of 16 on 64-bit since 3.8
MALLOC_HEADER_BYTES = 8  # glibc chunk header for requests pymalloc passes on
BYTES_HEADER_BYTES = 33  # sys.getsizeof(b""): object header, hash cache and the trailing NUL

INT_BYTES = 32  # a non-cached int object (28 requested, 32 allocated)
ENTRY_OBJECT_BYTES = 96  # shard.Entry: 7 slots + object and GC headers = 88, allocated as 96
DICT_SLOT_BYTES = 40  # shard dict: 24-byte entry + 4-byte index, averaged over the 1/3..2/3 load
LIST_SLOT_BYTES = 9  # an 8-byte pointer in a random-access key list, plus ~12% over-allocation
SHARED_INT_LIMIT = 1 << 16
SHARED_INTS = tuple(range(SHARED_INT_LIMIT))
"""Int objects shared by every entry: CPython allocates 32 bytes for each int above 256, and an
entry's `size`, `pos` and `vpos` repeat across a million keys (all 100-byte strings have the
same size; positions repeat in every shard). Storing these shared objects instead of fresh ints
saves about 64 bytes per key; the table itself (about 2.3 MB) is paid once, at import."""
KEY_OVERHEAD_BYTES = ENTRY_OBJECT_BYTES + DICT_SLOT_BYTES + LIST_SLOT_BYTES
"""Fixed cost of any key besides its own bytes: Entry and two slots (its ints are shared)."""
VOLATILE_OVERHEAD_BYTES = INT_BYTES + LIST_SLOT_BYTES
"""A TTL: its expire_at int (timestamps are rarely shared) and a slot in the volatile list."""
"""Extra cost of a key with a TTL: the `expire_at` and `vpos` ints and a volatile-list slot."""
CONTAINER_OVERHEAD_BYTES = INT_BYTES
"""Extra cost of a container key: the int that remembers its last measured table size."""

ZSET_BASE_BYTES = 560  # ZSet + SortedList objects, their attribute dicts and first sublist
ZSET_ITEM_BYTES = 105  # (score, member) tuple 64 + float 32 + a sublist pointer 9


def alloc(n: int) -> int:
    """Bytes the allocator really hands out for an `n`-byte request."""
    if n <= PYMALLOC_MAX_REQUEST_BYTES:
        return (n + 15) & ~15
    return (n + MALLOC_HEADER_BYTES + 15) & ~15


def item_size(item: bytes) -> int:
    """Cost of one bytes object held by a container (a field, a value, a member).

    The command layer passes sums of these to `Keyspace.notify_modified()`.
    """
    n = len(item) + BYTES_HEADER_BYTES
    if n <= PYMALLOC_MAX_REQUEST_BYTES:
        return (n + 15) & ~15
    return (n + MALLOC_HEADER_BYTES + 15) & ~15


def key_cost(key: bytes) -> int:
    """Fixed cost of a key without its value and without a TTL."""
    return KEY_OVERHEAD_BYTES + item_size(key)


def struct_size(value: Any) -> int:
    """The container's own tables, in O(1) (no walk over items).

    For dict/set/deque `sys.getsizeof` reads the table size the object already knows; a ZSet
    derives it from its length.
    """
    cls = type(value)
    if cls is dict or cls is set or cls is deque:
        n = sys.getsizeof(value)  # alloc(n), inlined: every container write measures its table
        if n <= PYMALLOC_MAX_REQUEST_BYTES:
            return (n + 15) & ~15
        return (n + MALLOC_HEADER_BYTES + 15) & ~15
    return value.struct_size()  # type: ignore[no-any-return]


def payload_size(value: Any) -> int:
    """Sum of the item objects a container holds: a full walk, used only when a whole value is
    stored at once (RESTORE, COPY, tests); writes use deltas instead."""
    cls = type(value)
    if cls is dict:
        return sum(item_size(k) + item_size(v) for k, v in value.items())
    if cls is set or cls is deque:
        return sum(item_size(m) for m in value)
    if hasattr(value, "payload_size"):  # a Stream counts its fields incrementally
        return value.payload_size()  # type: ignore[no-any-return]
    zset: ZSet = value
    return sum(item_size(m) for m in zset.members())


def value_size(value: Any) -> tuple[int, int]:
    """(cost of the value, its struct part) for a value stored whole; strings have no struct."""
    if type(value) is bytes:
        return item_size(value), 0
    struct = struct_size(value)
    return CONTAINER_OVERHEAD_BYTES + struct + payload_size(value), struct


def zset_struct_size(length: int, dict_bytes: int) -> int:
    """Tables of a ZSet with `length` members whose member->score dict has `dict_bytes`."""
    return ZSET_BASE_BYTES + alloc(dict_bytes) + length * ZSET_ITEM_BYTES


def entry_size_check(key: bytes, value: Any, volatile: bool) -> int:
    """The full, walking estimate of one key: what the incremental counter must agree with.

    Tests compare it with the running figure; production code never calls it.
    """
    size = key_cost(key) + value_size(value)[0]
    return size + VOLATILE_OVERHEAD_BYTES if volatile else size


__all__ = [
    "KEY_OVERHEAD_BYTES",
    "VOLATILE_OVERHEAD_BYTES",
    "alloc",
    "entry_size_check",
    "item_size",
    "key_cost",
    "payload_size",
    "struct_size",
    "value_size",
    "zset_struct_size",
]
