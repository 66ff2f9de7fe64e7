"""slots.py: Redis Cluster hash slots, CRC16-XMODEM and {hash tags}."""

from __future__ import annotations

import pytest

from jobcached.cache import key_slot

# (key, slot) pairs read from `CLUSTER KEYSLOT` on a cluster-enabled redis-server 7.0.
SLOT_TABLE = [
    (b"123456789", 12739),  # the CRC16-XMODEM check value 0x31C3 of the cluster spec
    (b"foo", 12182),
    (b"bar", 5061),
    (b"hello", 866),
    (b"", 0),
    (b"{user1000}.following", 3443),
    (b"foo{}{bar}", 8363),  # empty tag: the whole key is hashed
    (b"foo{{bar}}zap", 4015),  # tag runs from the first { to the next }: "{bar"
]


@pytest.mark.parametrize(("key", "slot"), SLOT_TABLE)
def test_key_slot_matches_redis_cluster(key: bytes, slot: int) -> None:
    assert key_slot(key) == slot


def test_hash_tags() -> None:
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers")
    assert key_slot(b"{user1000}.following") == key_slot(b"user1000")
    assert key_slot(b"foo{{bar}}zap") == key_slot(b"{bar")
    assert key_slot(b"foo{bar}{zap}") == key_slot(b"bar")
    assert key_slot(b"foo{}{bar}") != key_slot(b"bar")
