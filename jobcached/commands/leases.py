"""GETL and SETL: reads that hand out fill leases on a miss, and the writes that redeem them,
against cache stampedes and stale fills (see `cache/leases.py` for the mechanism).

A lease is not replicated and not logged: it is a promise of this server to one client for a
few seconds. SETL propagates an ordinary `SET key value [PXAT ms]`, so replicas and replays
never see leases at all; a token obtained from a replica is unknown to the leader, and a SETL
with it fails safely (the caller recomputes or retries).
"""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import Args
from jobcached.commands.jobs import positive
from jobcached.commands.keyspec import at_index
from jobcached.commands.registry import DENYOOM, FAST, READONLY, WRITE, command
from jobcached.commands.strings import PX, expire_at_ms
from jobcached.errors import SyntaxErr
from jobcached.net.replies import OK
from jobcached.server.notify import GENERIC, STRING, notify
from jobcached.server.session import Session


@command("GETL", arity=-2, flags=READONLY | FAST, group="string", keys=(1, 1, 1),
         key_specs=at_index(1, "RO", "access"))
def getl(s: Session, argv: list[bytes]) -> Any:
    """GETL key [TTL ms]

    Get the value of a key, or on a miss a lease to fill it. The first reader that misses gets
    a token, valid for TTL ms (default `lease-ttl`, 10 s) or until the key is written,
    deleted, expires or is flushed; it computes the value and stores it with SETL. Readers
    that miss while the lease is out are told to wait and read again.

    Reply: the value (bulk string) on a hit; on a miss, a two-element array: `lease` and the
    token (you fill the key), or `wait` and the milliseconds the current lease has left (read
    again soon).
    Errors: `WRONGTYPE` when the key is not a string; `TTL must be positive`; `syntax error`.
    """
    ttl = s.server.config.lease_ttl
    args = Args(argv, 2)
    while args:
        if args.next_upper() != b"TTL":
            raise SyntaxErr()
        ttl = positive(args.next(), "TTL")
    value = s.keyspace.get_string(argv[1])
    if value is not None:
        return value
    token, left_ms = s.server.leases.acquire(s.db, argv[1], ttl)
    return [b"lease", token] if token is not None else [b"wait", left_ms]


@command("SETL", arity=-4, flags=WRITE | DENYOOM, group="string", keys=(1, 1, 1),
         key_specs=at_index(1, "OW", "update"))
def setl(s: Session, argv: list[bytes]) -> Any:
    """SETL key token value [PX milliseconds]

    Fill a key with the lease GETL gave: stored (as SET, with a TTL with PX) only if the
    token is the key's live lease, i.e. nothing wrote or deleted the key since GETL handed it
    out and it has not run out. A lease fills once.

    Reply: `OK`, or nil when the lease is no longer valid (the value is not stored).
    Errors: `syntax error`; not an integer; `invalid expire time in 'setl' command`.
    """
    key, token, value = argv[1], argv[2], argv[3]
    at = None
    args = Args(argv, 4)
    while args:
        if args.next_upper() != b"PX":
            raise SyntaxErr()
        at = expire_at_ms(s, args.next(), PX, "setl")
    server = s.server
    if not server.leases.redeem(s.db, key, token):
        return None
    s.keyspace.set(key, value, expire_at_ms=at)
    if at is None:
        server.effects.cache([b"SET", key, value], (key,))
    else:
        server.effects.cache([b"SET", key, value, b"PXAT", b"%d" % at], (key,))
    notify(server, STRING, b"set", key)
    if at is not None:
        notify(server, GENERIC, b"expire", key)
    return OK
