"""A follower's place in its leader's stream, kept across a clean restart with the cache it
stands for, so the restarted follower continues from the backlog instead of a full sync.

Redis keeps `repl-id` and `repl-offset` in its RDB file; a replica restarted from that RDB asks
`PSYNC <replid> <offset+1>`. The offset is worth something only if everything the follower
holds at its next start is exactly what the stream up to that offset built. Here the jobs are
durable in the follower's own WAL (every `JOB.RECORD` of the stream is appended to it) and the
function libraries in `functions.rdb` (rewritten at each change), but the cache lives in memory
only. So at a clean stop, once the follower's link is closed and its WAL drained, it writes
this file: a header command, then its cache as the same commands a full sync's payload carries
(snapshot.py, without jobs and functions, which are on disk already):

    JOBCACHED.RESUME 1 <replid> <offset> <selected db>
    SELECT <db> / RESTORE <key> <expire-at-ms or 0> <DUMP payload> REPLACE ABSTTL ...

Written in the stopping process itself (nothing else runs by then; about 3 s per million
string keys), to a temporary name, fsynced, renamed: a torn file never looks whole. At the next
start a follower reads it and deletes it before it applies anything else, so the file never
outlives the state it describes: a crash later leaves no file and the start after that syncs
in full, never claiming an offset its data is not at. A leader that no longer has the offset
in its backlog (or that restarted: a new replication id) answers FULLRESYNC and the loaded
cache is replaced as on any full sync. The file is not written by a server that is not a
follower, that never loaded a sync, or that stopped in the middle of loading one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import hiredis

from jobcached.replication.backlog import parse_commands
from jobcached.replication.snapshot import snapshot_commands, write_payload

if TYPE_CHECKING:
    from collections.abc import Iterable

    from jobcached.cache.keyspace import Keyspace

FILE_NAME = "repl-resume.bin"
HEADER = b"JOBCACHED.RESUME"
VERSION = b"1"


class ResumeError(Exception):
    """The file is not one this build wrote (damaged, or another version)."""


@dataclass
class Place:
    """Where a follower was in its leader's stream, and the cache it had built there."""

    replid: str
    offset: int
    db: int
    commands: list[list[bytes]]


def save(path: str, replid: str, offset: int, db: int, dbs: Iterable[Keyspace],
         now_ms: int) -> int:
    """Write the file (see the module docstring); the number of commands in it."""
    def commands() -> Iterator[list[bytes]]:
        yield [HEADER, VERSION, replid.encode(), str(offset).encode(), str(db).encode()]
        yield from snapshot_commands(dbs, now_ms, None, None)

    tmp = path + ".tmp"
    count = write_payload(tmp, commands(), lambda: None)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return count


def take(path: str) -> Place | None:
    """Read the file and delete it; None if there is none. ResumeError if it is damaged
    (deleted too: the caller syncs in full)."""
    try:
        with open(path, "rb") as source:
            data = source.read()
    except FileNotFoundError:
        return None
    finally:
        discard(path)
    parser = hiredis.Reader()
    commands: list[list[bytes]] = []
    try:
        parse_commands(parser, data, commands)
    except hiredis.ProtocolError as exc:
        raise ResumeError(f"unreadable: {exc}") from None
    if parser.has_data():
        raise ResumeError("it ends inside a command")
    if not commands or len(commands[0]) != 5 or commands[0][:2] != [HEADER, VERSION]:
        raise ResumeError("no header of this version")
    _, _, replid, offset, db = commands[0]
    try:
        return Place(replid.decode(), int(offset), int(db), commands[1:])
    except ValueError:
        raise ResumeError("a malformed header") from None


def discard(path: str) -> None:
    """Remove the file (and a temporary one a killed server left), if there."""
    for name in (path, path + ".tmp"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
