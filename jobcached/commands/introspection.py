"""Introspection commands for operators: SLOWLOG and LATENCY.

Both read what `dispatch.call()` records for every command: the slow log (observability/
slowlog.py), the per-command latency histograms (log2 slots in microseconds, see
state.LATENCY_SLOTS) and the latency monitor's events (server/latency.py), with Redis 7's
reply shapes so redis-cli and monitoring tools read them.
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
from jobcached.net.replies import OK, Verbatim
from jobcached.server import latency
from jobcached.server.session import Session
from jobcached.server.state import LATENCY_SLOTS, calls_of

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
    command_stats = s.server.command_stats
    cmds = _named_commands(argv[2:]) if len(argv) > 2 else list(walk())
    reply: dict[bytes, Any] = {}
    for cmd in cmds:
        histogram = command_stats.get(cmd)
        if histogram is not None and calls_of(histogram):
            reply[cmd.fullname.encode()] = _histogram_reply(histogram)
    return reply


@subcommand("LATENCY", "LATEST", arity=2)
def latency_latest(s: Session, argv: list[bytes]) -> list[list[Any]]:
    """LATENCY LATEST

    The latest spike of each event class recorded since `latency-monitor-threshold` was set:
    "command" and "fast-command" (a command that ran that long), "expire-cycle",
    "eviction-cycle".

    Reply: array of arrays: event name, unix time of its latest sample, that sample's duration
    in milliseconds, the largest duration recorded.
    """
    return [[name.encode(), series.samples[-1][0], series.samples[-1][1], series.max_ms]
            for name, series in s.server.latency.events.items()]


@subcommand("LATENCY", "HISTORY", arity=3)
def latency_history(s: Session, argv: list[bytes]) -> list[list[int]]:
    """LATENCY HISTORY event

    The samples of one event class, oldest first: at most 160, one per second at most (the
    worst of that second).

    Reply: array of [unix time, milliseconds] pairs; empty for an event never recorded.
    """
    series = s.server.latency.events.get(argv[2].decode("utf-8", "surrogateescape"))
    return [] if series is None else [list(sample) for sample in series.samples]


@subcommand("LATENCY", "RESET", arity=-2)
def latency_reset(s: Session, argv: list[bytes]) -> int:
    """LATENCY RESET [event ...]

    Forget the samples of the named event classes, or of all of them.

    Reply: integer, the number of event classes forgotten.
    """
    return s.server.latency.reset([raw.decode("utf-8", "surrogateescape") for raw in argv[2:]])


@subcommand("LATENCY", "GRAPH", arity=3)
def latency_graph(s: Session, argv: list[bytes]) -> Verbatim:
    """LATENCY GRAPH event

    An ASCII graph of one event class' samples, with each column's age underneath.

    Reply: verbatim string (a bulk string under RESP2).
    Errors: `ERR No samples available for event '<event>'`.
    """
    name = argv[2].decode("utf-8", "surrogateescape")
    series = s.server.latency.events.get(name)
    if series is None or not series.samples:
        raise CommandError(f"No samples available for event '{name}'")
    return Verbatim(latency.graph(name, series, s.server.clock.now_ms() // 1000).encode())


@subcommand("LATENCY", "DOCTOR", arity=2)
def latency_doctor(s: Session, argv: list[bytes]) -> Verbatim:
    """LATENCY DOCTOR

    A short human report on the latency spikes recorded.

    Reply: verbatim string (a bulk string under RESP2).
    """
    report = latency.doctor(s.server.latency, s.server.config.latency_monitor_threshold)
    return Verbatim(report.encode())
