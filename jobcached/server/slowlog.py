"""The slow log: the last commands that ran longer than `slowlog-log-slower-than` microseconds.

Redis' SLOWLOG, with its reply shape and its bounds: at most `slowlog-max-len` entries (the
oldest are dropped), and each entry keeps a bounded copy of the arguments (32 of them, each cut
to 128 bytes with a note saying how much was cut), so a slow `SET` of a 500 MB value costs a few
hundred bytes here. Passwords are never kept: AUTH, HELLO ... AUTH, ACL SETUSER and CONFIG SET
requirepass log `(redacted)` in their place.

The dispatcher checks `duration_us >= threshold_us` on every call (one comparison); this module
runs only for the commands that pass it.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass

#: Arguments kept per entry; the last one kept says how many more there were (Redis' limit).
MAX_ARGS = 32
#: Bytes kept per argument; the rest is replaced by a note of its length (Redis' limit).
MAX_ARG_BYTES = 128
#: What stands in for a password.
REDACTED = b"(redacted)"
#: Commands not logged: EXEC's queued commands are logged one by one instead (as Redis).
NOT_LOGGED = frozenset({"exec"})


@dataclass(slots=True)
class SlowEntry:
    """One SLOWLOG GET entry: Redis' six fields."""

    id: int
    time_s: int
    duration_us: int
    argv: list[bytes]
    client_addr: bytes
    client_name: bytes

    def reply(self) -> list[object]:
        return [self.id, self.time_s, self.duration_us, self.argv, self.client_addr,
                self.client_name]


def bounded_argv(argv: list[bytes]) -> list[bytes]:
    """A copy of argv within MAX_ARGS and MAX_ARG_BYTES, as Redis' slowlogCreateEntry makes."""
    kept = argv if len(argv) <= MAX_ARGS else argv[: MAX_ARGS - 1]
    out = []
    for arg in kept:
        if len(arg) > MAX_ARG_BYTES:
            arg = arg[:MAX_ARG_BYTES] + b"... (%d more bytes)" % (len(arg) - MAX_ARG_BYTES)
        out.append(bytes(arg))
    if len(argv) > MAX_ARGS:
        out.append(b"... (%d more arguments)" % (len(argv) - MAX_ARGS + 1))
    return out


def redacted(fullname: str, argv: list[bytes]) -> list[bytes]:
    """argv with secrets replaced by REDACTED."""
    if fullname == "auth":
        return [argv[0], *[REDACTED] * (len(argv) - 1)]
    if fullname == "acl|setuser":  # the user name and every rule, as Redis 7.0
        return [*argv[:2], *[REDACTED] * (len(argv) - 2)]
    if fullname == "hello":
        out = list(argv)
        for i, arg in enumerate(argv):
            if arg.upper() == b"AUTH":
                out[i + 1 : i + 3] = [REDACTED] * len(out[i + 1 : i + 3])
        return out
    if fullname == "config|set":
        out = list(argv)
        for i in range(2, len(argv) - 1, 2):
            if argv[i].lower() == b"requirepass":
                out[i + 1] = REDACTED
        return out
    return argv


class SlowLog:
    """The entries, newest first, and the threshold the dispatcher compares against."""

    def __init__(self, log_slower_than_us: int = 10_000, max_len: int = 128) -> None:
        self.entries: deque[SlowEntry] = deque()
        self.next_id = 0
        self.threshold_us = sys.maxsize
        self.max_len = max_len
        self.configure(log_slower_than_us, max_len)

    def configure(self, log_slower_than_us: int, max_len: int) -> None:
        """Apply the config keys; -1 disables (the threshold becomes unreachable)."""
        self.threshold_us = sys.maxsize if log_slower_than_us < 0 else log_slower_than_us
        self.max_len = max_len
        while len(self.entries) > max_len:
            self.entries.pop()

    def record(self, fullname: str, argv: list[bytes], duration_us: int, now_s: int,
               client_addr: str, client_name: bytes) -> None:
        if fullname in NOT_LOGGED or self.max_len == 0:
            return
        entry = SlowEntry(self.next_id, now_s, duration_us,
                          bounded_argv(redacted(fullname, argv)), client_addr.encode(),
                          bytes(client_name))
        self.next_id += 1
        self.entries.appendleft(entry)
        if len(self.entries) > self.max_len:
            self.entries.pop()

    def get(self, count: int | None = 10) -> list[list[object]]:
        """The newest `count` entries (all of them for None), newest first."""
        entries = list(self.entries) if count is None else list(self.entries)[:count]
        return [entry.reply() for entry in entries]

    def reset(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)
