"""DUMP and RESTORE: a key's value in Redis 7.0's serialization, so values move both ways
between redis-server and jobcached (MIGRATE, in migrate.py, sends them over the wire).

The format lives in cache/rdbformat.py (footer, CRC64, strings), cache/listpack.py and
cache/rdbvalue.py / rdbstream.py (one encoding per type). RESTORE checks in Redis' order
(restoreCommand, src/cluster.c): options, then an existing key (BUSYKEY), then the TTL, then the
payload's version and checksum, then its content ("Bad data format"). It propagates itself
with an absolute TTL (`RESTORE key <unix ms> payload ... ABSTTL`), as Redis rewrites it, so a
replica's copy expires at the same moment.
"""

from __future__ import annotations

from typing import Any

from jobcached.cache.rdbformat import RdbError, open_payload, seal
from jobcached.cache.rdbvalue import dump_value, load_value
from jobcached.commands.args import to_int
from jobcached.commands.registry import DENYOOM, READONLY, WRITE, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import OK
from jobcached.server.notify import GENERIC, notify
from jobcached.server.session import Session

LFU_FREQ_MAX = 255


def dump_payload(value: Any) -> bytes:
    """The DUMP payload of a value (MIGRATE sends the same)."""
    return seal(dump_value(value))


@command("DUMP", arity=2, flags=READONLY, group="generic", keys=(1, 1, 1))
def dump(s: Session, argv: list[bytes]) -> bytes | None:
    """DUMP key

    Serialize a key's value as Redis 7.0 does (RDB encoding, RDB version 10, CRC64), for
    RESTORE here or on redis-server. Small values give redis-server's exact bytes; sets and
    hashes in hash-table encoding list their members in another order.

    Reply: bulk string, or nil when the key does not exist.
    """
    value = s.keyspace.lookup_read(argv[1])
    return None if value is None else dump_payload(value)


def _restore_options(argv: list[bytes]) -> tuple[bool, bool, int | None, int | None]:
    """(REPLACE, ABSTTL, IDLETIME seconds, FREQ): IDLETIME and FREQ exclude each other, a
    repeated one wins, anything else is a syntax error."""
    replace = absttl = False
    idle: int | None = None
    freq: int | None = None
    j, n = 4, len(argv)
    while j < n:
        option = argv[j].upper()
        more = n - j - 1
        if option == b"REPLACE":
            replace = True
        elif option == b"ABSTTL":
            absttl = True
        elif option == b"IDLETIME" and more and freq is None:
            idle = to_int(argv[j + 1])
            if idle < 0:
                raise CommandError("Invalid IDLETIME value, must be >= 0")
            j += 1
        elif option == b"FREQ" and more and idle is None:
            freq = to_int(argv[j + 1])
            if not 0 <= freq <= LFU_FREQ_MAX:
                raise CommandError("Invalid FREQ value, must be >= 0 and <= 255")
            j += 1
        else:
            raise SyntaxErr()
        j += 1
    return replace, absttl, idle, freq


@command("RESTORE", arity=-4, flags=WRITE | DENYOOM, group="generic", keys=(1, 1, 1))
def restore(s: Session, argv: list[bytes]) -> Any:
    """RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]

    Create a key from a DUMP payload (ours or redis-server's). `ttl` is in milliseconds (0:
    none), or an absolute unix time in milliseconds with ABSTTL; a time already past creates
    nothing and still replies OK. REPLACE overwrites an existing key. IDLETIME sets the idle
    time OBJECT IDLETIME reports (LRU policies), FREQ the counter OBJECT FREQ reports (LFU).

    Reply: `OK`.
    Errors: `BUSYKEY Target key name already exists.`; `Invalid TTL value, must be >= 0`;
    `DUMP payload version or checksum are wrong`; `Bad data format`; `Invalid IDLETIME value,
    must be >= 0`; `Invalid FREQ value, must be >= 0 and <= 255`; `syntax error`; not an
    integer.
    """
    replace, absttl, idle, freq = _restore_options(argv)
    key = argv[1]
    ks = s.keyspace
    if not replace and ks.lookup_write(key) is not None:
        raise CommandError("Target key name already exists.", code="BUSYKEY")
    ttl = to_int(argv[2])
    if ttl < 0:
        raise CommandError("Invalid TTL value, must be >= 0")
    fragment = open_payload(argv[3])
    if fragment is None:
        raise CommandError("DUMP payload version or checksum are wrong")
    try:
        value = load_value(fragment)
    except RdbError:
        raise CommandError("Bad data format") from None
    server = s.server
    deleted = replace and ks.delete(key)
    now = server.clock.now_ms()
    if ttl and not absttl:
        ttl += now
    if ttl and ttl <= now:
        if deleted:
            server.effects.cache([b"DEL", key], (key,))
            notify(server, GENERIC, b"del", key)
        return OK
    ks.set(key, value, expire_at_ms=ttl or None)
    ks.set_access(key, idle, freq)
    effect = list(argv)
    if ttl and not absttl:
        effect[2] = b"%d" % ttl
        effect.append(b"ABSTTL")
    server.effects.cache(effect, (key,))
    notify(server, GENERIC, b"restore", key)
    return OK
