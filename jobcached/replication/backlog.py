"""The replication backlog: a bounded ring of effect records with byte offsets.

Every mutation of the cache (and, through the same choke point, later the job engine) becomes
one effect record: the command rewritten so it means the same thing whenever it is applied
(`SET k v PXAT <ms>`, never a relative EX; SPOP becomes SREM of the members it popped). Records
are appended here with a running offset, as Redis' `repl_backlog`, so a follower that reconnects
can continue from the offset it has if that offset is still in the ring. Pure: no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import msgpack

#: Redis' repl-backlog-size default.
DEFAULT_BACKLOG_BYTES = 1024 * 1024


@dataclass(slots=True)
class Effect:
    offset: int  # offset of the first byte of this record in the replication stream
    body: bytes  # msgpack of the argv list


class Backlog:
    """Bounded by bytes: the oldest records fall off when a new one does not fit."""

    def __init__(self, max_bytes: int = DEFAULT_BACKLOG_BYTES) -> None:
        self.max_bytes = max_bytes
        self.records: deque[Effect] = deque()
        self.size = 0
        self.next_offset = 0  # the master_repl_offset

    def append(self, argv: list[bytes]) -> int:
        """Add one effect; returns its offset."""
        body = msgpack.packb(argv, use_bin_type=True)
        offset = self.next_offset
        self.records.append(Effect(offset, body))
        self.size += len(body)
        self.next_offset += len(body)
        while self.size > self.max_bytes and len(self.records) > 1:
            self.size -= len(self.records.popleft().body)
        return offset

    def since(self, offset: int) -> list[list[bytes]] | None:
        """The effects from `offset` on, or None if the ring no longer reaches back that far."""
        if offset == self.next_offset:
            return []
        if not self.records or offset < self.records[0].offset or offset > self.next_offset:
            return None
        return [msgpack.unpackb(e.body, raw=True) for e in self.records if e.offset >= offset]

    def last(self, count: int = 1) -> list[list[bytes]]:
        """The newest `count` effects (for tests and debugging)."""
        return [msgpack.unpackb(e.body, raw=True) for e in list(self.records)[-count:]]
