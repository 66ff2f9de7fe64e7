"""SSCAN's snapshots of large sets, kept by id, least recently used dropped first.

Why a store of snapshots: a Python set has no positions to put in a cursor, so SSCAN's cursor 0
takes a snapshot (the list of members then) and later cursors name it by id (see
commands/sets.py for the theory of operation). The store is a bounded cache, not state: a
cursor whose snapshot was dropped re-snapshots its set. There is one per server
(`Databases.set_snapshots`): a cursor names no database, and a snapshot is found again only
for the same key and the same set object.
"""

from __future__ import annotations

from collections import OrderedDict

#: Live SSCAN snapshots kept at once; each costs 8 bytes per member of its set.
SSCAN_MAX_SNAPSHOTS = 64
#: Snapshot members kept in total (64 MB of references); older snapshots are dropped past it.
SSCAN_MAX_SNAPSHOT_MEMBERS = 8_000_000


class SetSnapshots:
    """SSCAN snapshots by id, least recently used first (see the module docstring)."""

    def __init__(self) -> None:
        self.by_id: OrderedDict[int, tuple[bytes, int, list[bytes]]] = OrderedDict()
        self.members = 0
        self.next_id = 1

    def take(self, key: bytes, members: set[bytes], snap_id: int = 0) -> tuple[int, list[bytes]]:
        if not snap_id:
            snap_id = self.next_id
            self.next_id = self.next_id % (2**31 - 1) + 1
        self.drop(snap_id)
        snapshot = list(members)
        self.by_id[snap_id] = (key, id(members), snapshot)
        self.members += len(snapshot)
        while len(self.by_id) > 1 and (len(self.by_id) > SSCAN_MAX_SNAPSHOTS
                                       or self.members > SSCAN_MAX_SNAPSHOT_MEMBERS):
            self.drop(next(iter(self.by_id)))
        return snap_id, snapshot

    def find(self, snap_id: int, key: bytes, members: set[bytes]) -> list[bytes] | None:
        entry = self.by_id.get(snap_id)
        if entry is None or entry[0] != key or entry[1] != id(members):
            return None
        self.by_id.move_to_end(snap_id)
        return entry[2]

    def drop(self, snap_id: int) -> None:
        entry = self.by_id.pop(snap_id, None)
        if entry is not None:
            self.members -= len(entry[2])
