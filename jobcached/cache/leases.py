"""Fill leases against cache stampedes (memcached at Facebook, NSDI'13: "Scaling Memcache").

When a hot key is missing, every reader that misses would recompute it and write it back: a
stampede on the backing store, and, worse, a slow filler may write a value computed before a
later update, leaving the cache stale. A lease fixes both. The first reader that misses gets a
token (`GETL`); readers that miss while it is outstanding are told to wait and retry; the
value is stored only with the token (`SETL`), and only if nothing wrote or deleted the key
since the token was handed out. Any change to the key (a write, DEL, expiry, eviction, FLUSH)
drops its lease, so a fill computed before the change can no longer land.

A lease lasts `lease-ttl` ms (or the TTL given to GETL): a filler that dies does not block
the key for longer. The table is keyed by (db, key) and never grows past the keys with a
live lease plus those whose lease ran out since the last sweep: a sweep runs when the table
doubled since the previous one, so the work is amortized O(1) per lease.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from jobcached.clock import Clock

#: tables smaller than this are never swept (a sweep costs the table's size)
SWEEP_MIN = 1024


@dataclass(slots=True)
class Lease:
    token: bytes
    expires_ms: int


class Leases:
    """Outstanding fill leases by (db, key); see the module docstring."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        #: (db, key) -> its lease; callers on hot paths test it is non-empty before calling
        #: `invalidate` (a dict's truth costs no Python call)
        self.table: dict[tuple[int, bytes], Lease] = {}
        self._sweep_at = SWEEP_MIN

    def acquire(self, db: int, key: bytes, ttl_ms: int) -> tuple[bytes | None, int]:
        """(a new token, ttl_ms) for the first asker; (None, ms the current lease has left)
        while another asker's lease is live."""
        now = self.clock.now_ms()
        lease = self.table.get((db, key))
        if lease is not None and lease.expires_ms > now:
            return None, lease.expires_ms - now
        if len(self.table) >= self._sweep_at:
            self._sweep(now)
        token = secrets.token_hex(8).encode()
        self.table[(db, key)] = Lease(token, now + ttl_ms)
        return token, ttl_ms

    def redeem(self, db: int, key: bytes, token: bytes) -> bool:
        """Whether `token` is the live lease on the key; the lease is used up either way if it
        matched (one fill per lease)."""
        lease = self.table.get((db, key))
        if lease is None or lease.token != token or lease.expires_ms <= self.clock.now_ms():
            return False
        del self.table[(db, key)]
        return True

    def invalidate(self, db: int, key: bytes) -> None:
        """The key changed: a fill computed before the change must not land."""
        self.table.pop((db, key), None)

    def invalidate_db(self, db: int) -> None:
        """The database was flushed or swapped."""
        for entry in [entry for entry in self.table if entry[0] == db]:
            del self.table[entry]

    def _sweep(self, now: int) -> None:
        for entry in [e for e, lease in self.table.items() if lease.expires_ms <= now]:
            del self.table[entry]
        self._sweep_at = max(SWEEP_MIN, 2 * len(self.table))
