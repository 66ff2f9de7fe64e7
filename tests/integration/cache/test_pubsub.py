"""Pub/sub against redis-server 7.0, frame by frame over raw sockets (RESP2 and RESP3).

redis-py reads pushes its own way, so these tests parse frames themselves and keep their type
(`>` push versus `*` array, `_` versus `$-1` null): the comparison is exact.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RedisServerProcess, ServerProcess

_names = itertools.count()


def unique(prefix: str) -> bytes:
    """A channel name no other test uses (the servers are shared by the module)."""
    return f"{prefix}{next(_names)}".encode()


def command(*argv: bytes | str | int) -> bytes:
    parts = [str(a).encode() if not isinstance(a, bytes) else a for a in argv]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts)


class FrameReader:
    """Read whole RESP2/RESP3 frames from a socket, as (type, value) trees."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def frame(self) -> tuple[str, Any]:
        line = self._line()
        kind, rest = chr(line[0]), line[1:]
        if kind in "$=":
            size = int(rest)
            return (kind, None) if size < 0 else (kind, self._exactly(size))
        if kind in "*>~":
            size = int(rest)
            return (kind, None) if size < 0 else (kind, [self.frame() for _ in range(size)])
        if kind == "%":
            return (kind, [(self.frame(), self.frame()) for _ in range(int(rest))])
        return (kind, rest)  # + - : _ , # (


class Conn:
    def __init__(self, port: int, protocol: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = FrameReader(self.sock)
        if protocol == 3:
            self.call("HELLO", 3)

    def send(self, *argv: bytes | str | int) -> None:
        self.sock.sendall(command(*argv))

    def read(self) -> tuple[str, Any]:
        return self.reader.frame()

    def call(self, *argv: bytes | str | int) -> tuple[str, Any]:
        self.send(*argv)
        return self.read()

    def close(self) -> None:
        self.sock.close()


class RawPair:
    """The same connection to both servers; every frame read is compared."""

    def __init__(self, ours: int, theirs: int, protocol: int) -> None:
        self.protocol = protocol
        self.conns = (Conn(ours, protocol), Conn(theirs, protocol))

    def send(self, *argv: bytes | str | int) -> None:
        for conn in self.conns:
            conn.send(*argv)

    def read(self) -> tuple[str, Any]:
        ours, theirs = (conn.read() for conn in self.conns)
        assert ours == theirs, f"jobcached {ours!r} != redis {theirs!r}"
        return theirs

    def read_unordered(self, n: int) -> list[tuple[str, Any]]:
        """n frames whose order Redis leaves to its hash tables (patterns matching one
        channel), compared as sorted lists."""
        ours, theirs = ([conn.read() for _ in range(n)] for conn in self.conns)
        assert sorted(map(repr, ours)) == sorted(map(repr, theirs))
        return theirs

    def check(self, *argv: bytes | str | int, frames: int = 1) -> list[tuple[str, Any]]:
        self.send(*argv)
        return [self.read() for _ in range(frames)]

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pairs(request: pytest.FixtureRequest, server: ServerProcess,
          redis_server: RedisServerProcess) -> Iterator[Any]:
    opened: list[RawPair] = []

    def open_pair() -> RawPair:
        p = RawPair(server.port, redis_server.port, request.param)
        opened.append(p)
        return p

    yield open_pair
    for p in opened:
        p.close()


def bulk(value: bytes) -> tuple[str, bytes]:
    return ("$", value)


def test_subscribe_publish_unsubscribe(pairs: Any) -> None:
    sub, pub = pairs(), pairs()
    push = ">" if sub.protocol == 3 else "*"
    a, b = unique("news"), unique("sport")
    confirms = sub.check("SUBSCRIBE", a, b, a, frames=3)
    assert confirms[2] == (push, [bulk(b"subscribe"), bulk(a), (":", b"2")])
    assert pub.check("PUBLISH", a, "hello") == [(":", b"1")]
    assert sub.read() == (push, [bulk(b"message"), bulk(a), bulk(b"hello")])
    pub.check("PUBLISH", unique("nobody"), "x")
    sub.check("UNSUBSCRIBE", a, frames=1)
    assert pub.check("PUBLISH", a, "gone") == [(":", b"0")]
    pub.check("PUBLISH", b, "still")
    sub.read()
    sub.check("UNSUBSCRIBE", frames=1)
    sub.check("UNSUBSCRIBE", frames=1)  # nothing left: one `unsubscribe nil 0`
    sub.check("PUNSUBSCRIBE", frames=1)


def test_patterns(pairs: Any) -> None:
    sub, pub = pairs(), pairs()
    prefix = unique("jobs").decode()
    sub.check("PSUBSCRIBE", f"{prefix}:*", f"{prefix}:q?", frames=2)
    sub.check("SUBSCRIBE", f"{prefix}:q1", frames=1)
    assert pub.check("PUBLISH", f"{prefix}:q1", "m") == [(":", b"3")]
    sub.read()  # the message first, then the pmessages (in an order Redis does not promise)
    sub.read_unordered(2)
    assert pub.check("PUBLISH", f"{prefix}:long", "m") == [(":", b"1")]
    sub.read()
    assert pub.check("PUBLISH", f"other{prefix}", "m") == [(":", b"0")]
    sub.check("PUNSUBSCRIBE", f"{prefix}:*", frames=1)
    sub.check("PUNSUBSCRIBE", frames=1)
    sub.check("UNSUBSCRIBE", frames=1)


def test_pubsub_introspection(pairs: Any) -> None:
    sub, other, query = pairs(), pairs(), pairs()
    prefix = unique("intro").decode()
    numpat_before = [c.call("PUBSUB", "NUMPAT") for c in query.conns]
    sub.check("SUBSCRIBE", f"{prefix}:a", f"{prefix}:b", frames=2)
    other.check("SUBSCRIBE", f"{prefix}:a", frames=1)
    other.check("PSUBSCRIBE", f"{prefix}:*", frames=1)
    query.send("PUBSUB", "CHANNELS", f"{prefix}:*")
    ours, theirs = (c.read() for c in query.conns)  # hash order in Redis: compare sorted
    assert ours[0] == theirs[0] and sorted(ours[1]) == sorted(theirs[1])
    assert sorted(theirs[1]) == [bulk(f"{prefix}:a".encode()), bulk(f"{prefix}:b".encode())]
    query.check("PUBSUB", "NUMSUB", f"{prefix}:a", f"{prefix}:b", f"{prefix}:c")
    query.check("PUBSUB", "NUMSUB")
    query.check("PUBSUB", "CHANNELS", "a", "b")
    after = [c.call("PUBSUB", "NUMPAT") for c in query.conns]
    assert [int(x[1]) - int(y[1]) for x, y in zip(after, numpat_before, strict=True)] == [1, 1]
    sub.check("RESET")  # leaves every channel
    query.check("PUBSUB", "NUMSUB", f"{prefix}:a", f"{prefix}:b")


def test_resp2_subscribe_mode(pairs: Any) -> None:
    sub = pairs()
    channel = unique("mode")
    sub.check("SUBSCRIBE", channel, frames=1)
    if sub.protocol == 2:
        sub.check("GET", "k")
        sub.check("CLIENT", "ID")
        sub.check("PING")
        sub.check("PING", "hi")
    else:
        sub.check("SET", "pubsub-k", "v")
        sub.check("GET", "pubsub-k")
        sub.check("PING")
    sub.check("UNSUBSCRIBE", channel, frames=1)
    sub.check("PING")
    sub.check("GET", "nokey")


def test_own_messages_come_before_the_publish_reply(pairs: Any) -> None:
    p = pairs()
    channel = unique("self")
    p.check("SUBSCRIBE", channel, frames=1)
    # RESP2: refused in subscribe mode; RESP3: the push first, then PUBLISH's reply
    p.check("PUBLISH", channel, "me", frames=1 if p.protocol == 2 else 2)


def test_disconnect_unsubscribes(server: ServerProcess) -> None:
    conn = Conn(server.port, 2)
    channel = unique("bye")
    conn.call("SUBSCRIBE", channel)
    conn.close()
    r = server.client()
    for _ in range(100):
        if r.execute_command("PUBSUB", "NUMSUB", channel)[1] == 0:
            break
    assert r.execute_command("PUBSUB", "NUMSUB", channel) == [channel, 0]
