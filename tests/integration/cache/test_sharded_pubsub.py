"""Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS|SHARDNUMSUB)
against redis-server 7.0, frame by frame over raw sockets under RESP2 and RESP3: shard channels
are a namespace of their own on one node."""

from __future__ import annotations

from typing import Any

from tests.integration.cache.test_pubsub import bulk, pairs, unique

__all__ = ["pairs"]  # the fixture, shared with test_pubsub


def test_ssubscribe_spublish_sunsubscribe(pairs: Any) -> None:
    sub, pub = pairs(), pairs()
    push = ">" if sub.protocol == 3 else "*"
    a, b = unique("orders"), unique("stock")
    confirms = sub.check("SSUBSCRIBE", a, b, a, frames=3)
    assert confirms[2] == (push, [bulk(b"ssubscribe"), bulk(a), (":", b"2")])
    assert pub.check("SPUBLISH", a, "created") == [(":", b"1")]
    assert sub.read() == (push, [bulk(b"smessage"), bulk(a), bulk(b"created")])
    pub.check("PUBLISH", a, "not-sharded")  # a plain channel of the same name: nobody
    pub.check("SPUBLISH", unique("nobody"), "x")
    sub.check("SUNSUBSCRIBE", a, frames=1)
    pub.check("SPUBLISH", a, "gone")
    pub.check("SPUBLISH", b, "still")
    sub.read()
    sub.check("SUNSUBSCRIBE", frames=1)
    sub.check("SUNSUBSCRIBE", frames=1)  # nothing left: one `sunsubscribe nil 0`
    sub.check("PING")


def test_counts_are_kept_apart_from_channels_and_patterns(pairs: Any) -> None:
    sub, pub = pairs(), pairs()
    plain, shard = unique("plain"), unique("shard")
    sub.check("SUBSCRIBE", plain)
    sub.check("PSUBSCRIBE", b"plain*")
    sub.check("SSUBSCRIBE", shard)  # count 1: shard channels only
    more = unique("more")
    sub.check("SUBSCRIBE", more)  # count 3: channels and patterns, not shard
    pub.check("SPUBLISH", shard, "s")
    sub.read()
    pub.check("PUBLISH", shard, "p")  # no plain subscriber of that name, no pattern match
    sub.check("UNSUBSCRIBE", plain, more, frames=2)
    sub.check("PUNSUBSCRIBE", frames=1)
    sub.check("SUNSUBSCRIBE", frames=1)


def test_resp2_subscribe_mode_holds_for_shard_subscribers(pairs: Any) -> None:
    sub = pairs()
    sub.check("SSUBSCRIBE", unique("mode"))
    sub.check("GET", "k")  # RESP2: refused in subscribe mode; RESP3: runs
    sub.check("PING")
    sub.check("SUNSUBSCRIBE", frames=1)
    sub.check("GET", "k")


def test_pubsub_shardchannels_and_shardnumsub(pairs: Any) -> None:
    sub, other, query = pairs(), pairs(), pairs()
    a, b = unique("sh-a"), unique("sh-b")
    sub.check("SSUBSCRIBE", a, b, frames=2)
    other.check("SSUBSCRIBE", a)
    query.check("PUBSUB", "SHARDNUMSUB", a, b, unique("none"))
    query.check("PUBSUB", "SHARDNUMSUB")
    query.check("PUBSUB", "SHARDCHANNELS", a)
    query.check("PUBSUB", "SHARDCHANNELS", b"sh-b*")
    query.check("PUBSUB", "SHARDCHANNELS", "x", "y")
    query.check("PUBSUB", "NUMSUB", a)  # shard subscribers are not channel subscribers
    query.check("SSUBSCRIBE")
    query.check("SPUBLISH", a)
    sub.check("SUNSUBSCRIBE", a, b, frames=2)
    other.check("SUNSUBSCRIBE", a)
    query.check("PUBSUB", "SHARDNUMSUB", a)
