"""The pub/sub registry says when anyone listens at all (job status events hang on it)."""

from __future__ import annotations

from typing import Any

from jobcached.server.pubsub import PubSub


class Sub:
    def __init__(self) -> None:
        self.sub_channels: dict[bytes, None] = {}
        self.sub_patterns: dict[bytes, None] = {}
        self.sub_shard_channels: dict[bytes, None] = {}
        self.got: list[list[Any]] = []

    def deliver(self, message: list[Any]) -> None:
        self.got.append(message)


def test_active_flips_once_each_way() -> None:
    registry = PubSub()
    flips: list[bool] = []
    registry.on_active_change = flips.append
    a, b = Sub(), Sub()
    registry.subscribe(a, b"__job__:1")
    registry.subscribe(b, b"__job__:1")
    registry.psubscribe(b, b"__queue__:*")
    assert flips == [True] and registry.active
    registry.unsubscribe(a, b"__job__:1")
    registry.drop(b)
    assert flips == [True, False] and not registry.active
    registry.psubscribe(a, b"*")
    registry.punsubscribe(a, b"*")
    assert flips == [True, False, True, False]


def test_shard_channels_are_a_namespace_of_their_own() -> None:
    registry = PubSub()
    plain, shard = Sub(), Sub()
    registry.subscribe(plain, b"orders")
    registry.psubscribe(plain, b"*")
    assert registry.ssubscribe(shard, b"orders") and not registry.ssubscribe(shard, b"orders")
    assert registry.spublish(b"orders", b"x") == 1
    assert shard.got == [[b"smessage", b"orders", b"x"]] and plain.got == []
    assert registry.active_shard_channels(b"ord*") == [b"orders"]
    assert registry.shard_numsub(b"orders") == 1 and registry.numsub(b"orders") == 1
    registry.drop(shard)
    assert registry.shard_channels == {} and registry.spublish(b"orders", b"y") == 0
