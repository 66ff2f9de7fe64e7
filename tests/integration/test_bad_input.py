"""Hostile and malformed input over real sockets: every case gets Redis' error or a close,
and the server keeps serving everyone else with bounded memory."""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import RawClient, ServerProcess

PROTO = b"-ERR Protocol error: "

# (name, bytes sent, expected reply prefix, connection closed afterwards?)
CASES = [
    ("huge multibulk count", b"*99999999999\r\n", PROTO + b"invalid multibulk length\r\n", True),
    ("multibulk over the limit", b"*1048577\r\n", PROTO + b"invalid multibulk length\r\n", True),
    ("non-numeric count", b"*abc\r\n", PROTO + b"invalid multibulk length\r\n", True),
    ("negative bulk length", b"*1\r\n$-5\r\n", PROTO + b"invalid bulk length\r\n", True),
    ("oversize bulk", b"*1\r\n$600000000\r\n", PROTO + b"invalid bulk length\r\n", True),
    ("non-numeric bulk length", b"*1\r\n$x\r\n", PROTO + b"invalid bulk length\r\n", True),
    ("integer instead of bulk", b"*1\r\n:1\r\n", PROTO + b"expected '$', got ':'\r\n", True),
    ("simple string in request", b"*2\r\n$3\r\nGET\r\n+x\r\n",
     PROTO + b"expected '$', got '+'\r\n", True),
    ("70 KB without CRLF", b"A" * 70_000, PROTO + b"too big inline request\r\n", True),
    ("70 KB count header", b"*" + b"1" * 70_000, PROTO + b"too big mbulk count string\r\n", True),
    ("70 KB bulk header", b"*1\r\n$" + b"9" * 70_000, PROTO + b"too big bulk count string\r\n",
     True),
    ("unbalanced double quote", b'SET k "abc\r\n', PROTO + b"unbalanced quotes in request\r\n",
     True),
    ("unbalanced single quote", b"SET k 'abc\r\n", PROTO + b"unbalanced quotes in request\r\n",
     True),
    ("text glued to a quote", b'SET k "a"b\r\n', PROTO + b"unbalanced quotes in request\r\n",
     True),
    ("binary garbage line", b"\x01\xff\xfe\x80garbage\r\n", b"-ERR unknown command '", False),
    ("NUL inside a name", b"PI\x00NG\r\n", b"-ERR unknown command 'PI\x00NG'", False),
    ("bulk outside an array", b"$5\r\nxxxxx\r\n",
     b"-ERR unknown command '$5', with args beginning with: \r\n"
     b"-ERR unknown command 'xxxxx', with args beginning with: \r\n", False),
    ("unknown command", b"FLY me\r\n",
     b"-ERR unknown command 'FLY', with args beginning with: 'me' \r\n", False),
    ("wrong arity", b"*1\r\n$3\r\nGET\r\n",
     b"-ERR wrong number of arguments for 'get' command\r\n", False),
    ("bad HELLO version", b"HELLO abc\r\n",
     b"-ERR Protocol version is not an integer or out of range\r\n", False),
    ("empty multibulk is ignored", b"*0\r\n*-1\r\nPING\r\n", b"+PONG\r\n", False),
    ("blank lines are ignored", b"\r\n\n\r\nPING\r\n", b"+PONG\r\n", False),
    ("valid then bad type byte", b"*1\r\n$4\r\nPING\r\n*1\r\n&4\r\n",
     b"+PONG\r\n" + PROTO + b"expected '$', got '&'\r\n", True),
    ("long argument list is echoed truncated", b"NOPE " + b"a" * 500 + b"\r\n",
     b"-ERR unknown command 'NOPE', with args beginning with: '" + b"a" * 128 + b"' \r\n", False),
]


def _others_still_served(server: ServerProcess) -> None:
    other = RawClient(server.port)
    other.transcript(b"PING\r\n", b"+PONG\r\n")
    other.close()


@pytest.mark.parametrize(("name", "data", "expected", "closes"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(server: ServerProcess, name: str, data: bytes, expected: bytes,
                   closes: bool) -> None:
    client = RawClient(server.port)
    client.send(data)
    if closes:
        reply = client.recv_until_closed()
        assert reply == expected, f"{name}: got {reply[:200]!r}"
    else:
        reply = client.recv_exactly(len(expected))
        assert reply == expected, f"{name}: got {reply[:200]!r}"
        while not reply.endswith(b"\r\n"):  # the rest of an error line we matched a prefix of
            reply += client.recv_exactly(1)
        client.transcript(b"PING\r\n", b"+PONG\r\n")  # the connection is still usable
    client.close()
    _others_still_served(server)


def test_incomplete_requests_then_hang_up(server: ServerProcess) -> None:
    for partial in (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n", b"*1000000\r\n", b"*1\r\n$100\r\nabc",
                    b"PING"):
        client = RawClient(server.port)
        client.send(partial)
        client.close()
    _others_still_served(server)


def test_client_that_pipelines_and_never_reads_is_bounded(server: ServerProcess) -> None:
    """A client pipelines PINGs (over 10^6 of them) and never reads: once its replies back up
    the server stops reading it, so the sender stalls, memory stays bounded, and other
    clients are served meanwhile."""
    rss_before = server.rss_bytes()
    flood = socket.create_connection(("127.0.0.1", server.port))
    flood.setblocking(False)
    data = memoryview(b"*1\r\n$4\r\nPING\r\n" * 10_000_000)  # 140 MB, never all accepted
    sent = 0
    last_progress = time.monotonic()
    deadline = last_progress + 60
    while time.monotonic() < deadline and time.monotonic() - last_progress < 2:
        try:
            n = flood.send(data[sent : sent + 1 << 20])
        except BlockingIOError:
            time.sleep(0.01)
            continue
        sent += n
        last_progress = time.monotonic()
    stalled = time.monotonic() - last_progress >= 2
    _others_still_served(server)
    growth = server.rss_bytes() - rss_before
    flood.close()
    assert sent // 14 > 1_000_000, f"only {sent // 14} commands were accepted"
    assert stalled, "the server kept reading a client that never reads"
    assert growth < 64 * 1024 * 1024, f"server grew by {growth} bytes"
    _others_still_served(server)


def test_inline_commands_over_a_raw_socket(raw: RawClient) -> None:
    raw.transcript(b"PING\r\n", b"+PONG\r\n")
    raw.transcript(b"SET inline-key 'hello world'\r\n", b"+OK\r\n")
    raw.transcript(b"GET inline-key\r\n", b"$11\r\nhello world\r\n")
    raw.transcript(b'ECHO "tab\\there"\r\n', b"$8\r\ntab\there\r\n")
    raw.transcript(b"PING\nPING\n", b"+PONG\r\n+PONG\r\n")


def test_pipelined_replies_arrive_in_order(raw: RawClient) -> None:
    request = b"".join(b"*2\r\n$4\r\nECHO\r\n$%d\r\n%d\r\n" % (len(str(i)), i)
                       for i in range(1000))
    expected = b"".join(b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(1000))
    raw.transcript(request, expected)
