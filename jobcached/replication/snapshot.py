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

The same commands make the cache snapshot file (SAVE, BGSAVE, `cache-persistence snapshot`;
server/saving.py decides what goes in it), framed so that a reader can tell a whole file from
a torn or damaged one, which a run of commands alone cannot (a cut between two commands
parses cleanly):

    JOBCACHED-SNAPSHOT 1 <unix ms written>            the format and its version
    ...the commands...
    END <commands> <crc32 of every byte before END, 8 hex digits>

It is written as the WAL's files are: a temporary file, fsync, rename over the old one, fsync
of the directory, so a crash leaves the old snapshot or the new one, never a part of one.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import hiredis

from jobcached.cache.rdbformat import seal
from jobcached.cache.rdbvalue import dump_value
from jobcached.errors import SnapshotError
from jobcached.jobs.records import encode_record
from jobcached.replication.backlog import JOB_RECORD, encode_command, parse_commands

if TYPE_CHECKING:
    from jobcached.cache.keyspace import Keyspace
    from jobcached.jobs.engine import JobEngine

#: Encoded commands gathered before one write to the payload file.
WRITE_CHUNK_BYTES = 1024 * 1024
#: Commands written between two checks that the server still runs (see forkwrite.py).
CHECK_EVERY_COMMANDS = 10_000
#: The first command of a snapshot file names its format, then its version.
SNAPSHOT_MAGIC = b"JOBCACHED-SNAPSHOT"
SNAPSHOT_VERSION = b"1"
#: The last command: how many commands came between, and their checksum.
SNAPSHOT_END = b"END"
#: The bytes every snapshot file begins with (its header without the time).
_HEADER_START = b"*3\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
    len(SNAPSHOT_MAGIC), SNAPSHOT_MAGIC, len(SNAPSHOT_VERSION), SNAPSHOT_VERSION)


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


def expire_at_of(argv: list[bytes]) -> int:
    """The absolute expiry (unix ms, 0 for none) of a key command `snapshot_commands` made;
    0 for the others."""
    if argv[0] == b"RESTORE":
        return int(argv[2])
    if argv[0] == b"SET" and len(argv) == 5:
        return int(argv[4])
    return 0


def write_payload(path: str, commands: Iterator[list[bytes]],
                  check_parent: Callable[[], None]) -> int:
    """Write `commands` to `path`, encoded; the number of commands. Run in the forked child."""
    with open(path, "wb") as out:
        count, _ = write_commands(out, commands, check_parent)
    return count


def write_commands(out: BinaryIO, commands: Iterator[list[bytes]],
                   check_parent: Callable[[], None], crc: int = 0) -> tuple[int, int]:
    """Write `commands` to `out`, encoded, in chunks; their number, and the CRC-32 of the
    bytes written continued from `crc`."""
    count = 0
    buffered: list[bytes] = []
    size = 0
    for argv in commands:
        data = encode_command(argv)
        buffered.append(data)
        size += len(data)
        count += 1
        if size >= WRITE_CHUNK_BYTES:
            chunk = b"".join(buffered)
            out.write(chunk)
            crc = zlib.crc32(chunk, crc)
            buffered, size = [], 0
        if count % CHECK_EVERY_COMMANDS == 0:
            check_parent()
    chunk = b"".join(buffered)
    out.write(chunk)
    return count, zlib.crc32(chunk, crc)


def write_snapshot(path: str, commands: Iterator[list[bytes]], now_ms: int,
                   check_parent: Callable[[], None]) -> int:
    """Replace the snapshot file at `path` with `commands`, framed (see the module docstring);
    the number of commands. Raises OSError, leaving the old file as it was. The temporary
    file's name carries the writer's pid, so a child killed half way (the server stopping)
    never shares it with the save that follows."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as out:
            header = encode_command([SNAPSHOT_MAGIC, SNAPSHOT_VERSION, b"%d" % now_ms])
            out.write(header)
            count, crc = write_commands(out, commands, check_parent, zlib.crc32(header))
            out.write(encode_command([SNAPSHOT_END, b"%d" % count, b"%08x" % crc]))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return count


def read_snapshot(path: str) -> list[list[bytes]] | None:
    """The commands of the snapshot file at `path`, None when there is none. Raises
    SnapshotError saying what is wrong when the file is not a snapshot, is torn (it ends
    before its END) or damaged (its checksum or count differ), and OSError when it cannot
    be read."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return None
    if not data.startswith(_HEADER_START):
        raise SnapshotError(f"not a jobcached cache snapshot (it does not begin with "
                            f"{SNAPSHOT_MAGIC.decode()} {SNAPSHOT_VERSION.decode()})")
    parser = hiredis.Reader()
    commands: list[list[bytes]] = []
    try:
        parse_commands(parser, data, commands)
    except hiredis.ProtocolError as exc:
        raise SnapshotError(f"damaged: {exc}") from None
    if not all(isinstance(argv, list) and argv for argv in commands):
        raise SnapshotError("damaged: it holds something other than commands")
    end = commands[-1] if len(commands) > 1 else []
    if parser.has_data() or end[:1] != [SNAPSHOT_END] or len(end) != 3:
        raise SnapshotError(f"torn: it ends after {len(data)} bytes, before its "
                            f"{SNAPSHOT_END.decode()} (a copy cut short, or a full disk)")
    body = data[:len(data) - len(encode_command(end))]
    if end[1] != b"%d" % (len(commands) - 2) or end[2] != b"%08x" % zlib.crc32(body):
        raise SnapshotError("damaged: its checksum or command count does not match its "
                            "contents")
    return commands[1:-1]
