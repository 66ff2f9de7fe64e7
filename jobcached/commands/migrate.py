"""MIGRATE: move keys to another Redis-protocol server (redis-server or jobcached) with
RESTORE, as Redis 7.0's migrateCommand (src/cluster.c) does, without blocking the event loop.

The handler snapshots the keys' payloads and TTLs at once, then talks to the target in a task
(connect, then AUTH, SELECT and one RESTORE per key in one write, then one reply line each,
every step bounded by `timeout` ms) and replies through a blocking Deferred: the calling
client waits, as a Redis client blocked in MIGRATE does, while every other client keeps being
served. When the target accepted a key, the key is deleted here (unless COPY), with a DEL
propagated and a `del` event, as Redis rewrites MIGRATE into DEL.

Differences from Redis: no connection is cached between calls (Redis keeps one per target for
10 s), so every MIGRATE sends SELECT and the retry-once-on-a-stale-socket path does not exist;
other clients run while the transfer is in flight, so a key they change meanwhile is still
deleted once the target has stored the snapshot. Inside MULTI, EXEC's reply waits for the
transfer (the commands after MIGRATE have run by then); scripts may not call MIGRATE.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobcached.commands.args import to_int
from jobcached.commands.blocking import may_block
from jobcached.commands.dump import dump_payload
from jobcached.commands.registry import WRITE, command
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import OK, Deferred, ErrorReply, Simple
from jobcached.server.notify import GENERIC, notify
from jobcached.server.session import Session
from jobcached.server.tasks import spawn

DEFAULT_TIMEOUT_MS = 1000  # a timeout <= 0 means this, as in Redis
REPLY_LINE_MAX_BYTES = 1024  # Redis reads each reply line into a 1 KB buffer
NOKEY = Simple(b"NOKEY")


class _TransferError(Exception):
    """The target did not answer in time, or the connection failed: "writing" or "reading"."""


def _resp(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    out += [b"$%d\r\n%b\r\n" % (len(a), a) for a in args]
    return b"".join(out)


def _parse(argv: list[bytes]) -> tuple[list[bytes], bool, bool, list[bytes] | None]:
    """(keys, COPY, REPLACE, AUTH arguments) as migrateCommand parses them."""
    copy = replace = False
    auth: list[bytes] | None = None
    keys = [argv[3]]
    j, n = 6, len(argv)
    while j < n:
        option = argv[j].upper()
        more = n - 1 - j
        if option == b"COPY":
            copy = True
        elif option == b"REPLACE":
            replace = True
        elif option == b"AUTH":
            if not more:
                raise SyntaxErr()
            auth = [argv[j + 1]]
            j += 1
        elif option == b"AUTH2":
            if more < 2:
                raise SyntaxErr()
            auth = [argv[j + 1], argv[j + 2]]
            j += 2
        elif option == b"KEYS":
            if argv[3]:
                raise CommandError("When using MIGRATE KEYS option, the key argument must be "
                                   "set to the empty string")
            keys = argv[j + 1:]
            break
        else:
            raise SyntaxErr()
        j += 1
    return keys, copy, replace, auth


@command("MIGRATE", arity=-6, flags=WRITE, group="generic", keys=(3, 3, 1))
def migrate(s: Session, argv: list[bytes]) -> Any:
    """MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
    [AUTH2 username password] [KEYS key [key ...]]

    Move keys to another server: each is sent as `RESTORE key ttl payload [REPLACE]` (after
    AUTH and SELECT destination-db) and deleted here once the target accepted it, unless
    COPY. `timeout` (ms; <= 0 means 1000) bounds the connection and each reply. The calling
    client waits for the transfer; other clients are served meanwhile.

    Reply: `OK`; `NOKEY` when none of the keys exists.
    Errors: `IOERR error or timeout connecting to the client`; `IOERR error or timeout
    reading to target instance` (or `writing`); `Target instance replied with error: ...`;
    `When using MIGRATE KEYS option, the key argument must be set to the empty string`;
    `syntax error`; not an integer.
    """
    keys, copy, replace, auth = _parse(argv)
    timeout_ms = to_int(argv[5])
    dbid = to_int(argv[4])
    if timeout_ms <= 0:
        timeout_ms = DEFAULT_TIMEOUT_MS
    ks = s.keyspace
    now = s.server.clock.now_ms()
    found: list[bytes] = []
    commands: list[bytes] = []
    for key in keys:
        value = ks.lookup_read(key)
        if value is None:
            continue
        at = ks.expire_time_ms(key)
        ttl = max(at - now, 1) if at > 0 else 0
        found.append(key)
        restore = [b"RESTORE", key, b"%d" % ttl, dump_payload(value)]
        commands.append(_resp(*restore, b"REPLACE") if replace else _resp(*restore))
    if not found:
        return NOKEY
    prelude = []
    if auth is not None:
        prelude.append(_resp(b"AUTH", *auth))
    prelude.append(_resp(b"SELECT", b"%d" % dbid))
    # Inside EXEC the reply cannot block the connection: EXEC waits for it instead
    reply = Deferred(blocking=may_block(s))
    db = s.db
    server = s.server

    def finish(replies: list[bytes]) -> Any:
        """Delete what the target took; the first error line (AUTH, SELECT, a RESTORE)."""
        head, restores = replies[:len(prelude)], replies[len(prelude):]
        head_error = next((line for line in head if line[:1] == b"-"), None)
        error = head_error
        moved = []
        for key, line in zip(found, restores, strict=True):
            if line[:1] == b"-":
                error = error or line
            elif head_error is None and not copy and server.dbs[db].delete(key):
                moved.append(key)
        if moved:
            server.effects.cache([b"DEL", *moved], moved, db)
            for key in moved:
                notify(server, GENERIC, b"del", key, db)
        if error is not None:
            text = error[1:].decode("utf-8", "replace")
            return ErrorReply(f"ERR Target instance replied with error: {text}")
        return OK

    async def run() -> None:
        host, port = argv[1].decode("utf-8", "replace"), argv[2].decode("utf-8", "replace")
        try:
            replies = await _exchange(host, port, b"".join(prelude + commands),
                                      len(prelude) + len(commands), timeout_ms / 1000)
        except OSError:
            reply.resolve(ErrorReply("IOERR error or timeout connecting to the client"))
            return
        except _TransferError as exc:
            reply.resolve(ErrorReply(f"IOERR error or timeout {exc} to target instance"))
            return
        reply.resolve(finish(replies))

    spawn(s.server, run())
    return reply


async def _exchange(host: str, port: str, request: bytes, replies: int, timeout: float
                    ) -> list[bytes]:
    """Connect, send `request`, read one reply line per command. OSError when the connection
    cannot be made (in time); _TransferError when it is refused, or fails afterwards."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)),
                                                timeout)
    except ConnectionRefusedError:
        # Redis' non-blocking connect reports a refused connection as writable, and its
        # first write fails: a refusal reads "writing", only a timeout "connecting"
        raise _TransferError("writing") from None
    except (TimeoutError, ValueError) as exc:
        raise OSError(str(exc)) from None
    try:
        try:
            writer.write(request)
            await asyncio.wait_for(writer.drain(), timeout)
        except (OSError, TimeoutError):
            raise _TransferError("writing") from None
        lines = []
        try:
            for _ in range(replies):
                line = await asyncio.wait_for(reader.readline(), timeout)
                if not line.endswith(b"\r\n"):
                    raise _TransferError("reading")
                lines.append(line[:REPLY_LINE_MAX_BYTES].rstrip(b"\r\n"))
        except (OSError, TimeoutError):
            raise _TransferError("reading") from None
        return lines
    finally:
        writer.close()
