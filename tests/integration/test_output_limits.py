"""Client output buffer limits hold for every client, against a real server process.

The scenario of issue 13: a RESP3 client subscribes, then blocks (`BLPOP x 0`) and never
reads. Published messages used to be parked behind the blocked reply, invisible to CLIENT LIST
(`omem=0`) and to the pubsub limit, so 200 MB published grew the server by 186 MB. Redis sends
a blocked client its messages at once; the bytes it does not read are its pending output.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import redis

from tests.conftest import RedisServerProcess, ServerProcess

CHUNK = b"x" * 65536
SUBSCRIBED = b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
#: The issue's figure: publishing this much to the blocked subscriber grew RSS by 186 MB.
PUBLISHED_BYTES = 200 * 1024**2
#: Default pubsub hard limit (32 MB) plus room for the interpreter's own churn.
RSS_GROWTH_BOUND_BYTES = 96 * 1024**2


def blocked_subscriber(port: int, rcvbuf: int | None = None) -> socket.socket:
    """HELLO 3, SUBSCRIBE c, BLPOP x 0 on a raw socket; returns once subscribed."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"HELLO 3\r\nSUBSCRIBE c\r\nBLPOP x 0\r\n")
    data = b""
    while not data.endswith(SUBSCRIBED):
        chunk = sock.recv(65536)
        assert chunk, f"closed before subscribing: {data!r}"
        data += chunk
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def client_fields(r: redis.Redis, cmd: str) -> dict[str, str]:
    """CLIENT LIST fields of the one client whose last command is `cmd`."""
    lines = [line for line in r.execute_command("CLIENT", "LIST").decode().splitlines()
             if f" cmd={cmd} " in line]
    assert len(lines) == 1, lines
    return dict(field.split("=", 1) for field in lines[0].split())


def test_a_blocked_resp3_subscriber_gets_messages_as_redis_sends_them(
        server: ServerProcess, redis_server: RedisServerProcess) -> None:
    message = b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n"
    for srv in (redis_server, server):
        r = srv.client()
        r.delete("x")
        sub = blocked_subscriber(srv.port)
        assert r.publish("c", "hi") == 1
        assert recv_exactly(sub, len(message)) == message, type(srv).__name__
        r.rpush("x", "v")
        reply = b"*2\r\n$1\r\nx\r\n$1\r\nv\r\n"
        assert recv_exactly(sub, len(reply)) == reply
        sub.close()
        r.close()


def test_a_blocked_subscriber_that_never_reads_shows_in_omem_and_is_closed(
        start_server: Any) -> None:
    srv: ServerProcess = start_server()
    sub = blocked_subscriber(srv.port, rcvbuf=4096)
    r = srv.client()
    rss_before = srv.rss_bytes()
    for _ in range(12 * 16):  # 12 MB: far past what the sockets' kernel buffers hold
        assert r.publish("c", CHUNK) == 1
    fields = client_fields(r, "blpop")
    assert int(fields["omem"]) >= 4 * 1024**2, fields
    assert int(fields["tot-mem"]) >= int(fields["omem"])
    assert "P" in fields["flags"]
    delivered = 1
    for _ in range(PUBLISHED_BYTES // len(CHUNK)):
        delivered = r.publish("c", CHUNK)
        if delivered == 0:
            break
    assert delivered == 0, "the blocked subscriber was never disconnected"
    growth = srv.rss_bytes() - rss_before
    print(f"RSS growth after publishing to the blocked subscriber: {growth / 1024**2:.1f} MB")
    assert growth < RSS_GROWTH_BOUND_BYTES, growth
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 1
    assert r.execute_command("PUBSUB", "NUMSUB", "c") == [b"c", 0]
    assert r.ping() is True
    sub.close()
    r.close()


def test_the_pubsub_soft_limit_closes_a_subscriber_above_it_for_soft_seconds(
        start_server: Any) -> None:
    srv: ServerProcess = start_server("--client-output-buffer-limit-pubsub-soft", "1mb",
                                      "--client-output-buffer-limit-pubsub-soft-seconds", "1")
    sub = blocked_subscriber(srv.port, rcvbuf=4096)
    r = srv.client()
    for _ in range(16 * 16):  # 16 MB pending: above the soft limit, below the hard one
        assert r.publish("c", CHUNK) == 1
    assert int(client_fields(r, "blpop")["omem"]) >= 1024**2
    time.sleep(2.1)  # more than soft-seconds above the soft limit (Redis counts whole seconds)
    r.publish("c", CHUNK)  # the limit is checked when output is added, as in Redis
    assert r.publish("c", CHUNK) == 0
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 1
    sub.close()
    r.close()
