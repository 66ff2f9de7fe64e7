"""MEMORY and OBJECT REFCOUNT: where the memory goes, in Redis 7.0's reply shapes.

Why approximate figures under Redis' names: dashboards and redis-cli `--memkeys` read MEMORY
USAGE and MEMORY STATS by name. Our numbers come from the cache's own accounting
(cache/memory.py: every key carries an estimate of what CPython allocated for it) and from
/proc for the process, not from an allocator, so each field says the closest thing we know:
`dataset.bytes` is the keys' estimate plus the jobs', `allocator.*` is what the process holds.
Fields with nothing behind them here (cluster links, AOF buffer, replicas) are 0.
"""

from __future__ import annotations

import gc
from typing import Any

from jobcached.commands.args import to_int
from jobcached.commands.registry import READONLY, container, subcommand
from jobcached.errors import SyntaxErr
from jobcached.net.replies import OK, Verbatim
from jobcached.observability.info import rss_bytes
from jobcached.server.session import Session
from jobcached.server.state import ServerState

#: OBJECT REFCOUNT of a shared integer: Redis keeps one object for each of 0..9999
#: (OBJ_SHARED_INTEGERS) with refcount OBJ_SHARED_REFCOUNT (INT_MAX).
SHARED_INTEGERS = 10_000
SHARED_REFCOUNT = 2**31 - 1
#: maxmemory policies under which Redis stops sharing integers (each key needs its own LRU)
UNSHARED_POLICIES = ("allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu")

#: MEMORY DOCTOR's answer below this much data: too little to say anything (Redis' 5 MB).
DOCTOR_MIN_BYTES = 5 * 1024**2


@subcommand("OBJECT", "REFCOUNT", arity=3, flags=READONLY, keys=(2, 2, 1))
def object_refcount(s: Session, argv: list[bytes]) -> int | None:
    """OBJECT REFCOUNT key

    The reference count Redis would report: 2147483647 for a string holding an integer from 0
    to 9999 (Redis shares those objects, unless maxmemory is set with an LRU or LFU policy),
    1 otherwise.

    Reply: integer, or nil when the key does not exist.
    """
    ks = s.keyspace
    if not ks.exists(argv[2]):
        return None
    config = s.server.config
    if (ks.object_encoding(argv[2]) == "int"
            and not (config.maxmemory and config.maxmemory_policy in UNSHARED_POLICIES)):
        value = ks.get_string(argv[2])
        if value is not None and 0 <= int(value) < SHARED_INTEGERS:
            return SHARED_REFCOUNT
    return 1


container("MEMORY", group="server", summary="Memory usage of keys and of the server.")


@subcommand("MEMORY", "USAGE", arity=-3, flags=READONLY, keys=(2, 2, 1))
def memory_usage(s: Session, argv: list[bytes]) -> int | None:
    """MEMORY USAGE key [SAMPLES count]

    The estimated bytes the key costs: its value, its name and the bookkeeping around them
    (approximate: see cache/memory.py). The estimate is kept whole for every key, so SAMPLES is
    checked and accepted but nothing is sampled.

    Reply: integer, or nil when the key does not exist.
    Errors: `ERR syntax error` for another option or a negative count.
    """
    index = 3
    while index < len(argv):
        if argv[index].upper() != b"SAMPLES" or index + 1 >= len(argv):
            raise SyntaxErr()
        if to_int(argv[index + 1]) < 0:
            raise SyntaxErr()
        index += 2
    if not s.keyspace.exists(argv[2]):
        return None
    return s.keyspace.memory_usage(argv[2])


def _stats(server: ServerState) -> dict[bytes, Any]:
    """MEMORY STATS' fields (Redis 7.0's names and order) with our figures."""
    cache = server.dbs.info()
    dataset = cache["used_memory"] + server.jobs_memory()
    rss = rss_bytes()
    total = max(rss, dataset)
    keys = server.dbs.dbsize()
    overhead = total - dataset
    stats: dict[bytes, Any] = {
        b"peak.allocated": total, b"total.allocated": total, b"startup.allocated": overhead,
        b"replication.backlog": server.backlog.max_bytes, b"clients.slaves": 0,
        b"clients.normal": sum(c.conn.output_buffer_bytes() + c.conn.query_buffer_bytes()
                               for c in server.clients.values()),
        b"cluster.links": 0, b"aof.buffer": 0, b"lua.caches": 0, b"functions.caches": 0,
    }
    for number, ks in enumerate(server.dbs):
        if ks.dbsize():
            stats[f"db.{number}".encode()] = {
                b"overhead.hashtable.main": 0, b"overhead.hashtable.expires": 0,
                b"overhead.hashtable.slot-to-keys": 0}
    stats.update({
        b"overhead.total": overhead, b"keys.count": keys,
        b"keys.bytes-per-key": dataset // keys if keys else 0,
        b"dataset.bytes": dataset, b"dataset.percentage": 100.0 * dataset / total,
        b"peak.percentage": 100.0, b"allocator.allocated": total, b"allocator.active": total,
        b"allocator.resident": rss, b"allocator-fragmentation.ratio": 1.0,
        b"allocator-fragmentation.bytes": 0, b"allocator-rss.ratio": 1.0,
        b"allocator-rss.bytes": 0, b"rss-overhead.ratio": 1.0, b"rss-overhead.bytes": 0,
        b"fragmentation": rss / total if total else 1.0, b"fragmentation.bytes": rss - total,
    })
    return stats


@subcommand("MEMORY", "STATS", arity=2)
def memory_stats(s: Session, argv: list[bytes]) -> dict[bytes, Any]:
    """MEMORY STATS

    Memory figures under Redis 7.0's field names: the process' resident memory stands for the
    allocator's figures, the keys' and jobs' estimates for the dataset; fields with nothing
    behind them here are 0.

    Reply: map of field to integer, double, or (for `db.N`) a map.
    """
    return _stats(s.server)


@subcommand("MEMORY", "DOCTOR", arity=2)
def memory_doctor(s: Session, argv: list[bytes]) -> Verbatim:
    """MEMORY DOCTOR

    A short human report on memory use.

    Reply: verbatim string (a bulk string under RESP2).
    """
    stats = _stats(s.server)
    dataset = stats[b"dataset.bytes"]
    if dataset < DOCTOR_MIN_BYTES:
        text = ("Hi Sam, this instance is empty or is using very little memory, my issues "
                "detector can't be used in these conditions. Please, leave for your mission on "
                "Earth and fill it with some data. The new Sam and I will be back to our "
                "programming as soon as I finished rebooting.")
    else:
        text = (f"Sam, I have no memory problems to report: the dataset takes {dataset} bytes "
                f"of {stats[b'allocator.resident']} resident, {stats[b'keys.count']} keys.")
    return Verbatim((text + "\n").encode())


@subcommand("MEMORY", "MALLOC-STATS", arity=2)
def memory_malloc_stats(s: Session, argv: list[bytes]) -> Verbatim:
    """MEMORY MALLOC-STATS

    The Python allocator's view: the garbage collector's counts per generation (there is no
    jemalloc report to give).

    Reply: verbatim string (a bulk string under RESP2).
    """
    lines = ["___ Begin pymalloc statistics ___"]
    for generation, figures in enumerate(gc.get_stats()):
        lines.append(f"generation {generation}: " + " ".join(
            f"{name}={value}" for name, value in figures.items()))
    lines.append(f"resident bytes: {rss_bytes()}")
    lines.append("___ End pymalloc statistics ___")
    return Verbatim(("\n".join(lines) + "\n").encode())


@subcommand("MEMORY", "PURGE", arity=2)
def memory_purge(s: Session, argv: list[bytes]) -> Any:
    """MEMORY PURGE

    Run a full garbage collection, so that freed memory can go back to the system.

    Reply: `OK`.
    """
    gc.collect()
    return OK
