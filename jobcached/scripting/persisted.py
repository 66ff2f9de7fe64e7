"""The durable copy of the function libraries: `functions.rdb` in the data directory.

Redis keeps functions in its RDB and AOF; jobcached's cache has neither, so FUNCTION LOAD,
DELETE, FLUSH and RESTORE rewrite this one file after they change the libraries, and the
server loads it back at start, before it accepts commands.

Why a snapshot file and not records in the job WAL: libraries are few, small and rarely
changed, and a library is only ever wanted whole, so rewriting all of them on each change
costs nothing that matters, where WAL records would need a new record kind, its replay, a
place in every compaction snapshot and a format version step, all to rebuild the same small
set. The file holds exactly FUNCTION DUMP's payload (RDB function records, RDB version,
CRC64: see rdbdump.py), so its checksum guards it and `redis-cli FUNCTION RESTORE` accepts a
copy of it. It is written as WAL files are: a temporary file, fsync, rename over the old
one, fsync of the directory, so a crash leaves the old set or the new one, never a mix.
"""

from __future__ import annotations

import os

from jobcached.persistence.wal import RealFs
from jobcached.scripting import rdbdump

FILE_NAME = "functions.rdb"
TMP_SUFFIX = ".tmp"


def save(path: str, codes: list[bytes], fs: RealFs | None = None) -> None:
    """Replace the file at `path` with these libraries' codes (raises OSError)."""
    fs = fs or RealFs()
    tmp = path + TMP_SUFFIX
    fd = fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        fs.write(fd, rdbdump.dump(codes))
        fs.fsync(fd)
    finally:
        os.close(fd)
    fs.rename(tmp, path)
    fs.fsync_dir(os.path.dirname(path) or ".")


def load(path: str) -> list[bytes]:
    """The libraries' codes saved at `path`; none if there is no file yet. Raises OSError
    or rdbdump.PayloadError (a damaged file)."""
    try:
        with open(path, "rb") as file:
            payload = file.read()
    except FileNotFoundError:
        return []
    return rdbdump.load(payload)
