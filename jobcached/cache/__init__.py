"""The cache engine: a sharded keyspace with TTLs and Redis-style eviction. No sockets, no asyncio.

Command handlers use `Keyspace` (keyspace.py) and `memory.item_size` for in-place container
writes; `ZSet` is the sorted-set value; `glob_match` / `compile_glob` implement MATCH patterns.
"""

from jobcached.cache.eviction import POLICIES
from jobcached.cache.glob import compile_glob, glob_match
from jobcached.cache.keyspace import Keyspace
from jobcached.cache.memory import item_size
from jobcached.cache.slots import SLOTS, key_slot
from jobcached.cache.zset import ZSet, lex_bound

__all__ = [
    "POLICIES",
    "SLOTS",
    "Keyspace",
    "ZSet",
    "compile_glob",
    "glob_match",
    "item_size",
    "key_slot",
    "lex_bound",
]
