"""Keyspace notifications: `notify-keyspace-events`, and the one `notify()` commands call.

After Redis' notify.c. Every command that changes a key calls `notify(server, CLASS, event,
key)` where Redis calls notifyKeyspaceEvent, with Redis' event name (`set`, `hset`, `lpush`,
`rename_from`, `expired` ...). When the configured flags include the event's class, the event is
published as ordinary pub/sub messages:

- `K`: on `__keyspace@<db>__:<key>`, the message is the event name;
- `E`: on `__keyevent@<db>__:<event>`, the message is the key.

A class without K or E publishes nothing. The flags are cached as an int on ServerState
(`notify_flags`), so a write pays one attribute load and one `&` while notifications are off,
Redis' default. Job status events (`__job__:<id>`, `__queue__:<q>`) are not keyspace events
and do not depend on these flags.

The classes and the flag string's parsing are in `jobcached.settings.notifyflags` (config.py
validates the setting with them); the classes (and the parser, for ServerState) are re-exported
here, so a command module imports its notifications from one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobcached.settings.notifyflags import (
    EVICTED,
    EXPIRED,
    GENERIC,
    HASH,
    KEY_MISS,
    KEYEVENT,
    KEYSPACE,
    LIST,
    NEW,
    SET,
    STREAM,
    STRING,
    ZSET,
    parse_flags,
)

if TYPE_CHECKING:
    from jobcached.server.state import ServerState

__all__ = ["EVICTED", "EXPIRED", "GENERIC", "HASH", "KEY_MISS", "LIST", "NEW", "SET", "STREAM",
           "STRING", "ZSET", "notify", "notify_if_gone", "parse_flags"]


def notify(server: ServerState, kind: int, event: bytes, key: bytes, db: int | None = None
           ) -> None:
    """Publish `event` on `key` (in `db`, by default the running command's database) if
    the configured flags include class `kind`."""
    flags = server.notify_flags
    if not flags & kind:
        return
    index = server.db if db is None else db
    pubsub = server.pubsub
    if flags & KEYSPACE:
        pubsub.publish(b"__keyspace@%d__:%s" % (index, key), event)
    if flags & KEYEVENT:
        pubsub.publish(b"__keyevent@%d__:%s" % (index, event), key)


def notify_if_gone(server: ServerState, key: bytes, left: int) -> None:
    """`del` for a container a command emptied (`left`, the items it has left, is 0: the
    keyspace has dropped it), after the command's own event, as Redis does."""
    if not left:
        notify(server, GENERIC, b"del", key)
