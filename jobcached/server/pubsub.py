"""The pub/sub registry: who listens to which channel or pattern. No I/O.

Channels map to the subscribers listening on them, patterns to their compiled glob and the
subscribers listening through them. Each subscriber also keeps its own channels and patterns (in
subscription order), so leaving everything at disconnect or RESET costs what it holds, not what
the server holds. Delivery is the subscriber's business: `publish` calls `subscriber.deliver(msg)`
with the message as a list (`[b"message", channel, data]` or `[b"pmessage", pattern, channel,
data]`), and the network side writes it as a push.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from jobcached.cache.glob import Glob, compile_glob, glob_match


class Subscriber(Protocol):
    """What the registry needs of a subscriber (a Session)."""

    #: channel -> None, pattern -> None and shard channel -> None: insertion-ordered sets
    sub_channels: dict[bytes, None]
    sub_patterns: dict[bytes, None]
    sub_shard_channels: dict[bytes, None]

    def deliver(self, message: list[Any]) -> None: ...


class PubSub:
    """Channels and patterns to their subscribers; see the module docstring."""

    def __init__(self) -> None:
        #: channel -> subscribers, in subscription order (Redis delivers in that order)
        self.channels: dict[bytes, dict[Subscriber, None]] = {}
        #: pattern -> (compiled glob, subscribers)
        self.patterns: dict[bytes, tuple[Glob, dict[Subscriber, None]]] = {}
        #: shard channel -> subscribers (SSUBSCRIBE): a namespace of its own, no patterns
        self.shard_channels: dict[bytes, dict[Subscriber, None]] = {}
        #: whether anyone listens at all; `on_active_change(active)` hears when that flips
        #: (the server detaches job status events while nobody could receive them)
        self.active = False
        self.on_active_change: Callable[[bool], None] | None = None

    def _check_active(self) -> None:
        active = bool(self.channels or self.patterns)
        if active is not self.active:
            self.active = active
            if self.on_active_change is not None:
                self.on_active_change(active)

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, sub: Subscriber, channel: bytes) -> bool:
        """Add sub to channel; False if it was already there."""
        if channel in sub.sub_channels:
            return False
        sub.sub_channels[channel] = None
        self.channels.setdefault(channel, {})[sub] = None
        self._check_active()
        return True

    def unsubscribe(self, sub: Subscriber, channel: bytes) -> bool:
        """Remove sub from channel; False if it was not there."""
        if sub.sub_channels.pop(channel, False) is False:
            return False
        subs = self.channels.get(channel)
        if subs is not None:
            subs.pop(sub, None)
            if not subs:
                del self.channels[channel]
                self._check_active()
        return True

    def psubscribe(self, sub: Subscriber, pattern: bytes) -> bool:
        if pattern in sub.sub_patterns:
            return False
        sub.sub_patterns[pattern] = None
        entry = self.patterns.get(pattern)
        if entry is None:
            entry = self.patterns[pattern] = (compile_glob(pattern), {})
        entry[1][sub] = None
        self._check_active()
        return True

    def punsubscribe(self, sub: Subscriber, pattern: bytes) -> bool:
        if sub.sub_patterns.pop(pattern, False) is False:
            return False
        entry = self.patterns.get(pattern)
        if entry is not None:
            entry[1].pop(sub, None)
            if not entry[1]:
                del self.patterns[pattern]
                self._check_active()
        return True

    def ssubscribe(self, sub: Subscriber, channel: bytes) -> bool:
        """Add sub to a shard channel; False if it was already there."""
        if channel in sub.sub_shard_channels:
            return False
        sub.sub_shard_channels[channel] = None
        self.shard_channels.setdefault(channel, {})[sub] = None
        return True

    def sunsubscribe(self, sub: Subscriber, channel: bytes) -> bool:
        """Remove sub from a shard channel; False if it was not there."""
        if sub.sub_shard_channels.pop(channel, False) is False:
            return False
        subs = self.shard_channels.get(channel)
        if subs is not None:
            subs.pop(sub, None)
            if not subs:
                del self.shard_channels[channel]
        return True

    def drop(self, sub: Subscriber) -> None:
        """Forget every subscription of sub (disconnect, RESET), without telling it."""
        for channel in list(sub.sub_channels):
            self.unsubscribe(sub, channel)
        for pattern in list(sub.sub_patterns):
            self.punsubscribe(sub, pattern)
        for channel in list(sub.sub_shard_channels):
            self.sunsubscribe(sub, channel)

    # ------------------------------------------------------------------ publishing

    def has_listeners(self, channel: bytes) -> bool:
        """Would a message on channel reach anyone? (Cheap test before building a message.)"""
        if channel in self.channels:
            return True
        return any(glob.match(channel) for glob, _ in self.patterns.values())

    def publish(self, channel: bytes, data: bytes) -> int:
        """Deliver data to channel's subscribers, then to matching patterns' subscribers;
        returns how many deliveries were made (Redis' PUBLISH reply)."""
        receivers = 0
        subs = self.channels.get(channel)
        if subs:
            message = [b"message", channel, data]
            for sub in tuple(subs):  # a delivery may disconnect its subscriber
                sub.deliver(message)
                receivers += 1
        if self.patterns:
            for pattern, (glob, psubs) in tuple(self.patterns.items()):
                if glob.match(channel):
                    message = [b"pmessage", pattern, channel, data]
                    for sub in tuple(psubs):
                        sub.deliver(message)
                        receivers += 1
        return receivers

    def spublish(self, channel: bytes, data: bytes) -> int:
        """SPUBLISH: deliver to the shard channel's subscribers (patterns never match shard
        channels); returns how many received it."""
        subs = self.shard_channels.get(channel)
        if not subs:
            return 0
        message = [b"smessage", channel, data]
        for sub in tuple(subs):
            sub.deliver(message)
        return len(subs)

    # ------------------------------------------------------------------ introspection

    def active_channels(self, pattern: bytes | None = None) -> list[bytes]:
        """PUBSUB CHANNELS: channels with at least one subscriber, optionally matching."""
        if pattern is None:
            return list(self.channels)
        return [c for c in self.channels if glob_match(pattern, c)]

    def numsub(self, channel: bytes) -> int:
        return len(self.channels.get(channel, ()))

    def numpat(self) -> int:
        return len(self.patterns)

    def active_shard_channels(self, pattern: bytes | None = None) -> list[bytes]:
        """PUBSUB SHARDCHANNELS: shard channels with a subscriber, optionally matching."""
        if pattern is None:
            return list(self.shard_channels)
        return [c for c in self.shard_channels if glob_match(pattern, c)]

    def shard_numsub(self, channel: bytes) -> int:
        return len(self.shard_channels.get(channel, ()))
