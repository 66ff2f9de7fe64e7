"""Walking the keyspace: SCAN, KEYS, RANDOMKEY, and the read-only OBJECT/INFO figures.

SCAN cursor (theory of operation)
---------------------------------
Redis guarantees that a full SCAN returns every key that was present for the whole iteration at
least once (duplicates allowed), with no server-side state. Redis gets it from reverse-binary
iteration over hash buckets; Python dicts expose no buckets. We get it from the shard arrays:
each shard keeps its keys in a list where a deletion moves the *last* key into the hole
(swap-remove) and an insertion appends. We walk every array from the top down, so a cursor is
(shard, r): "positions r-1 .. 0 of this shard are still to visit". Then:

  - a key present throughout can only move down (when it is the last one and fills a hole), and a
    move down from below r stays below r: it is still ahead of the cursor, never skipped;
  - a key that moves down from the visited part into the unvisited part is merely returned twice;
  - keys added during the scan land at the top, already visited: they may be missed, as in Redis;
  - if the array shrinks under the cursor, r is clamped to its length.

The cursor integer is r * nshards + shard (0 = start and end). COUNT bounds the positions visited
per call (empty shards are skipped for free: at most one pass over the shard tuple), so one call
is bounded work, like Redis's COUNT*10 bucket visits. Keys found expired are skipped, and reclaimed
after the walk.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from jobcached.cache.eviction import LFU_POLICIES, lfu_decayed
from jobcached.cache.glob import compile_glob
from jobcached.cache.stream import Stream
from jobcached.cache.zset import ZSet
from jobcached.errors import CommandError

if TYPE_CHECKING:
    from jobcached.cache.expiry import ExpiryCursor
    from jobcached.cache.keyspace import Keyspace
    from jobcached.cache.shard import Entry, Shard

TYPE_NAMES: dict[type, str] = {
    bytes: "string",
    dict: "hash",
    deque: "list",
    set: "set",
    ZSet: "zset",
    Stream: "stream",
}

RANDOMKEY_MAX_TRIES = 100  # expired keys reclaimed per RANDOMKEY before giving up (bounded work)
AVG_TTL_SAMPLES_PER_SHARD = 16  # volatile keys sampled per shard to estimate avg_ttl for INFO
# Redis 7.0 encoding thresholds (hash-max-listpack-*, zset-max-listpack-*, set-max-intset-entries)
HASH_LISTPACK_MAX_ENTRIES = 512  # hash-max-listpack-entries
ZSET_LISTPACK_MAX_ENTRIES = 128  # zset-max-listpack-entries
LISTPACK_MAX_VALUE_BYTES = 64
INTSET_MAX_ENTRIES = 512
EMBSTR_MAX_BYTES = 44  # strings up to this length are "embstr", longer ones "raw"
INT_ENCODABLE_MAX_BYTES = 20  # longest decimal that fits a signed 64-bit integer

_NO_LFU = (
    "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when"
    " switching between policies at runtime LRU and LFU data will take some time to adjust."
)
_NO_LRU = (
    "An LFU maxmemory policy is selected, idle time not tracked. Please note that when"
    " switching between policies at runtime LRU and LFU data will take some time to adjust."
)


def scan(
    ks: Keyspace, cursor: int, count: int, match: bytes | None, type_name: str | None
) -> tuple[int, list[bytes]]:
    """One SCAN step; returns (next cursor, keys). See the module docstring."""
    shards = ks.shards
    n = len(shards)
    if cursor <= 0:
        index, remaining = 0, len(shards[0].keys)
    else:
        index, remaining = cursor % n, cursor // n
    budget = max(count, 1)
    visited: list[tuple[Shard, bytes]] = []
    next_cursor = 0
    while True:
        shard = shards[index]
        keys = shard.keys
        remaining = min(remaining, len(keys))
        while remaining and len(visited) < budget:
            remaining -= 1
            visited.append((shard, keys[remaining]))
        if remaining:
            next_cursor = remaining * n + index
            break
        index += 1
        while index < n and not shards[index].keys:  # empty shards cost nothing (at most n)
            index += 1
        if index == n:
            break
        remaining = len(shards[index].keys)
        if len(visited) >= budget:
            next_cursor = remaining * n + index
            break
    matcher = compile_glob(match) if match is not None and match != b"*" else None
    now = ks.clock.now_ms()
    out: list[bytes] = []
    dead: list[tuple[Shard, bytes, Entry]] = []
    for shard, key in visited:
        e = shard.data.get(key)
        if e is None:
            continue
        if e.expire_at and e.expire_at <= now:
            dead.append((shard, key, e))
            continue
        if type_name is not None and TYPE_NAMES[type(e.value)] != type_name:
            continue
        if matcher is None or matcher.match(key):
            out.append(key)
    for shard, key, e in dead:
        if shard.data.get(key) is e and not ks.keep_expired:
            ks.reap(shard, key, e, evicted=False)
    return next_cursor, out


def keys(ks: Keyspace, pattern: bytes) -> list[bytes]:
    """KEYS: every live key matching the pattern (O(n): the same warning as Redis applies)."""
    matcher = None if pattern == b"*" else compile_glob(pattern)
    now = ks.clock.now_ms()
    out: list[bytes] = []
    for shard in ks.shards:
        for key, e in shard.data.items():
            if e.expire_at and e.expire_at <= now:
                continue
            if matcher is None or matcher.match(key):
                out.append(key)
    return out


def random_key(ks: Keyspace) -> bytes | None:
    """RANDOMKEY: uniform over stored keys; expired picks are reclaimed and retried (bounded)."""
    now = ks.clock.now_ms()
    for _ in range(RANDOMKEY_MAX_TRIES):
        total = sum(len(s.keys) for s in ks.shards)
        if total == 0:
            return None
        r = int(ks.rng.random() * total)
        for shard in ks.shards:
            if r < len(shard.keys):
                break
            r -= len(shard.keys)
        key = shard.keys[r]
        e = shard.data[key]
        if not (e.expire_at and e.expire_at <= now):
            return key
        if not ks.keep_expired:
            ks.reap(shard, key, e, evicted=False)
    return None


def _is_int(b: bytes) -> bool:
    if not b or len(b) > INT_ENCODABLE_MAX_BYTES:
        return False
    try:
        value = int(b)
    except ValueError:
        return False
    # canonical decimal (no sign or leading zeros Redis would not print) within a signed long
    return -(2**63) <= value < 2**63 and str(value).encode() == b


def type_of(e: Entry | None) -> str:
    """TYPE: "none", "string", "hash", "list", "set" or "zset"."""
    return "none" if e is None else TYPE_NAMES[type(e.value)]


def encoding_of(e: Entry | None) -> str | None:
    """OBJECT ENCODING as Redis 7.0 would report it for the same content (None: no key).

    Redis encodings are sticky (a hash that once grew past the listpack limits stays a
    hashtable); ours are computed from the current content.
    """
    if e is None:
        return None
    value = e.value
    cls = type(value)
    if cls is bytes:
        if _is_int(value):
            return "int"
        return "embstr" if len(value) <= EMBSTR_MAX_BYTES else "raw"
    if cls is deque:
        return "quicklist"
    if cls is set:
        if len(value) <= INTSET_MAX_ENTRIES and all(_is_int(m) for m in value):
            return "intset"
        return "hashtable"
    if cls is dict:
        fits = len(value) <= HASH_LISTPACK_MAX_ENTRIES and all(
            len(k) <= LISTPACK_MAX_VALUE_BYTES and len(v) <= LISTPACK_MAX_VALUE_BYTES
            for k, v in value.items()
        )
        return "listpack" if fits else "hashtable"
    if cls is Stream:
        return "stream"
    fits = len(value) <= ZSET_LISTPACK_MAX_ENTRIES and all(
        len(m) <= LISTPACK_MAX_VALUE_BYTES for m in value.members())
    return "listpack" if fits else "skiplist"


def object_freq(ks: Keyspace, e: Entry | None) -> int | None:
    """OBJECT FREQ: the decayed LFU counter; an error unless an LFU policy is active."""
    if e is None:  # a missing key is nil whatever the policy, as in Redis
        return None
    if ks.policy not in LFU_POLICIES:
        raise CommandError(_NO_LFU)
    ks.update_clock()
    return lfu_decayed(e.access, ks.lfu_minutes, ks.lfu_decay_time)


def object_idletime(ks: Keyspace, e: Entry | None) -> int | None:
    """OBJECT IDLETIME in seconds; an error under an LFU policy (no access time kept)."""
    if e is None:
        return None
    if ks.policy in LFU_POLICIES:
        raise CommandError(_NO_LRU)
    ks.update_clock()
    return max(0, ks.lru_clock - e.access) // 1000


def info(ks: Keyspace, expiry: ExpiryCursor) -> dict[str, Any]:
    """INFO figures; `avg_ttl` (ms) is estimated from a bounded random sample, like Redis's."""
    now = ks.clock.now_ms()
    rand = ks.rng.random
    ttl_sum = ttl_n = 0
    for shard in ks.shards:
        vol = shard.volatile
        for _ in range(min(AVG_TTL_SAMPLES_PER_SHARD, len(vol))):
            left = shard.data[vol[int(rand() * len(vol))]].expire_at - now
            if left > 0:
                ttl_sum += left
                ttl_n += 1
    stats = ks.stats
    return {
        "used_memory": stats.used_memory,
        "maxmemory": ks.maxmemory,
        "maxmemory_policy": ks.policy,
        "expired_keys": stats.expired_keys,
        "evicted_keys": stats.evicted_keys,
        "keyspace_hits": stats.keyspace_hits,
        "keyspace_misses": stats.keyspace_misses,
        "keys": sum(len(s.data) for s in ks.shards),
        "expires": sum(len(s.volatile) for s in ks.shards),
        "avg_ttl": ttl_sum // ttl_n if ttl_n else 0,
        "keys_per_shard": [len(s.data) for s in ks.shards],
        "expire_cycle_last_sampled": expiry.last_sampled,
        "expire_cycle_last_expired": expiry.last_expired,
    }
