"""ACL LOG: the latest ACL refusals and failed AUTHs, as Redis 7.0 keeps them.

Why apart from acl.py: the log is about events (who was refused what, when, from which
connection), not about rules; entries alike within a minute are merged into one with a count.
"""

from __future__ import annotations

from dataclasses import dataclass

#: entries alike within this many ms are merged (Redis' 60 s)
LOG_MERGE_MS = 60_000


@dataclass(slots=True)
class LogEntry:
    """One ACL LOG entry: a refusal, counted again while it repeats."""

    reason: str
    context: str
    object: bytes
    username: bytes
    created_ms: int
    client_info: str
    count: int = 1


class AclLog:
    """ACL LOG: newest first, alike entries merged as Redis' addACLLogEntry does."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []

    def add(self, entry: LogEntry, max_len: int) -> None:
        """Log a refusal, keeping the newest `max_len` (Redis' acllog-max-len)."""
        for i, old in enumerate(self.entries):
            if (old.reason, old.context, old.object, old.username) == (
                    entry.reason, entry.context, entry.object, entry.username) and (
                    entry.created_ms - old.created_ms < LOG_MERGE_MS):
                entry.count = old.count + 1
                del self.entries[i]
                break
        self.entries.insert(0, entry)
        del self.entries[max_len:]
