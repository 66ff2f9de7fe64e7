"""DEBUG, LOLWUT and LASTSAVE: the odds and ends Redis tooling and test suites call.

Why DEBUG is one command and not a container: Redis refuses the whole command, whatever the
subcommand, unless `enable-debug-command` allows it (`yes`, or `local` for loopback and
unix-socket clients), and that refusal comes before any subcommand is looked at. The
subcommands kept are those with a meaning here (SLEEP stalls the loop as Redis stalls its
thread, OBJECT describes a key, SET-ACTIVE-EXPIRE really stops active expiry) and, as accepted
no-ops, those that only tune a Redis internal we do not have.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from jobcached import REDIS_COMPAT_VERSION, __version__
from jobcached.commands.args import subcommand_syntax_error, to_int
from jobcached.commands.registry import ADMIN, FAST, LOADING, READONLY, STALE, command
from jobcached.errors import CommandError
from jobcached.net.replies import OK, Simple, Verbatim
from jobcached.server.session import Session

NOT_ALLOWED = ("DEBUG command not allowed. If the enable-debug-command option is set to "
               "\"local\", you can run it from a local connection, otherwise you need to set "
               "this option in the configuration file, and then restart the server.")

#: A 24-bit clock in seconds, as the `lru` field of DEBUG OBJECT (Redis' LRU_CLOCK_MAX).
LRU_CLOCK_MASK = (1 << 24) - 1


def _sleep(s: Session, argv: list[bytes]) -> Any:
    try:
        seconds = float(argv[2])
    except ValueError:
        seconds = 0.0  # Redis reads it with strtod: garbage is 0
    if seconds > 0:
        time.sleep(seconds)
    return OK


def _object(s: Session, argv: list[bytes]) -> Any:
    key = argv[2]
    ks = s.keyspace
    if not ks.exists(key):
        raise CommandError("no such key")
    encoding = ks.object_encoding(key)
    size = ks.memory_usage(key) or 0
    idle = 0 if ks.policy.endswith("lfu") else ks.object_idletime(key) or 0
    lru = (s.server.clock.now_ms() // 1000 - idle) & LRU_CLOCK_MASK
    return Simple(f"Value at:0x{id(ks):x} refcount:1 encoding:{encoding} "
                  f"serializedlength:{size} lru:{lru} lru_seconds_idle:{idle}".encode())


def _set_active_expire(s: Session, argv: list[bytes]) -> Any:
    s.server.active_expire = to_int(argv[2]) != 0
    return OK


def _listpack(s: Session, argv: list[bytes]) -> Any:
    if not s.keyspace.exists(argv[2]):
        raise CommandError("no such key")
    return Simple(b"Listpack structure printed on stdout")


def _accepted(s: Session, argv: list[bytes]) -> Any:
    return OK


def _help(s: Session, argv: list[bytes]) -> Any:
    lines = ["DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"]
    for name, (_, _, text) in sorted(SUBCOMMANDS.items()):
        lines += [name.decode() + ARGUMENTS.get(name, ""), f"    {text}"]
    return [line.encode() for line in lines]


Handler = Callable[[Session, list[bytes]], Any]

#: subcommand -> (handler, exact argument count including DEBUG and the name, help line)
SUBCOMMANDS: dict[bytes, tuple[Handler, int, str]] = {
    b"SLEEP": (_sleep, 3, "Stop the server for <seconds>. Decimals allowed."),
    b"OBJECT": (_object, 3, "Show low level info about the value of <key>."),
    b"SET-ACTIVE-EXPIRE": (_set_active_expire, 3,
                           "Turn active expiry of keys off (0) or back on (1)."),
    b"LISTPACK": (_listpack, 3, "Accepted: encodings are computed, there is nothing to dump."),
    b"QUICKLIST-PACKED-THRESHOLD": (_accepted, 3, "Accepted without effect (no quicklists)."),
    b"CHANGE-REPL-ID": (_accepted, 2, "Accepted without effect (no replication id to change)."),
    b"SET-SKIP-CHECKSUM-VALIDATION": (_accepted, 3, "Accepted without effect."),
    b"JMAP": (_accepted, 2, "Accepted without effect."),
    b"HELP": (_help, 2, "Print this help."),
}
ARGUMENTS = {b"SLEEP": " <seconds>", b"OBJECT": " <key>", b"SET-ACTIVE-EXPIRE": " <0|1>",
             b"LISTPACK": " <key>", b"QUICKLIST-PACKED-THRESHOLD": " <size>",
             b"SET-SKIP-CHECKSUM-VALIDATION": " <0|1>"}


def debug_allowed(s: Session) -> bool:
    """`enable-debug-command`: no, yes, or local (loopback and unix-socket clients)."""
    setting = s.server.config.enable_debug_command
    return setting == "yes" or (setting == "local" and s.is_local)


@command("DEBUG", arity=-2, flags=ADMIN | LOADING | STALE, group="server")
def debug(s: Session, argv: list[bytes]) -> Any:
    """DEBUG subcommand [argument ...]

    Debugging helpers, refused unless `enable-debug-command` is `yes` (or `local`, from a
    loopback or unix-socket client). SLEEP seconds stalls the server; OBJECT key describes a
    value in Redis' line format with our encoding names; SET-ACTIVE-EXPIRE 0|1 stops or
    restarts active expiry; LISTPACK, QUICKLIST-PACKED-THRESHOLD, CHANGE-REPL-ID,
    SET-SKIP-CHECKSUM-VALIDATION and JMAP are accepted without effect; HELP lists them.

    Reply: depends on the subcommand: `OK` for most, a status line for OBJECT.
    Errors: `ERR DEBUG command not allowed...` when disabled; `ERR no such key`; `ERR unknown
    subcommand`.
    """
    if not debug_allowed(s):
        raise CommandError(NOT_ALLOWED)
    entry = SUBCOMMANDS.get(argv[1].upper())
    if entry is None or len(argv) != entry[1]:
        raise subcommand_syntax_error("DEBUG", argv[1])
    return entry[0](s, argv)


#: LOLWUT's drawing: squares per row and rows, and how far the last row is shaken.
LOLWUT_COLUMNS = 12
LOLWUT_ROWS = 8
LOLWUT_GLYPHS = "□◇◆▣▢◈"


@command("LOLWUT", arity=-1, flags=READONLY | FAST, group="server")
def lolwut(s: Session, argv: list[bytes]) -> Verbatim:
    """LOLWUT [VERSION version]

    A small generative drawing after Georg Nees' "Schotter" (squares that fall into disorder
    row by row), then the server's version line.

    Reply: verbatim string (a bulk string under RESP2).
    Errors: a VERSION that is not an integer.
    """
    if len(argv) >= 3 and argv[1].upper() == b"VERSION":
        to_int(argv[2])
    rng = random.Random()
    rows = []
    for row in range(LOLWUT_ROWS):
        disorder = row / (LOLWUT_ROWS - 1)
        rows.append("".join(
            LOLWUT_GLYPHS[0] if rng.random() > disorder else rng.choice(LOLWUT_GLYPHS[1:])
            for _ in range(LOLWUT_COLUMNS)))
    rows.append("")
    rows.append(f"Schotter, after Georg Nees, 1968. jobcached ver. {__version__}, "
                f"Redis ver. {REDIS_COMPAT_VERSION}")
    return Verbatim(("\n".join(rows) + "\n").encode())


@command("LASTSAVE", arity=1, flags=LOADING | STALE | FAST, group="server")
def lastsave(s: Session, argv: list[bytes]) -> int:
    """LASTSAVE

    When the cache snapshot was last saved successfully (SAVE, BGSAVE, the save schedule),
    or when the server started if it has not been since.

    Reply: integer, unix time in seconds.
    """
    return s.server.last_save_ms // 1000
