"""The full-sync payload: the whole dataset as the commands that rebuild it from nothing.

A follower that cannot continue from the backlog gets everything: every key of every database,
the function libraries and the job engine's state. The payload is a run of RESP commands, the
same language as the live stream that follows it, so the follower needs one parser and one
apply path for both (Redis sends an RDB file; its snapshot and stream are two formats):

    SELECT <db>                                       before the keys of each database
    SET <key> <value> [PXAT <expire-at-ms>]           a string
    RESTORE <key> <expire-at-ms or 0> <DUMP payload> REPLACE ABSTTL      any other type
    FUNCTION RESTORE <FUNCTION DUMP payload> FLUSH    when there are libraries
    JOB.RECORD <body>                                 `JobEngine.snapshot()`, encoded as the WAL

Strings, most of a cache, go as SET: a DUMP payload costs 30 us a key to build (LZF in
Python, CRC64) and as much to check on the other side, which made a snapshot of 300,000 small
strings take 24 s; SET rebuilds the same key (encodings are computed from the value). Keys
already past their TTL are left out (the leader's stream deletes them anyway). The writer
runs in a forked child (persistence/forkwrite.py), so it sees the state exactly as it was at
the fork: the point of the effect stream (`master_repl_offset`) the follower continues from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from jobcached.cache.rdbformat import seal
from jobcached.cache.rdbvalue import dump_value
from jobcached.jobs.records import encode_record
from jobcached.replication.backlog import JOB_RECORD, encode_command

if TYPE_CHECKING:
    from jobcached.cache.keyspace import Keyspace
    from jobcached.jobs.engine import JobEngine

#: Encoded commands gathered before one write to the payload file.
WRITE_CHUNK_BYTES = 1024 * 1024
#: Commands written between two checks that the server still runs (see forkwrite.py).
CHECK_EVERY_COMMANDS = 10_000


def snapshot_commands(dbs: Iterable[Keyspace], now: int, jobs: JobEngine | None,
                      functions: bytes | None) -> Iterator[list[bytes]]:
    """The commands that rebuild the databases `dbs` as they are at `now` (unix ms), the job
    engine and the function libraries (a FUNCTION DUMP payload, None when there are none)
    on an empty server (see the module docstring)."""
    for index, keyspace in enumerate(dbs):
        selected = False
        for shard in keyspace.shards:
            for key, entry in list(shard.data.items()):
                expire_at = entry.expire_at
                if expire_at and expire_at <= now:
                    continue
                if not selected:
                    yield [b"SELECT", str(index).encode()]
                    selected = True
                value = entry.value
                if type(value) is bytes:
                    yield ([b"SET", key, value, b"PXAT", str(expire_at).encode()] if expire_at
                           else [b"SET", key, value])
                else:
                    yield [b"RESTORE", key, str(expire_at).encode(), seal(dump_value(value)),
                           b"REPLACE", b"ABSTTL"]
    if functions is not None:
        yield [b"FUNCTION", b"RESTORE", functions, b"FLUSH"]
    if jobs is not None:
        for record in jobs.snapshot():
            yield [JOB_RECORD, encode_record(record)]


def write_payload(path: str, commands: Iterator[list[bytes]],
                  check_parent: Callable[[], None]) -> int:
    """Write `commands` to `path`, encoded; the number of commands. Run in the forked child."""
    count = 0
    buffered: list[bytes] = []
    size = 0
    with open(path, "wb") as out:
        for argv in commands:
            data = encode_command(argv)
            buffered.append(data)
            size += len(data)
            count += 1
            if size >= WRITE_CHUNK_BYTES:
                out.write(b"".join(buffered))
                buffered, size = [], 0
            if count % CHECK_EVERY_COMMANDS == 0:
                check_parent()
        out.write(b"".join(buffered))
    return count
