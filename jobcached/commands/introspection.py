"""Introspection commands for operators: SLOWLOG and LATENCY.

Both read what `dispatch.call()` records for every command: the slow log (observability/
slowlog.py) and the per-command latency histograms (log2 slots in microseconds, see
state.LATENCY_SLOTS), with Redis 7's reply shapes so redis-cli and monitoring tools read them.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands.registry import (
    ADMIN,
    LOADING,
    STALE,
    Command,
    container,
    lookup,
    subcommand,
    walk,
)
from jobcached.errors import CommandError, NotIntegerError
from jobcached.net.replies import OK
from jobcached.net.session import Session
from jobcached.state import LATENCY_SLOTS

#: SLOWLOG GET without a count returns this many entries (Redis' default).
SLOWLOG_DEFAULT_COUNT = 10

# ------------------------------------------------------------------------------- SLOWLOG

container("SLOWLOG", group="server", summary="Read and reset the slow log.",
          flags=ADMIN | LOADING | STALE)


@subcommand("SLOWLOG", "GET", arity=-2)
def slowlog_get(s: Session, argv: list[bytes]) -> Any:
    """SLOWLOG GET [count]

    The newest `count` entries of the slow log (10 by default, all of them for -1), newest
    first: commands that ran at least `slowlog-log-slower-than` microseconds.

    Reply: array of entries, each an array of: id (integer), unix time in seconds (integer),
    duration in microseconds (integer), the arguments (array of bulk strings: at most 32, each
    cut to 128 bytes with `... (N more bytes)`, the 32nd replaced by `... (N more arguments)`
    when there were more; passwords as `(redacted)`), client address and client name.
    Errors: a count that is not an integer of -1 or more.
    """
    if len(argv) > 3:
        raise CommandError("wrong number of arguments for 'slowlog|get' command")
    count: int | None = SLOWLOG_DEFAULT_COUNT
    if len(argv) == 3:
        try:
            count = int(argv[2])
        except ValueError:
            raise NotIntegerError() from None
        if count < -1:
            raise CommandError("count should be greater than or equal to -1")
        if count == -1:
            count = None
    return s.server.slowlog.get(count)


@subcommand("SLOWLOG", "LEN", arity=2)
def slowlog_len(s: Session, argv: list[bytes]) -> int:
    """SLOWLOG LEN

    The number of entries in the slow log.

    Reply: integer.
    """
    return len(s.server.slowlog)


@subcommand("SLOWLOG", "RESET", arity=2)
def slowlog_reset(s: Session, argv: list[bytes]) -> Any:
    """SLOWLOG RESET

    Empty the slow log (entry ids keep counting up).

    Reply: `OK`.
    """
    s.server.slowlog.reset()
    return OK


# ------------------------------------------------------------------------------- LATENCY

container("LATENCY", group="server", summary="Latency distributions of commands.",
          flags=ADMIN | LOADING | STALE)


def _histogram_reply(histogram: list[int]) -> dict[bytes, Any]:
    """Redis 7's shape: calls, then cumulative counts keyed by bucket bound (us), listing only
    the buckets where the count grows."""
    buckets: dict[int, int] = {}
    cumulative = 0
    for slot in range(LATENCY_SLOTS):
        if histogram[slot]:
            cumulative += histogram[slot]
            buckets[1 << max(slot, 0)] = cumulative
    return {b"calls": cumulative, b"histogram_usec": buckets}


def _named_commands(names: list[bytes]) -> list[Command]:
    found: list[Command] = []
    for raw in names:
        parent, _, child = raw.partition(b"|")
        cmd = lookup(parent)
        if cmd is None:
            continue
        if child:
            sub = cmd.subcommands.get(child.upper())
            if sub is not None:
                found.append(sub)
        else:
            found.append(cmd)
            found.extend(cmd.subcommands.values())
    return found


@subcommand("LATENCY", "HISTOGRAM", arity=-2)
def latency_histogram(s: Session, argv: list[bytes]) -> Any:
    """LATENCY HISTOGRAM [command ...]

    The latency distribution of the named commands (a container such as CLIENT names all its
    subcommands; `client|list` names one), or of every command that has run. Bucket bounds are
    powers of two microseconds.

    Reply: map of command name to a map of `calls` (integer) and `histogram_usec` (map of
    bucket upper bound in microseconds to the cumulative number of calls below it, listing
    only the buckets where that number grows). Unknown names are left out. Under RESP2 the
    maps are flat arrays.
    """
    latency = s.server.command_latency
    cmds = _named_commands(argv[2:]) if len(argv) > 2 else list(walk())
    reply: dict[bytes, Any] = {}
    for cmd in cmds:
        histogram = latency.get(cmd)
        if histogram is not None:
            reply[cmd.fullname.encode()] = _histogram_reply(histogram)
    return reply
