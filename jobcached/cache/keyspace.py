"""The keyspace: hash slots mapped onto shards, and every key-level operation of the cache.

Keys map to one of 16384 slots exactly as Redis Cluster does (CRC16-XMODEM of the key, or of its
`{hash tag}`), so slots can later be the unit of placement across nodes; here slot -> shard is a
fixed table. Command handlers call this class and nothing below it.

Hot path: GET is one CRC (C, via binascii.crc_hqx, which *is* CRC16-XMODEM), one tuple index, one
dict lookup, an expiry test and an access-time store. The LRU clock is cached (`update_clock()`,
called by `ensure_memory()`, the expiry cycle and the server loop) instead of read per access, as
Redis caches `server.lruclock`; the wall clock is read only for keys that have a TTL.

Contract for code that mutates a container in place: the container operations (hashes.py,
lists.py, sets.py, zsets.py, streams.py here; the other stream commands) take it with
`get_hash(key, create=True)` (etc.), mutate it, then call `notify_modified(key, payload_delta)`
where the delta is the sum of `memory.item_size()` of the byte strings added minus those
removed. That call keeps used_memory right and deletes the key if the container became empty.
A list, sorted set or stream that gained what a blocked client could take is also reported to
`on_ready` by the operation. Strings are replaced whole with `set(key, value, keepttl=True)`
(APPEND, INCR, SETRANGE keep the TTL).

Readiness, as Redis' dbAdd signals it: every method here that adds a key (`set` of a key that
did not exist, `rename`, `move_to`, `copy`; RESTORE and SORT ... STORE go through `set`) reports
it to `on_ready` when it holds a list, a sorted set or a stream, so no command has to; `rename`
and `move_to` also report the name the value left (a client blocked reading a stream there
learns it is gone). Replacing an existing key's value does not report it (Redis' dbOverwrite:
SORT ... STORE over a string leaves a BLPOP blocked). Entries added to an existing container
are reported by the container operations (lists.py, zsets.py, streams.py).
"""

from __future__ import annotations

from binascii import crc_hqx  # CRC16-XMODEM, see slots.py
from collections import deque
from collections.abc import Callable
from random import Random
from typing import Any

from jobcached.cache import expiry, iteration
from jobcached.cache.eviction import LFU_INIT_VAL, MS_PER_MINUTE, Evictor, lfu_touch, policy_is_lfu
from jobcached.cache.memory import (
    KEY_OVERHEAD_BYTES,
    SHARED_INT_LIMIT,
    SHARED_INTS,
    VOLATILE_OVERHEAD_BYTES,
    item_size,
    struct_size,
    value_size,
)
from jobcached.cache.shard import CacheStats, Entry, Shard
from jobcached.cache.slots import SLOT_MASK, SLOTS, key_slot
from jobcached.cache.stream import Stream
from jobcached.cache.zset import ZSet
from jobcached.clock import Clock
from jobcached.errors import CommandError, NoSuchKeyError, WrongTypeError

DEFAULT_SHARDS = 16  # enough to keep each dict resize and each expiry step small
OPEN_BRACE = 0x7B  # `{`: keys without it skip the hash-tag search
_new_entry = object.__new__

# Called as (key, "expired" | "evicted") when the engine itself drops a key, so the command layer
# can propagate a DEL, fire keyspace notifications and invalidate WATCH.
RemovalListener = Callable[[bytes, str], None]
Hash = dict[bytes, bytes]  # the value types handlers get back (strings are plain bytes)
ListValue = deque[bytes]
#: the value types clients block on (BLPOP..., BZPOPMIN..., XREAD...): a key added with one of
#: them is reported to `on_ready` (Redis' signalKeyAsReady ignores the other types)
BLOCKABLE = frozenset({deque, ZSet, Stream})


def _nothing() -> int:
    return 0


class Keyspace:
    """All cache data of one database, sharded; see the module docstring for the contract."""

    def __init__(
        self,
        clock: Clock,
        shards: int = DEFAULT_SHARDS,
        maxmemory: int = 0,
        policy: str = "noeviction",
        lfu_log_factor: int = 10,
        lfu_decay_time: int = 1,
        maxmemory_samples: int = 5,
        rng: Random | None = None,
        on_removed: RemovalListener | None = None,
        stats: CacheStats | None = None,
    ) -> None:
        if not 1 <= shards <= SLOTS:
            raise ValueError(f"shards must be within 1..{SLOTS}")
        self.clock = clock
        self.rng = rng or Random()
        self.stats = stats or CacheStats()  # shared by all databases (databases.py)
        self.shards: tuple[Shard, ...] = tuple(Shard(self.stats) for _ in range(shards))
        self._by_slot = tuple(self.shards[s % shards] for s in range(SLOTS))
        self.maxmemory = maxmemory
        self.maxmemory_samples = maxmemory_samples
        self.lfu_log_factor = lfu_log_factor
        self.lfu_decay_time = lfu_decay_time
        self.on_removed = on_removed
        #: keyspace-notification hooks, None unless someone wants `new` / `keymiss` events
        #: (so the paths below pay one None test): a key was created; a read found nothing
        self.on_new: Callable[[bytes], None] | None = None
        self.on_miss: Callable[[bytes], None] | None = None
        #: readiness hook, None until some client blocks on keys: a key of a BLOCKABLE type
        #: was added (module docstring), or a container operation (lists.py, zsets.py,
        #: streams.py) gave one something to take, so clients blocked on it may now be served
        #: (commands/blocking.py)
        self.on_ready: Callable[[bytes], None] | None = None
        #: hot-key sampling (cache/hotkeys.py), None unless `hotkey-top-k` is set: key
        #: lookups (hits and misses, reads and writes) count down `sample_left`, and the one
        #: that reaches 0 is recorded; the hook returns the next gap (a countdown here costs
        #: a fraction of a call per lookup)
        self.on_access: Callable[[bytes], int] | None = None
        self.sample_left = 0
        #: bytes `maxmemory` must also hold besides the cache: the job engine's, which is
        #: never evicted (the app wires it; see `ensure_memory`)
        self.other_memory: Callable[[], int] = _nothing
        #: set during CLIENT PAUSE: reads see a key past its TTL as gone but leave it stored,
        #: as Redis does, so the dataset does not change while clients are paused
        self.keep_expired = False
        self._evictor = Evictor(self)
        self._expiry = expiry.ExpiryCursor()
        self.set_policy(policy)
        self.update_clock()

    # ---- plumbing -----------------------------------------------------------------------------
    def set_policy(self, policy: str) -> None:
        """CONFIG SET maxmemory-policy. Access fields are reinterpreted, as in Redis."""
        self._lfu = policy_is_lfu(policy)
        self.policy = policy
        self._evictor.reset()

    def update_clock(self) -> None:
        """Refresh the cached LRU/LFU clock; call once per event-loop iteration."""
        self.lru_clock = self.clock.monotonic_ms()
        self.lfu_minutes = self.lru_clock // MS_PER_MINUTE

    def shard_of(self, key: bytes) -> Shard:
        if OPEN_BRACE in key:
            return self._by_slot[key_slot(key)]
        return self._by_slot[crc_hqx(key, 0) & SLOT_MASK]

    def _touch(self, e: Entry) -> None:
        """Record an access: the cached LRU clock, or a step of the LFU counter."""
        if not self._lfu:
            e.access = self.lru_clock
            return
        f, decay = self.lfu_log_factor, self.lfu_decay_time
        e.access = lfu_touch(e.access, self.lfu_minutes, f, decay, self.rng)

    def reap(self, shard: Shard, key: bytes, entry: Entry, evicted: bool) -> None:
        """Remove a key the engine decided to drop (expired or evicted), count it, report it."""
        shard.remove(key, entry)
        if evicted:
            self.stats.evicted_keys += 1
        else:
            self.stats.expired_keys += 1
        if self.on_removed is not None:
            self.on_removed(key, "evicted" if evicted else "expired")

    def _find(self, key: bytes) -> tuple[Shard, Entry | None]:
        """Shard and live entry (None if missing or expired, which it reaps); no touch, no stats."""
        if 0x7B in key:  # shard_of(), inlined as in lookup_read
            shard = self._by_slot[key_slot(key)]
        else:
            shard = self._by_slot[crc_hqx(key, 0) & 0x3FFF]
        e = shard.data.get(key)
        if e is not None and e.expire_at and e.expire_at <= self.clock.now_ms():
            if not self.keep_expired:
                self.reap(shard, key, e, evicted=False)
            return shard, None
        return shard, e

    # ---- lookups ------------------------------------------------------------------------------
    def lookup_read(self, key: bytes) -> Any:
        """The value for a read command (counts hits/misses, updates LRU/LFU), or None."""
        if self.on_access is not None:
            self.sample_left -= 1
            if self.sample_left <= 0:
                self.sample_left = self.on_access(key)
        # The hot path: literals (0x7B is `{`, 0x3FFF the slot mask) load faster than globals.
        if 0x7B in key:
            shard = self._by_slot[key_slot(key)]
        else:
            shard = self._by_slot[crc_hqx(key, 0) & 0x3FFF]
        e = shard.data.get(key)
        if e is None:
            self.stats.keyspace_misses += 1
            if self.on_miss is not None:
                self.on_miss(key)
            return None
        if e.expire_at and e.expire_at <= self.clock.now_ms():
            if not self.keep_expired:
                self.reap(shard, key, e, evicted=False)
            self.stats.keyspace_misses += 1
            if self.on_miss is not None:
                self.on_miss(key)
            return None
        if self._lfu:
            self._touch(e)
        else:
            e.access = self.lru_clock
        self.stats.keyspace_hits += 1
        return e.value

    def lookup_write(self, key: bytes) -> Any:
        """The value for a write command (updates LRU/LFU, no hit/miss stats), or None."""
        if self.on_access is not None:
            self.sample_left -= 1
            if self.sample_left <= 0:
                self.sample_left = self.on_access(key)
        # Every write to a container or counter starts here: _find and _touch, inlined.
        if 0x7B in key:
            shard = self._by_slot[key_slot(key)]
        else:
            shard = self._by_slot[crc_hqx(key, 0) & 0x3FFF]
        e = shard.data.get(key)
        if e is None:
            return None
        if e.expire_at and e.expire_at <= self.clock.now_ms():
            self.reap(shard, key, e, evicted=False)
            return None
        if self._lfu:
            self._touch(e)
        else:
            e.access = self.lru_clock
        return e.value

    def _typed(self, key: bytes, cls: type, create: bool, write: bool) -> Any:
        value = self.lookup_write(key) if create or write else self.lookup_read(key)
        if value is None:
            if not create:
                return None
            value = cls()
            self.set(key, value)
            return value
        if type(value) is not cls:
            raise WrongTypeError()
        return value

    def get_string(self, key: bytes, write: bool = False) -> bytes | None:
        value = self.lookup_write(key) if write else self.lookup_read(key)
        if value is None or type(value) is bytes:
            return value
        raise WrongTypeError()

    def get_hash(self, key: bytes, create: bool = False, write: bool = False) -> Hash | None:
        return self._typed(key, dict, create, write)  # type: ignore[no-any-return]

    def get_list(self, key: bytes, create: bool = False, write: bool = False) -> ListValue | None:
        return self._typed(key, deque, create, write)  # type: ignore[no-any-return]

    def get_set(self, key: bytes, create: bool = False, write: bool = False) -> set[bytes] | None:
        return self._typed(key, set, create, write)  # type: ignore[no-any-return]

    def get_zset(self, key: bytes, create: bool = False, write: bool = False) -> ZSet | None:
        return self._typed(key, ZSet, create, write)  # type: ignore[no-any-return]

    def get_stream(self, key: bytes, write: bool = False) -> Stream | None:
        return self._typed(key, Stream, False, write)  # type: ignore[no-any-return]

    # ---- writes -------------------------------------------------------------------------------
    def set(
        self, key: bytes, value: Any, expire_at_ms: int | None = None, keepttl: bool = False
    ) -> None:
        """Store a whole value. Overwriting clears the TTL unless `keepttl`; an `expire_at_ms` in
        the past deletes the key instead (as Redis's SET ... PXAT <past>)."""
        if 0x7B in key:
            shard = self._by_slot[key_slot(key)]
        else:
            shard = self._by_slot[crc_hqx(key, 0) & 0x3FFF]
        e = shard.data.get(key)
        if (e is not None and expire_at_ms is None and type(value) is bytes
                and type(e.value) is bytes and len(e.value) == len(value)
                and (not e.expire_at or (keepttl and e.expire_at > self.clock.now_ms()))):
            # A string replaced by one of the same length (counters, fixed-size values), its
            # TTL unchanged (none, or a live one kept: INCR of a counter with a TTL): its
            # size estimate cannot change, so skip the accounting below.
            self.stats.dirty += 1
            e.value = value
            if self._lfu:
                self._touch(e)
            else:
                e.access = self.lru_clock
            return
        if type(value) is bytes:  # memory.item_size(), inlined: this is the SET path
            n = len(value) + 33
            size = (n + 15) & ~15 if n <= 512 else (n + 23) & ~15
            aux = 0
        else:
            size, aux = value_size(value)
        n = len(key) + 33
        size += KEY_OVERHEAD_BYTES + ((n + 15) & ~15 if n <= 512 else (n + 23) & ~15)
        if size < SHARED_INT_LIMIT:
            size = SHARED_INTS[size]  # one int object per distinct size, not one per key
        if expire_at_ms is not None or (e is not None and e.expire_at):
            now = self.clock.now_ms()
            if e is not None and e.expire_at and e.expire_at <= now:
                self.reap(shard, key, e, evicted=False)
                e = None
            if expire_at_ms is not None and expire_at_ms <= now:
                if e is not None:
                    shard.remove(key, e)
                    self.stats.dirty += 1
                return
        self.stats.dirty += 1
        if e is None:
            e = _new_entry(Entry)  # Entry(...) without a Python-level __init__: 2x faster
            e.value = value
            e.expire_at = 0
            e.access = (self.lfu_minutes << 8) | LFU_INIT_VAL if self._lfu else self.lru_clock
            e.size = size
            e.aux = aux
            e.vpos = -1
            shard.add(key, e)
            if expire_at_ms:
                shard.set_expire(key, e, expire_at_ms)
            if self.on_ready is not None and type(value) in BLOCKABLE:
                self.on_ready(key)
            if self.on_new is not None:
                self.on_new(key)
            return
        if e.vpos >= 0:
            size += VOLATILE_OVERHEAD_BYTES
            if size < SHARED_INT_LIMIT:
                size = SHARED_INTS[size]
        self.stats.used_memory += size - e.size
        e.size = size
        e.value = value
        e.aux = aux
        if self._lfu:
            self._touch(e)
        else:
            e.access = self.lru_clock
        if expire_at_ms:
            shard.set_expire(key, e, expire_at_ms)
        elif e.expire_at and not keepttl:
            shard.set_expire(key, e, 0)

    def notify_modified(self, key: bytes, payload_delta: int = 0) -> None:
        """A container was changed in place: re-account its bytes, drop it if it became empty.

        `payload_delta`: sum of `memory.item_size()` of byte strings added minus removed.
        """
        self.stats.dirty += 1
        if 0x7B in key:  # shard_of(), inlined: every container write ends here
            shard = self._by_slot[key_slot(key)]
        else:
            shard = self._by_slot[crc_hqx(key, 0) & 0x3FFF]
        e = shard.data.get(key)
        if e is None:
            return
        value = e.value
        if type(value) is bytes:
            size = KEY_OVERHEAD_BYTES + item_size(key) + item_size(value)
            shard.resize(e, size + VOLATILE_OVERHEAD_BYTES if e.vpos >= 0 else size)
            return
        if not value:
            shard.remove(key, e)
            return
        struct = struct_size(value)
        size = e.size + payload_delta + struct - e.aux  # Shard.resize(), inlined
        self.stats.used_memory += size - e.size
        e.size = SHARED_INTS[size] if 0 <= size < SHARED_INT_LIMIT else size
        e.aux = struct

    def delete(self, key: bytes) -> bool:
        shard, e = self._find(key)
        if e is None:
            return False
        shard.remove(key, e)
        self.stats.dirty += 1
        return True

    def holds(self, key: bytes) -> bool:
        """Stored here, even if past its TTL; no side effect (what FLUSHDB and SWAPDB ask of
        WATCHed keys, as Redis' touchAllWatchedKeysInDb)."""
        return key in self.shard_of(key).data

    def exists(self, key: bytes) -> bool:
        """EXISTS: counts a hit or miss like Redis, does not touch the access time."""
        if self._find(key)[1] is None:
            self.stats.keyspace_misses += 1
            if self.on_miss is not None:
                self.on_miss(key)
            return False
        self.stats.keyspace_hits += 1
        return True

    # ---- TTL ----------------------------------------------------------------------------------
    def expire_at(self, key: bytes, at_ms: int) -> bool:
        """Set an absolute TTL; False if the key is missing. A time not in the future deletes."""
        shard, e = self._find(key)
        if e is None:
            return False
        if at_ms <= self.clock.now_ms():
            shard.remove(key, e)
        else:
            shard.set_expire(key, e, at_ms)
        self.stats.dirty += 1
        return True

    def persist(self, key: bytes) -> bool:
        """Remove the TTL; True only if there was one."""
        shard, e = self._find(key)
        if e is None or not e.expire_at:
            return False
        shard.set_expire(key, e, 0)
        self.stats.dirty += 1
        return True

    def expire_time_ms(self, key: bytes) -> int:
        """PEXPIRETIME: absolute unix ms, -1 without TTL, -2 when the key does not exist."""
        e = self._find(key)[1]
        return -2 if e is None else e.expire_at or -1

    def ttl_ms(self, key: bytes) -> int:
        """PTTL: remaining ms, -1 without TTL, -2 when the key does not exist."""
        at = self.expire_time_ms(key)
        return at if at < 0 else max(0, at - self.clock.now_ms())

    # ---- whole-key operations -----------------------------------------------------------------
    def rename(self, src: bytes, dst: bytes) -> None:
        """RENAME: moves value, TTL and access info; overwrites dst. NoSuchKeyError if no src."""
        src_shard, e = self._find(src)
        if e is None:
            raise NoSuchKeyError()
        if src == dst:
            return
        self.stats.dirty += 1
        dst_shard, old = self._find(dst)
        if old is not None:
            dst_shard.remove(dst, old)
        base = e.size - (VOLATILE_OVERHEAD_BYTES if e.vpos >= 0 else 0)
        src_shard.remove(src, e)
        moved = Entry(e.value, e.access, base - item_size(src) + item_size(dst), e.aux, 0)
        dst_shard.add(dst, moved)
        if e.expire_at:
            dst_shard.set_expire(dst, moved, e.expire_at)
        if self.on_ready is not None and type(e.value) in BLOCKABLE:
            self.on_ready(dst)
            self.on_ready(src)  # gone from there (Redis' dbAdd, then dbDelete)
        if self.on_new is not None:
            self.on_new(dst)

    def copy(self, src: bytes, dst: bytes, replace: bool = False,
             target: Keyspace | None = None) -> bool:
        """COPY: duplicate value and TTL into `target` (another database; default this one);
        False if src is missing or dst exists without replace."""
        target = target or self
        if src == dst and target is self:
            raise CommandError("source and destination objects are the same")
        e = self._find(src)[1]
        if e is None:
            return False
        dst_shard, old = target._find(dst)
        if old is not None:
            if not replace:
                return False
            dst_shard.remove(dst, old)  # a new key takes its place, as Redis' dbAdd
        value = e.value
        cls = type(value)
        copyable = (dict, set, ZSet, Stream)
        dup = value if cls is bytes else value.copy() if cls in copyable else deque(value)
        target.set(dst, dup, expire_at_ms=e.expire_at or None)
        return True

    def type_name(self, key: bytes) -> str:
        """TYPE: "none", "string", "hash", "list", "set" or "zset"."""
        return iteration.type_of(self._find(key)[1])

    def flush(self) -> None:
        """FLUSHDB: drop every key (stats counters other than memory survive, as in Redis)."""
        for shard in self.shards:
            shard.clear()
        self._evictor.reset()
        self.stats.dirty += 1

    def swap_contents(self, other: Keyspace) -> None:
        """SWAPDB: exchange all keys with `other` (both share one CacheStats, so memory stays
        right); candidates pooled for eviction and expiry cursors belong to the old data."""
        self.stats.dirty += 1
        self.shards, other.shards = other.shards, self.shards
        self._by_slot, other._by_slot = other._by_slot, self._by_slot
        for ks in (self, other):
            ks._evictor.reset()
            ks._expiry = expiry.ExpiryCursor()

    def move_to(self, key: bytes, target: Keyspace) -> bool:
        """MOVE: give `key` (value, TTL, access info) to `target`; False if the key is missing
        here or already exists there."""
        shard, e = self._find(key)
        if e is None or target._find(key)[1] is not None:
            return False
        shard.remove(key, e)
        self.stats.dirty += 1
        moved = Entry(e.value, e.access, e.size - (VOLATILE_OVERHEAD_BYTES if e.vpos >= 0 else 0),
                      e.aux, 0)
        dst_shard = target.shard_of(key)
        dst_shard.add(key, moved)
        if e.expire_at:
            dst_shard.set_expire(key, moved, e.expire_at)
        if type(e.value) in BLOCKABLE:
            if target.on_ready is not None:
                target.on_ready(key)
            if self.on_ready is not None:
                self.on_ready(key)  # gone from here (Redis' dbAdd there, then dbDelete here)
        if target.on_new is not None:
            target.on_new(key)
        return True

    # ---- memory and expiry work ---------------------------------------------------------------
    def ensure_memory(self) -> int:
        """Call before every DENYOOM write: evicts until under maxmemory (bounded work), returns
        the number of keys evicted; raises OutOfMemoryError if nothing can be evicted.

        Memory that is not the cache's (`other_memory`: jobs) counts against maxmemory but
        cannot be evicted, so the cache evicts down to what is left of maxmemory after it;
        when that is nothing, every DENYOOM command is refused, JOB.PUSH included, as Redis
        refuses writes once eviction cannot bring it under maxmemory."""
        self.update_clock()
        if not self.maxmemory:
            return 0
        limit = self.maxmemory - self.other_memory()
        if self.stats.used_memory <= limit:
            return 0
        return self._evictor.free_memory(limit)

    def evict_one(self) -> bool:
        """Evict one key under the current policy; False when nothing is evictable."""
        return self._evictor.evict_one()

    def expires_count(self) -> int:
        """Keys with a TTL (INFO keyspace `expires`)."""
        return sum(len(s.volatile) for s in self.shards)

    def active_expire_cycle(
        self,
        budget_ms: int = expiry.DEFAULT_EXPIRE_BUDGET_MS,
        max_samples: int = expiry.DEFAULT_EXPIRE_MAX_SAMPLES,
    ) -> int:
        """One bounded step of active expiry (see expiry.py); returns keys expired."""
        self.update_clock()
        return expiry.active_expire_cycle(self, self._expiry, budget_ms, max_samples)

    # ---- iteration and introspection (iteration.py) -------------------------------------------
    def scan(
        self, cursor: int, count: int = 10, match: bytes | None = None, type_name: str | None = None
    ) -> tuple[int, list[bytes]]:
        """SCAN: see iteration.scan for the cursor guarantee."""
        return iteration.scan(self, cursor, count, match, type_name)

    def keys(self, pattern: bytes = b"*") -> list[bytes]:
        return iteration.keys(self, pattern)

    def random_key(self) -> bytes | None:
        return iteration.random_key(self)

    def dbsize(self) -> int:
        """Keys stored, including expired ones not yet reclaimed (as Redis's DBSIZE)."""
        return sum(len(s.data) for s in self.shards)

    def object_encoding(self, key: bytes) -> str | None:
        return iteration.encoding_of(self._find(key)[1])

    def memory_usage(self, key: bytes) -> int | None:
        """MEMORY USAGE: the key's estimated bytes (memory.py), None if it does not exist."""
        e = self._find(key)[1]
        return None if e is None else e.size

    def set_access(self, key: bytes, idle_s: int | None, freq: int | None) -> None:
        """RESTORE's IDLETIME / FREQ (Redis' objectSetLRUOrLFU): only the figure the policy
        tracks is applied, the other is ignored, as in Redis."""
        e = self._find(key)[1]
        if e is None:
            return
        if self._lfu:
            if freq is not None:
                e.access = (self.lfu_minutes << 8) | freq
        elif idle_s is not None:
            e.access = self.lru_clock - idle_s * 1000

    def object_freq(self, key: bytes) -> int | None:
        return iteration.object_freq(self, self._find(key)[1])

    def object_idletime(self, key: bytes) -> int | None:
        return iteration.object_idletime(self, self._find(key)[1])

    def info(self) -> dict[str, Any]:
        """Figures for INFO memory/stats/keyspace."""
        return iteration.info(self, self._expiry)
