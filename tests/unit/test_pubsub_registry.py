"""The pub/sub registry says when anyone listens at all (job status events hang on it)."""

from __future__ import annotations

from typing import Any

from jobcached.pubsub import PubSub


class Sub:
    def __init__(self) -> None:
        self.sub_channels: dict[bytes, None] = {}
        self.sub_patterns: dict[bytes, None] = {}
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
