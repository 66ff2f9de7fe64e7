"""MONITOR: stream every command the server runs to the clients that asked for it.

Why it looks the way it does: redis-cli, redis-py's `monitor()` and log tools parse Redis' line
format, so each command is one simple-string line exactly as replicationFeedMonitors writes it:

    +1700000000.123456 [0 127.0.0.1:50000] "SET" "k" "v"

that is the wall-clock time in microseconds, the database the command ended in, the client
(`lua` for commands run by a script, `unix:<path>` for unix-socket clients) and each argument
quoted as sdscatrepr does. As in Redis 7.0 the line is fed after the command ran (so AUTH and
HELLO ... AUTH have already replaced their credentials by `(redacted)` and SELECT shows its new
database; scripts are the exception, see FEED_FIRST). Commands refused before running
(unknown, wrong arity, NOAUTH) are not fed, nor are admin commands (CONFIG, DEBUG, CLIENT
LIST, MONITOR itself...).

A monitoring client is a replica for Redis: it may still run commands that do not touch the
keyspace (PING, CLIENT ID, INFO, RESET, QUIT...); reads and writes get `Replica can't interact
with the keyspace`. The cost when nobody monitors is a truth test of an empty dict in
`dispatch.call`, before and after the handler.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jobcached.commands.registry import ADMIN, LOADING, STALE, Command, Flag, command
from jobcached.errors import CommandError
from jobcached.net.replies import NO_REPLY, OK, Encoded
from jobcached.server.session import Session

#: What AUTH and HELLO's credentials are replaced with (Redis' redactClientCommandArgument).
REDACTED = b"(redacted)"

#: Commands the monitors see before they run, as Redis feeds scripts, so that a script's own
#: commands (`[0 lua] ...`) follow the line of the EVAL or FCALL that ran them.
FEED_FIRST = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})

#: Commands Redis flags `may_replicate` without `write` (among ours): a monitoring client may not
#: run them, and CLIENT PAUSE WRITE holds them.
MAY_REPLICATE = frozenset({"EVAL", "EVALSHA", "FCALL", "PUBLISH", "SPUBLISH", "PFCOUNT"})

_ESCAPES = {ord("\\"): b"\\\\", ord('"'): b'\\"', ord("\n"): b"\\n", ord("\r"): b"\\r",
            ord("\t"): b"\\t", 7: b"\\a", 8: b"\\b"}
#: byte -> its sdscatrepr spelling (printable ASCII as is, the rest as \xNN)
_REPR = [_ESCAPES.get(c, bytes([c]) if 32 <= c < 127 else b"\\x%02x" % c) for c in range(256)]


def quote(arg: bytes) -> bytes:
    """`arg` between double quotes, escaped as Redis' sdscatrepr."""
    if arg.isalnum():
        return b'"' + arg + b'"'
    return b'"' + b"".join([_REPR[c] for c in arg]) + b'"'


def redacted(cmd: Command, argv: list[bytes]) -> list[bytes]:
    """argv as the monitors see it: AUTH's arguments and HELLO's AUTH credentials hidden."""
    if cmd.name == "AUTH":
        return [argv[0], *([REDACTED] * (len(argv) - 1))]
    if cmd.name == "HELLO":
        shown = list(argv)
        for index in range(2, len(argv) - 2):
            if argv[index].upper() == b"AUTH":
                shown[index + 1] = shown[index + 2] = REDACTED
                break
        return shown
    return argv


def feed(s: Session, cmd: Command, argv: list[bytes]) -> None:
    """Send the command `s` just ran to every monitor (dispatch.call, when some are attached)."""
    if cmd.flags & ADMIN:
        return
    server = s.server
    now_us = time.time_ns() // 1000
    if s.addr == "lua":
        origin = "lua"
    elif s.unix:
        origin = f"unix:{server.config.unixsocket}"
    else:
        origin = s.addr
    shown = redacted(cmd, argv) if cmd.name in ("AUTH", "HELLO") else argv
    line = b"+%d.%06d [%d %b] %b\r\n" % (now_us // 1_000_000, now_us % 1_000_000, s.db,
                                          origin.encode(), b" ".join(map(quote, shown)))
    for monitor in server.monitors:
        if monitor is s:  # its own command: Redis sends the reply first, then the line
            asyncio.get_running_loop().call_soon(monitor.conn.push, Encoded(line))
        else:
            monitor.conn.push(Encoded(line))


def refuse_in_monitor_mode(cmd: Command) -> CommandError | None:
    """The error a monitoring client gets for `cmd`, or None if it may run it."""
    if cmd.flags & (Flag.READONLY | Flag.WRITE) or cmd.name in MAY_REPLICATE:
        return CommandError("Replica can't interact with the keyspace")
    return None


@command("MONITOR", arity=1, flags=ADMIN | LOADING | STALE, group="server")
def monitor(s: Session, argv: list[bytes]) -> Any:
    """MONITOR

    Stream every command the server runs, one line each, until the connection closes or sends
    RESET. Lines are simple strings in Redis' format: `+<unix time>.<microseconds> [<db>
    <client address | lua | unix:<path>>] "<arg>" ...`, arguments quoted and escaped as Redis
    does; AUTH and HELLO credentials show as `(redacted)`; admin commands are not shown.

    Reply: `OK`, then the stream; nothing when the client monitors already. While monitoring,
    commands that read or write the keyspace get `ERR Replica can't interact with the
    keyspace`.
    """
    if s.monitoring:
        return NO_REPLY
    s.monitoring = True
    s.server.monitors[s] = None
    s.server.refresh_gate()
    return OK
