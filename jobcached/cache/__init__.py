"""The cache engine: a sharded keyspace with TTLs and Redis-style eviction. No sockets, no asyncio.

Command handlers read through `Keyspace` (keyspace.py) and write containers through one module
per type: hashes.py, lists.py, sets.py, zsets.py, streams.py (type checks, memory accounting,
removal of an emptied container, readiness for blocked clients, which the keyspace reports
itself for every key it adds); `ZSet` (zset.py) is the sorted-set value;
`glob_match` / `compile_glob` implement MATCH patterns.
DUMP / RESTORE payloads: rdbvalue.py and rdbstream.py (one encoding per type) over listpack.py
(Redis' compact blobs), rdbformat.py (lengths, strings, CRC64, the footer) and lzf.py.
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
