"""The replication backlog: the effect stream as bytes, numbered by byte offset, as Redis does.

Every mutation (a cache command rewritten so it means the same whenever it is applied, a
`JOB.RECORD <body>` of the job engine) reaches here through the one effect sink
(server/effects.py). While the backlog is active each effect is encoded once as the RESP array
a follower reads (`*3\\r\\n$3\\r\\nSET...`), and the offset (`master_repl_offset`) advances by its
length, so "offset N" means the same byte on the leader and on every follower. The encoded
chunks are kept in a ring bounded by `repl-backlog-size`, from which a follower that reconnects
continues (PSYNC) if the ring still reaches back to its offset.

The ring is active only once a follower attached, as Redis creates its backlog when the first
replica connects: with no follower nobody can ever ask for a record, and keeping records alive
cost a write 15% of the server's user CPU (SET at -P 1: the argv lists outlive the read that
made them, so their memory goes cold before it is freed). Inactive, `append` only counts the
effect (`count`) and the offset does not move (as Redis' does not without a backlog).

`feed`, set by the leader (server/leader.py) while followers are attached, is called once
per burst of effects (the leader sends what accumulated in `unsent` at the end of the loop
turn, one write per follower rather than one per effect). Pure: no I/O.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable

import hiredis
from hiredis import pack_command

#: The stream's entry for a job engine record: a follower applies the body through its engine.
JOB_RECORD = b"JOB.RECORD"
#: Redis' repl-backlog-size default.
DEFAULT_BACKLOG_BYTES = 1024 * 1024
#: Bytes fed to a hiredis parser at a time (see `parse_commands`).
PARSE_SLICE_BYTES = 16 * 1024


def new_replid() -> str:
    """A replication id: 40 hex characters, new at each start and promotion (as Redis)."""
    return secrets.token_hex(20)


def encode_command(argv: list[bytes]) -> bytes:
    """An effect as a follower reads it: a RESP array of bulk strings. hiredis' encoder (C)
    costs half of the same in Python (0.7 against 1.2 us for a SET, measured), and this runs
    for every effect while a follower is attached."""
    packed: bytes = pack_command(tuple(argv))  # type: ignore[arg-type]  # stub: a 1-tuple
    return packed


def parse_commands(parser: hiredis.Reader, data: bytes, out: list[list[bytes]]) -> None:
    """Feed `data` to `parser` and append the whole commands it completes to `out`.

    In slices of PARSE_SLICE_BYTES: hiredis moves its unread bytes to the front of its buffer
    after each reply it returns, so a large buffer of small commands costs quadratic time
    (13 s for a 22 MB snapshot of 200,000 keys fed at once; 0.1 s in 16 KB slices)."""
    for start in range(0, len(data), PARSE_SLICE_BYTES):
        parser.feed(data, start, min(PARSE_SLICE_BYTES, len(data) - start))
        while (item := parser.gets()) is not False:
            out.append(item)


def decode_commands(data: bytes) -> list[list[bytes]]:
    """The effects in `data`, a run of whole encoded commands (tests, debugging)."""
    out: list[list[bytes]] = []
    parse_commands(hiredis.Reader(), data, out)
    return out


class Backlog:
    """Bounded by bytes: the oldest chunks fall off when a new one does not fit."""

    def __init__(self, max_bytes: int = DEFAULT_BACKLOG_BYTES, active: bool = False) -> None:
        self.max_bytes = max_bytes
        self.active = active  # keeping records (a follower attached); see the module docstring
        self.replid = new_replid()
        #: the previous replication id and the offset where it ended (PSYNC2 after a
        #: promotion: followers of the old leader may continue up to there)
        self.replid2 = "0" * 40
        self.second_offset = -1
        self.chunks: deque[tuple[int, bytes]] = deque()  # (offset of its first byte, bytes)
        self.size = 0
        self.offset = 0  # master_repl_offset: bytes of effects so far
        #: effects appended so far, kept or not (tests count what a command propagated)
        self.count = 0
        #: set while followers are attached: called on the first effect after a `take_unsent`
        self.feed: Callable[[], None] | None = None
        self.unsent: list[bytes] = []

    @property
    def first_offset(self) -> int:
        """repl_backlog_first_byte_offset: the oldest byte the ring still holds."""
        return self.chunks[0][0] if self.chunks else self.offset

    @property
    def histlen(self) -> int:
        return self.offset - self.first_offset

    def append(self, argv: list[bytes]) -> int:
        """Add one effect if the ring is active; returns the offset where it starts."""
        offset = self.offset
        self.count += 1
        if not self.active:
            return offset
        data = encode_command(argv)
        chunks = self.chunks
        chunks.append((offset, data))
        self.size += len(data)
        self.offset = offset + len(data)
        while self.size > self.max_bytes and len(chunks) > 1:
            self.size -= len(chunks.popleft()[1])
        if self.feed is not None:
            if not self.unsent:
                self.feed()
            self.unsent.append(data)
        return offset

    def take_unsent(self) -> bytes:
        """The effects appended since the last call, for the attached followers."""
        data = b"".join(self.unsent)
        self.unsent = []
        return data

    def activate(self) -> None:
        """Start keeping records: a follower attached (for the first time, or again)."""
        self.active = True

    def bytes_since(self, offset: int) -> bytes | None:
        """The stream from `offset` on, or None if the ring does not reach back that far or
        `offset` is not where an effect starts."""
        if not self.active or not self.first_offset <= offset <= self.offset:
            return None
        if offset == self.offset:
            return b""
        found: list[bytes] = []
        for start, data in reversed(self.chunks):
            if start < offset:
                return None
            found.append(data)
            if start == offset:
                break
        found.reverse()
        return b"".join(found)

    def since(self, offset: int) -> list[list[bytes]] | None:
        """The effects from `offset` on, decoded (tests and debugging)."""
        data = self.bytes_since(offset)
        return None if data is None else decode_commands(data)

    def last(self, count: int = 1) -> list[list[bytes]]:
        """The newest `count` effects (tests and debugging)."""
        return [decode_commands(data)[0] for _, data in list(self.chunks)[-count:]] if count \
            else []

    def new_history(self) -> None:
        """A promotion: a new replication id, the old one kept with the offset where it
        ended, so the old leader's other followers can continue from here (PSYNC2)."""
        self.replid2 = self.replid
        self.second_offset = self.offset + 1
        self.replid = new_replid()

    def reset(self, replid: str, offset: int) -> None:
        """A follower that loaded a full sync: its stream now is the leader's, from
        `offset`, under the leader's id; what the ring held is another history."""
        self.replid = replid
        self.replid2 = "0" * 40
        self.second_offset = -1
        self.chunks.clear()
        self.size = 0
        self.unsent = []
        self.offset = offset
