"""Replication commands: REPLICAOF / SLAVEOF, ROLE, WAIT, and what followers send (REPLCONF,
PSYNC, SYNC).

Handlers parse and reply; the work is in server/leader.py (a follower attaching, the stream,
WAIT) and server/follower.py (following a leader). Which one this server is:
`state.follower` is None on a leader. Becoming a follower drops our own followers and makes the
server read-only for clients (dispatch.py: `-READONLY`); `REPLICAOF NO ONE` promotes it: a new
replication id (the old one kept for PSYNC2), job timers and cron running again (app.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jobcached.commands.args import to_int
from jobcached.commands.blocking import may_block
from jobcached.commands.registry import (
    ADMIN,
    ALLOW_BUSY,
    FAST,
    LOADING,
    NO_MULTI,
    STALE,
    command,
)
from jobcached.commands.scripting import scripting
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import NO_REPLY, OK, Simple
from jobcached.server.session import Session

log = logging.getLogger("jobcached.replication")


@command("REPLCONF", arity=-1, flags=ADMIN | ALLOW_BUSY | LOADING | STALE, group="server")
def replconf(s: Session, argv: list[bytes]) -> Any:
    """REPLCONF [option value ...]

    What a follower tells its leader: `listening-port <port>`, `ip-address <ip>`,
    `capa <capability>` (accepted and ignored), `ack <offset>` (no reply: its acknowledged
    offset, see WAIT and INFO's `lag`), `getack *` (answered by followers only).

    Reply: `OK`; nothing for ACK.
    Errors: `ERR syntax error` for an odd number of arguments; `ERR Unrecognized REPLCONF
    option: <option>`.
    """
    if len(argv) % 2 == 0:
        raise SyntaxErr()
    leader = s.server.leader
    for option, value in zip(argv[1::2], argv[2::2], strict=True):
        name = option.lower()
        if name == b"listening-port":
            leader.announce(s, port=to_int(value))
        elif name == b"ip-address":
            leader.announce(s, ip=value.decode(errors="replace"))
        elif name == b"ack":
            leader.ack(s, to_int(value))
            return NO_REPLY
        elif name == b"getack":
            return NO_REPLY  # a leader has nothing to acknowledge
        elif name not in (b"capa", b"rdb-only", b"rdb-filter-only"):
            raise CommandError(f"Unrecognized REPLCONF option: "
                               f"{option.decode(errors='replace')}")
    return OK


@command("PSYNC", arity=-3, flags=ADMIN | NO_MULTI, group="server")
def psync(s: Session, argv: list[bytes]) -> Any:
    """PSYNC replicationid offset

    A follower asks for the stream after `offset` (the next byte it needs) of history
    `replicationid` (`?` and -1: it has none). Followers send this; clients do not.

    Reply: `+CONTINUE <replid>` and the stream from the backlog, when it still reaches back
    to `offset` in that history; otherwise `+FULLRESYNC <replid> <offset>`, the snapshot as
    one bulk (`$<length>` then the commands that rebuild every database, the function
    libraries and the jobs), then the stream. The connection is a follower from then on.
    Errors: `ERR Replica can't sync: this server follows a leader itself` (no chained
    followers yet).
    """
    return _sync(s, argv[1], argv[2], legacy=False)


@command("SYNC", arity=1, flags=ADMIN | NO_MULTI, group="server")
def sync(s: Session, argv: list[bytes]) -> Any:
    """SYNC

    The old full sync: the snapshot bulk, then the stream (no `+FULLRESYNC` line).

    Reply: as PSYNC after its `+FULLRESYNC` line.
    """
    return _sync(s, b"?", b"-1", legacy=True)


def _sync(s: Session, replid: bytes, offset: bytes, legacy: bool) -> Any:
    server = s.server
    if server.follower is not None:
        raise CommandError("Replica can't sync: this server follows a leader itself")
    codes = [library.code for library in scripting(server).libraries.libraries.values()]
    return server.leader.psync(s, replid, offset, codes, legacy)


@command("REPLICAOF", arity=3, flags=ADMIN | STALE, group="server")
def replicaof(s: Session, argv: list[bytes]) -> Any:
    """REPLICAOF host port | NO ONE

    Follow the leader at host:port: the dataset is replaced by the leader's (see PSYNC),
    clients' writes are refused with `-READONLY`, job timers and cron stop. `NO ONE`: stop
    following and become a leader (a new replication id; jobs' timers and leases run again
    from their stored deadlines).

    Reply: `OK`, or `+OK Already connected to specified master`.
    Errors: `ERR Invalid master port` (`value is out of range` as Redis for a bad number).
    """
    return _replicaof(s, argv)


@command("SLAVEOF", arity=3, flags=ADMIN | STALE, group="server")
def slaveof(s: Session, argv: list[bytes]) -> Any:
    """SLAVEOF host port | NO ONE

    The old name of REPLICAOF.

    Reply: as REPLICAOF.
    """
    return _replicaof(s, argv)


def _replicaof(s: Session, argv: list[bytes]) -> Any:
    server = s.server
    host = server.replication_host
    if host is None:
        raise CommandError("replication is not available in this process")
    if argv[1].upper() == b"NO" and argv[2].upper() == b"ONE":
        if server.follower is not None:
            asyncio.get_running_loop().create_task(host.promote())
        return OK
    port = to_int(argv[2])
    if not 0 < port < 65536:
        raise CommandError("Invalid master port")
    target = argv[1].decode(errors="replace")
    follower = server.follower
    if follower is not None and follower.host == target and follower.port == port:
        return Simple(b"OK Already connected to specified master")
    host.follow(target, port)
    return OK


@command("ROLE", arity=1, flags=LOADING | STALE | FAST, group="server")
def role(s: Session, argv: list[bytes]) -> Any:
    """ROLE

    This server's place in replication, in Redis' shapes.

    Reply: `["master", <offset>, [[ip, port, acked offset], ...]]` on a leader;
    `["slave", host, port, connect|sync|connected, <offset>]` on a follower.
    """
    server = s.server
    follower = server.follower
    if follower is None:
        return [b"master", server.backlog.offset, server.leader.role_entries()]
    if follower.link_up:
        link = b"connected"
    elif follower.sync_in_progress:
        link = b"sync"
    else:
        link = b"connect"
    return [b"slave", follower.host.encode(), follower.port, link, follower.offset]


@command("WAIT", arity=3, group="generic")
def wait(s: Session, argv: list[bytes]) -> Any:
    """WAIT numreplicas timeout

    Block until the writes made so far (by every client) are acknowledged by `numreplicas`
    followers, or `timeout` ms have passed (0: no timeout).

    Reply: integer, the followers that acknowledged them.
    Errors: `ERR WAIT cannot be used with replica instances...` on a follower; `ERR timeout
    is negative`.
    """
    server = s.server
    if server.follower is not None:
        raise CommandError("WAIT cannot be used with replica instances. Please also note "
                           "that since Redis 4.0 if a replica is configured to be writable "
                           "(which is not the default) writes to replicas are just local and "
                           "are not propagated.")
    replicas = to_int(argv[1])
    timeout = to_int(argv[2])
    if timeout < 0:
        raise CommandError("timeout is negative")
    if not may_block(s):  # inside MULTI/EXEC: the count now, as Redis
        return server.leader.acked(server.backlog.offset)
    return server.leader.wait(replicas, timeout)
