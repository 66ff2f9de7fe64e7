"""Redis 7 key specifications: where a command's keys are in its arguments.

Why: cluster-aware clients, ACL key patterns, scripts' KEYS checks and COMMAND GETKEYS all need
the keys of a command without running it. Redis 7 describes them per command as a list of key
specs: a *begin search* (a fixed argument index, or the argument after a keyword) and a *find
keys* step (a range up to a last key, or a count read from an argument), with flags saying what
the command does to those keys (RW / RO / OW / RM, access / update / insert / delete). Redis
commands take theirs from Redis' own table (redis_table.py); job commands declare theirs here
(JOB.PUSH's queue is its key; JOB.FETCH's queues follow the QUEUES keyword).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobcached.net.replies import SetOf, Simple


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One key spec. `keyword` empty means begin at `index`; `keynum` means the argument at
    `keynumidx` (after the begin) counts the keys that start `firstkey` later."""

    flags: tuple[str, ...]
    index: int = 0
    keyword: str = ""
    startfrom: int = 1
    lastkey: int = 0
    keystep: int = 1
    limit: int = 0
    keynum: bool = False
    keynumidx: int = 0
    firstkey: int = 1
    unknown: bool = False
    notes: str = ""

    def reply(self) -> dict[bytes, Any]:
        """The COMMAND INFO map, field for field as Redis 7.0 writes it."""
        out: dict[bytes, Any] = {}
        if self.notes:
            out[b"notes"] = self.notes.encode()
        out[b"flags"] = SetOf([Simple(f.encode()) for f in self.flags])
        if self.unknown:
            out[b"begin_search"] = {b"type": b"unknown", b"spec": {}}
        elif self.keyword:
            out[b"begin_search"] = {b"type": b"keyword", b"spec": {
                b"keyword": self.keyword.encode(), b"startfrom": self.startfrom}}
        else:
            out[b"begin_search"] = {b"type": b"index", b"spec": {b"index": self.index}}
        if self.unknown:
            out[b"find_keys"] = {b"type": b"unknown", b"spec": {}}
        elif self.keynum:
            out[b"find_keys"] = {b"type": b"keynum", b"spec": {
                b"keynumidx": self.keynumidx, b"firstkey": self.firstkey,
                b"keystep": self.keystep}}
        else:
            out[b"find_keys"] = {b"type": b"range", b"spec": {
                b"lastkey": self.lastkey, b"keystep": self.keystep, b"limit": self.limit}}
        return out

    @classmethod
    def from_table(cls, spec: dict[str, Any]) -> KeySpec:
        """A spec from Redis' table (redis_table.py's decoded JSON)."""
        begin, find = spec["begin_search"], spec["find_keys"]
        flags = tuple(f["$status"] for f in spec["flags"]["$set"])
        fields: dict[str, Any] = {"flags": flags, "notes": spec.get("notes", "")}
        if begin["type"] == "index":
            fields["index"] = begin["spec"]["index"]
        elif begin["type"] == "keyword":
            fields["keyword"] = begin["spec"]["keyword"]
            fields["startfrom"] = begin["spec"]["startfrom"]
        else:
            fields["unknown"] = True
        if find["type"] == "range":
            fields.update(find["spec"])
        elif find["type"] == "keynum":
            fields.update(keynum=True, **find["spec"])
        else:
            fields["unknown"] = True
        return cls(**fields)

    def find(self, argv: list[bytes]) -> list[int] | None:
        """Indexes of the keys in argv (the command name at 0); [] when the begin keyword is
        absent, None when the arguments contradict the spec (Redis' "invalid arguments")."""
        argc = len(argv)
        if self.unknown:
            return []
        if self.keyword:
            first = self._after_keyword(argv)
            if first is None:
                return []
        else:
            first = self.index
        if self.keynum:
            at = first + self.keynumidx
            if at >= argc:
                return None
            try:
                count = int(argv[at])
            except ValueError:
                return None
            if count < 0:
                return None
            first += self.firstkey
            last = first + count - 1
            step = self.keystep
        else:
            if self.lastkey >= 0:
                last = first + self.lastkey
            elif self.limit <= 1:
                last = argc + self.lastkey
            else:
                last = first + ((argc - first) // self.limit + self.lastkey)
            step = self.keystep
        keys: list[int] = []
        index = first
        while index <= last:
            if index >= argc or index < first:
                return None
            keys.append(index)
            index += step
        return keys

    def _after_keyword(self, argv: list[bytes]) -> int | None:
        keyword = self.keyword.encode().upper()
        argc = len(argv)
        if self.startfrom >= 0:
            positions: range = range(self.startfrom, argc - 1)
        else:
            positions = range(argc + self.startfrom, 0, -1)
        for i in positions:
            if 0 < i < argc and argv[i].upper() == keyword:
                return i + 1
        return None


def at_index(index: int, *flags: str) -> tuple[KeySpec, ...]:
    """One key at a fixed argument index (JOB.PUSH queue ...)."""
    return (KeySpec(flags, index=index),)


def after_keyword(keyword: str, *flags: str, lastkey: int = 0) -> tuple[KeySpec, ...]:
    """Keys after a keyword: one by default, all up to the end with lastkey=-1."""
    return (KeySpec(flags, keyword=keyword, lastkey=lastkey),)
