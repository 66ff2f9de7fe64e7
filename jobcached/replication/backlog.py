"""The replication backlog: a bounded ring of effect records with byte offsets.

Every mutation of the cache (and, through the same choke point, later the job engine) becomes
one effect record: the command rewritten so it means the same thing whenever it is applied
(`SET k v PXAT <ms>`, never a relative EX; SPOP becomes SREM of the members it popped). Records
are kept here in order, numbered by a running offset (one per record, as Kafka numbers
messages), so a follower that reconnects can continue from the offset it has if the ring still
reaches back that far. The argv lists are kept as they are (no encoding on the hot path); the
size bound counts their payload bytes. Pure: no I/O.

The ring keeps records only while it is active, as Redis creates its backlog when the first
replica connects: with no follower, no one can ever ask for a record, and keeping a megabyte
of them alive cost a write 15% of the server's user CPU (SET at -P 1, measured with
`repl-backlog-size` 1000 against 1mb: the argv lists outlive the read that made them, so their
memory goes cold before it is freed). The offset counts every effect either way.
"""

from __future__ import annotations

from collections import deque

#: Redis' repl-backlog-size default.
DEFAULT_BACKLOG_BYTES = 1024 * 1024
#: Bytes charged per record on top of its arguments (list and tuple overhead, roughly).
RECORD_OVERHEAD_BYTES = 64


class Backlog:
    """Bounded by bytes: the oldest records fall off when a new one does not fit."""

    def __init__(self, max_bytes: int = DEFAULT_BACKLOG_BYTES, active: bool = False) -> None:
        self.max_bytes = max_bytes
        self.active = active  # keeping records (a follower attached); see the module docstring
        self.records: deque[tuple[int, list[bytes], int]] = deque()  # (offset, argv, size)
        self.size = 0
        self.next_offset = 0  # the master_repl_offset: records appended so far

    @property
    def first_offset(self) -> int:
        return self.records[0][0] if self.records else self.next_offset

    def append(self, argv: list[bytes]) -> int:
        """Count one effect, and keep it if the ring is active; returns its offset."""
        offset = self.next_offset
        if not self.active:
            self.next_offset = offset + 1
            return offset
        size = sum(map(len, argv)) + RECORD_OVERHEAD_BYTES
        self.records.append((offset, argv, size))
        self.size += size
        self.next_offset = offset + 1
        records = self.records
        while self.size > self.max_bytes and len(records) > 1:
            self.size -= records.popleft()[2]
        return offset

    def activate(self) -> None:
        """Start keeping records: a follower attached (for the first time, or again)."""
        self.active = True

    def since(self, offset: int) -> list[list[bytes]] | None:
        """The effects from `offset` on, or None if the ring no longer reaches back that far."""
        if not self.first_offset <= offset <= self.next_offset:
            return None
        skip = offset - self.first_offset
        return [argv for _, argv, _ in list(self.records)[skip:]]

    def last(self, count: int = 1) -> list[list[bytes]]:
        """The newest `count` effects (for tests and debugging)."""
        return [argv for _, argv, _ in list(self.records)[-count:]]
