"""What the container-operation tests share: memory as a full walk measures it, and a keyspace
that records the keys its readiness hook is told about."""

from __future__ import annotations

from jobcached.cache import Keyspace
from jobcached.cache.memory import entry_size_check
from jobcached.clock import ManualClock


def walked(ks: Keyspace) -> int:
    """`used_memory` as a walk of every entry finds it (what the accounting must agree with)."""
    return sum(entry_size_check(key, e.value, volatile=e.expire_at != 0)
               for shard in ks.shards for key, e in shard.data.items())


def keyspace_with_readiness() -> tuple[Keyspace, list[bytes]]:
    """A keyspace whose readiness hook records the keys it is told about."""
    ks = Keyspace(ManualClock(1_000_000), shards=2)
    ready: list[bytes] = []
    ks.on_ready = ready.append
    return ks, ready
