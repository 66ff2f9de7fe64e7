"""Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, and
sharded pub/sub: SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH.

Replies follow Redis 7.0. Each (un)subscribe confirmation is its own message, `[kind, channel,
count]`, written as a push (an array under RESP2), so the handlers send them through
`Session.conn.push` and return no reply of their own. Under RESP2 a subscribed connection is in
subscribe mode (see dispatch); under RESP3 it may run any command. The job engine publishes
status events on `__job__:<id>` and `__queue__:<queue>` (see `ServerState.publish_job_transition`).

Sharded pub/sub is Redis 7.0's cluster-friendly flavour; with one node its channels are simply
a namespace of their own: SPUBLISH reaches SSUBSCRIBE'd clients only, never SUBSCRIBE'd or
pattern ones, and confirmations count shard channels only.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import subcommand_syntax_error
from jobcached.commands.registry import (
    FAST,
    LOADING,
    NO_MULTI,
    PUBSUB,
    STALE,
    command,
    container,
    subcommand,
)
from jobcached.net.replies import NO_REPLY, Push
from jobcached.server.session import Session


def _confirm(s: Session, kind: bytes, name: bytes | None) -> None:
    s.conn.push(Push([kind, name, s.subscriptions]))


@command("SUBSCRIBE", arity=-2, flags=PUBSUB | LOADING | STALE | NO_MULTI, group="pubsub")
def subscribe(s: Session, argv: list[bytes]) -> Any:
    """SUBSCRIBE channel [channel ...]

    Listen for messages published to the channels. Under RESP2 the connection enters subscribe
    mode: only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT and RESET are allowed until it leaves
    every channel and pattern. Messages arrive as `message channel data`. Job status events are
    published on `__job__:<id>` and `__queue__:<queue>`.

    Example: `SUBSCRIBE news` → `subscribe news 1`, then `message news hello` for each PUBLISH.

    Reply: for each channel, a push `subscribe channel count` (count: channels and patterns
    this connection is subscribed to).
    """
    pubsub = s.server.pubsub
    for channel in argv[1:]:
        pubsub.subscribe(s, channel)
        _confirm(s, b"subscribe", channel)
    return NO_REPLY


@command("UNSUBSCRIBE", arity=-1, flags=PUBSUB | LOADING | STALE | NO_MULTI, group="pubsub")
def unsubscribe(s: Session, argv: list[bytes]) -> Any:
    """UNSUBSCRIBE [channel [channel ...]]

    Stop listening to the channels, or to every channel when none is given.

    Example: `UNSUBSCRIBE news` → `unsubscribe news 0`.

    Reply: for each channel, a push `unsubscribe channel count`; with no channel and no
    subscription, one `unsubscribe nil 0`.
    """
    pubsub = s.server.pubsub
    channels = argv[1:] or list(s.sub_channels)
    if not channels:
        _confirm(s, b"unsubscribe", None)
    for channel in channels:
        pubsub.unsubscribe(s, channel)
        _confirm(s, b"unsubscribe", channel)
    return NO_REPLY


@command("PSUBSCRIBE", arity=-2, flags=PUBSUB | LOADING | STALE | NO_MULTI, group="pubsub")
def psubscribe(s: Session, argv: list[bytes]) -> Any:
    """PSUBSCRIBE pattern [pattern ...]

    Listen for messages published to every channel matching the glob-style patterns (`*`, `?`,
    `[...]`, as KEYS). Messages arrive as `pmessage pattern channel data`.

    Example: `PSUBSCRIBE __queue__:*` → `psubscribe __queue__:* 1`, then a `pmessage` for every
    job state change in any queue.

    Reply: for each pattern, a push `psubscribe pattern count`.
    """
    pubsub = s.server.pubsub
    for pattern in argv[1:]:
        pubsub.psubscribe(s, pattern)
        _confirm(s, b"psubscribe", pattern)
    return NO_REPLY


@command("PUNSUBSCRIBE", arity=-1, flags=PUBSUB | LOADING | STALE | NO_MULTI, group="pubsub")
def punsubscribe(s: Session, argv: list[bytes]) -> Any:
    """PUNSUBSCRIBE [pattern [pattern ...]]

    Stop listening to the patterns, or to every pattern when none is given.

    Example: `PUNSUBSCRIBE __queue__:*` → `punsubscribe __queue__:* 0`.

    Reply: for each pattern, a push `punsubscribe pattern count`; with no pattern and no
    subscription, one `punsubscribe nil 0`.
    """
    pubsub = s.server.pubsub
    patterns = argv[1:] or list(s.sub_patterns)
    if not patterns:
        _confirm(s, b"punsubscribe", None)
    for pattern in patterns:
        pubsub.punsubscribe(s, pattern)
        _confirm(s, b"punsubscribe", pattern)
    return NO_REPLY


@command("PUBLISH", arity=3, flags=PUBSUB | LOADING | STALE | FAST, group="pubsub")
def publish(s: Session, argv: list[bytes]) -> Any:
    """PUBLISH channel message

    Send a message to the channel's subscribers and to those of every matching pattern. A
    subscriber that does not read is disconnected once its pending output reaches
    `client-output-buffer-limit-pubsub`, or stays at or above
    `client-output-buffer-limit-pubsub-soft` for more than its soft-seconds; a RESP3
    subscriber blocked in a command gets its messages before that command's reply.

    Example: `PUBLISH news hello` → `(integer) 2`.

    Reply: integer, the number of deliveries (a client matching twice counts twice).
    """
    return s.server.pubsub.publish(argv[1], argv[2])


def _confirm_shard(s: Session, kind: bytes, name: bytes | None) -> None:
    s.conn.push(Push([kind, name, len(s.sub_shard_channels)]))


@command("SSUBSCRIBE", arity=-2, flags=PUBSUB | LOADING | STALE | NO_MULTI, group="pubsub",
         keys=(1, -1, 1))
def ssubscribe(s: Session, argv: list[bytes]) -> Any:
    """SSUBSCRIBE shardchannel [shardchannel ...]

    Listen to shard channels (sharded pub/sub). Under RESP2 the connection enters subscribe
    mode, as with SUBSCRIBE. Messages arrive as `smessage channel data`.

    Example: `SSUBSCRIBE orders` → `ssubscribe orders 1`.

    Reply: for each channel, a push `ssubscribe channel count` (count: shard channels this
    connection is subscribed to).
    """
    pubsub = s.server.pubsub
    for channel in argv[1:]:
        pubsub.ssubscribe(s, channel)
        _confirm_shard(s, b"ssubscribe", channel)
    return NO_REPLY


@command("SUNSUBSCRIBE", arity=-1, flags=PUBSUB | LOADING | STALE | NO_MULTI, group="pubsub",
         keys=(1, -1, 1))
def sunsubscribe(s: Session, argv: list[bytes]) -> Any:
    """SUNSUBSCRIBE [shardchannel [shardchannel ...]]

    Stop listening to the shard channels, or to every shard channel when none is given.

    Example: `SUNSUBSCRIBE orders` → `sunsubscribe orders 0`.

    Reply: for each channel, a push `sunsubscribe channel count`; with no channel and no shard
    subscription, one `sunsubscribe nil 0`.
    """
    pubsub = s.server.pubsub
    channels = argv[1:] or list(s.sub_shard_channels)
    if not channels:
        _confirm_shard(s, b"sunsubscribe", None)
    for channel in channels:
        pubsub.sunsubscribe(s, channel)
        _confirm_shard(s, b"sunsubscribe", channel)
    return NO_REPLY


@command("SPUBLISH", arity=3, flags=PUBSUB | LOADING | STALE | FAST, group="pubsub",
         keys=(1, 1, 1))
def spublish(s: Session, argv: list[bytes]) -> Any:
    """SPUBLISH shardchannel message

    Send a message to the shard channel's subscribers (not to SUBSCRIBE or PSUBSCRIBE ones).

    Example: `SPUBLISH orders created` → `(integer) 1`.

    Reply: integer, the number of clients that received it.
    """
    return s.server.pubsub.spublish(argv[1], argv[2])


container("PUBSUB", group="pubsub", summary="Inspect the pub/sub channels and patterns.")


@subcommand("PUBSUB", "CHANNELS", arity=-2, flags=PUBSUB | LOADING | STALE)
def pubsub_channels(s: Session, argv: list[bytes]) -> Any:
    """PUBSUB CHANNELS [pattern]

    The channels with at least one subscriber (patterns not counted), optionally only those
    matching a glob-style pattern.

    Example: `PUBSUB CHANNELS __job__:*` → the jobs someone is watching.

    Reply: array of channel names.
    Errors: `ERR unknown subcommand or wrong number of arguments` for more than one pattern.
    """
    if len(argv) > 3:
        raise subcommand_syntax_error("PUBSUB", argv[1])
    return s.server.pubsub.active_channels(argv[2] if len(argv) == 3 else None)


@subcommand("PUBSUB", "NUMSUB", arity=-2, flags=PUBSUB | LOADING | STALE)
def pubsub_numsub(s: Session, argv: list[bytes]) -> Any:
    """PUBSUB NUMSUB [channel [channel ...]]

    The number of subscribers of each channel (patterns not counted).

    Example: `PUBSUB NUMSUB news sport` → `news 2 sport 0`.

    Reply: flat array of channel, count pairs.
    """
    pubsub = s.server.pubsub
    reply: list[Any] = []
    for channel in argv[2:]:
        reply += [channel, pubsub.numsub(channel)]
    return reply


@subcommand("PUBSUB", "NUMPAT", arity=2, flags=PUBSUB | LOADING | STALE)
def pubsub_numpat(s: Session, argv: list[bytes]) -> Any:
    """PUBSUB NUMPAT

    The number of distinct patterns subscribed to, by all clients.

    Example: `PUBSUB NUMPAT` → `(integer) 1`.

    Reply: integer.
    """
    return s.server.pubsub.numpat()


@subcommand("PUBSUB", "SHARDCHANNELS", arity=-2, flags=PUBSUB | LOADING | STALE)
def pubsub_shardchannels(s: Session, argv: list[bytes]) -> Any:
    """PUBSUB SHARDCHANNELS [pattern]

    The shard channels with at least one subscriber, optionally only those matching a
    glob-style pattern.

    Example: `PUBSUB SHARDCHANNELS ord*` → `orders`.

    Reply: array of shard channel names.
    Errors: `ERR unknown subcommand or wrong number of arguments` for more than one pattern.
    """
    if len(argv) > 3:
        raise subcommand_syntax_error("PUBSUB", argv[1])
    return s.server.pubsub.active_shard_channels(argv[2] if len(argv) == 3 else None)


@subcommand("PUBSUB", "SHARDNUMSUB", arity=-2, flags=PUBSUB | LOADING | STALE)
def pubsub_shardnumsub(s: Session, argv: list[bytes]) -> Any:
    """PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]

    The number of subscribers of each shard channel.

    Example: `PUBSUB SHARDNUMSUB orders` → `orders 1`.

    Reply: flat array of channel, count pairs.
    """
    pubsub = s.server.pubsub
    reply: list[Any] = []
    for channel in argv[2:]:
        reply += [channel, pubsub.shard_numsub(channel)]
    return reply
