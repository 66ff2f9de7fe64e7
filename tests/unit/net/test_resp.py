"""The codec alone: request framing, inline splitting, limits, and reply encoding.

Every framing and encoding test runs against both codecs (`codec`: the pure-Python one and the
compiled twin); `test_codec_differential.py` compares the two on hostile input.
"""

from __future__ import annotations

from typing import Any

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.errors import ProtocolError
from jobcached.net.replies import (
    NO_REPLY,
    NULL_ARRAY,
    OK,
    ErrorReply,
    Push,
    Simple,
    Verbatim,
)
from jobcached.net.resp import ParserLimits, split_args
from tests.unit.net.codecs import Codec


def parse_all(data: bytes, parser: Any) -> list[list[bytes]]:
    parser.feed(data)
    commands = []
    while (cmd := parser.gets()) is not None:
        commands.append(cmd)
    return commands


def multibulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


REQUESTS = [
    (multibulk(b"PING"), [[b"PING"]]),
    (multibulk(b"SET", b"k", b"v") + multibulk(b"GET", b"k"), [[b"SET", b"k", b"v"],
                                                                [b"GET", b"k"]]),
    (multibulk(b"SET", b"k", b""), [[b"SET", b"k", b""]]),
    (multibulk(b"SET", b"k", b"a\r\nb\x00\xff"), [[b"SET", b"k", b"a\r\nb\x00\xff"]]),
    (b"*0\r\n" + multibulk(b"PING"), [[b"PING"]]),
    (b"*-1\r\n" + multibulk(b"PING"), [[b"PING"]]),
    (b"PING\r\n", [[b"PING"]]),
    (b"PING\n", [[b"PING"]]),
    (b"\r\n\r\nPING\r\n", [[b"PING"]]),
    (b"  SET   k   v  \r\n", [[b"SET", b"k", b"v"]]),
    (b'SET k "a b\\n\\x41"\r\n', [[b"SET", b"k", b"a b\nA"]]),
    (b"SET k 'it\\'s'\r\n", [[b"SET", b"k", b"it's"]]),
    (b'SET k ""\r\n', [[b"SET", b"k", b""]]),
    (b"PING\r\n" + multibulk(b"ECHO", b"x"), [[b"PING"], [b"ECHO", b"x"]]),
]


@pytest.mark.parametrize(("data", "expected"), REQUESTS)
def test_request_vectors(codec: Codec, data: bytes, expected: list[list[bytes]]) -> None:
    assert parse_all(data, codec.RequestParser()) == expected


@pytest.mark.parametrize(("data", "expected"), REQUESTS)
def test_requests_split_at_every_byte_boundary(codec: Codec, data: bytes,
                                               expected: list[list[bytes]]) -> None:
    for cut in range(1, len(data)):
        parser = codec.RequestParser()
        got = parse_all(data[:cut], parser) + parse_all(data[cut:], parser)
        assert got == expected, cut


def test_requests_fed_one_byte_at_a_time(codec: Codec) -> None:
    data = b"".join(d for d, _ in REQUESTS)
    parser = codec.RequestParser()
    got = []
    for i in range(len(data)):
        got += parse_all(data[i : i + 1], parser)
    assert got == [c for _, cmds in REQUESTS for c in cmds]


BAD_REQUESTS = [
    (b"*99999999999\r\n", "invalid multibulk length"),
    (b"*1048577\r\n", "invalid multibulk length"),
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*+1\r\n", "invalid multibulk length"),
    (b"*1\r\n$-5\r\n", "invalid bulk length"),
    (b"*1\r\n$600000000\r\n", "invalid bulk length"),
    (b"*1\r\n$x\r\n", "invalid bulk length"),
    (b"*1\r\n:1\r\n", "expected '$', got ':'"),
    (b"*2\r\n$1\r\na\r\n+b\r\n", "expected '$', got '+'"),
    (b'SET k "abc\r\n', "unbalanced quotes in request"),
    (b"SET k 'abc\r\n", "unbalanced quotes in request"),
    (b'SET k "a"b\r\n', "unbalanced quotes in request"),
    (b"A" * (64 * 1024 + 1), "too big inline request"),
    (b"*" + b"1" * (64 * 1024 + 1), "too big mbulk count string"),
    (b"*1\r\n$" + b"1" * (64 * 1024 + 1), "too big bulk count string"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_REQUESTS)
def test_bad_requests_raise_protocol_errors(codec: Codec, data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_all(data, codec.RequestParser())
    assert info.value.message == reason


def test_unauthenticated_limits_are_small(codec: Codec) -> None:
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        parse_all(b"*11\r\n", codec.RequestParser(authenticated=False))
    with pytest.raises(ProtocolError, match="unauthenticated bulk length"):
        parse_all(b"*1\r\n$16385\r\n", codec.RequestParser(authenticated=False))
    assert parse_all(multibulk(b"AUTH", b"x" * 100), codec.RequestParser(authenticated=False))


def test_limits_are_configurable(codec: Codec) -> None:
    parser = codec.RequestParser(ParserLimits(max_bulk_bytes=10, max_multibulk_args=2,
                                              max_inline_bytes=100))
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parse_all(b"*1\r\n$11\r\n", parser)
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        parse_all(b"*3\r\n", codec.RequestParser(ParserLimits(max_multibulk_args=2)))


def test_a_huge_declared_bulk_buffers_only_what_arrived(codec: Codec) -> None:
    parser = codec.RequestParser()
    parser.feed(b"*1\r\n$500000000\r\n" + b"x" * 1000)
    assert parser.gets() is None
    assert parser.buffered_bytes() < 2000


def test_a_large_argument_arriving_in_chunks_is_assembled(codec: Codec) -> None:
    payload = bytes(range(256)) * 4096
    data = multibulk(b"SET", b"k", payload)
    parser = codec.RequestParser()
    got = []
    for i in range(0, len(data), 1000):
        got += parse_all(data[i : i + 1000], parser)
    assert got == [[b"SET", b"k", payload]]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_fuzz_any_bytes_parse_or_raise_protocol_error(codec: Codec, data: bytes,
                                                      step: int) -> None:
    """Invariant: garbage is parsed or rejected with ProtocolError, never another exception,
    and feeding it in pieces gives the same commands as feeding it whole."""
    whole: list[list[bytes]] | str
    try:
        whole = parse_all(data, codec.RequestParser())
    except ProtocolError as exc:
        whole = exc.message
    parser = codec.RequestParser()
    pieces: list[list[bytes]] = []
    try:
        for i in range(0, len(data), step):
            pieces += parse_all(data[i : i + step], parser)
        result: list[list[bytes]] | str = pieces
    except ProtocolError as exc:
        result = exc.message
    if isinstance(whole, str):
        assert result == whole
    else:
        assert result == whole


@given(st.lists(st.lists(st.binary(max_size=20), min_size=1, max_size=5), max_size=5))
def test_fuzz_encoded_commands_round_trip(codec: Codec, commands: list[list[bytes]]) -> None:
    data = b"".join(multibulk(*c) for c in commands)
    assert parse_all(data, codec.RequestParser()) == commands


def test_split_args_matches_redis_rules() -> None:
    assert split_args(b"a  b\tc") == [b"a", b"b", b"c"]
    assert split_args(b'"\\t\\r\\n\\b\\a\\\\\\""') == [b"\t\r\n\b\a\\\""]
    assert split_args(b'"\\xzz"') == [b"xzz"]
    assert split_args(b'"unterminated') is None
    assert split_args(b"") == []


# ------------------------------------------------------------------------------- replies


def decode(data: bytes, resp3: bool) -> object:
    """Decode with hiredis, the C parser redis-py uses: a real, independent reader."""
    reader = hiredis.Reader()
    reader.feed(data)
    value = reader.gets()
    assert reader.gets() is False, "one reply must encode to exactly one RESP value"
    return value


REPLIES = [
    (b"v", b"$1\r\nv\r\n", b"$1\r\nv\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (42, b":42\r\n", b":42\r\n"),
    (-7, b":-7\r\n", b":-7\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (Simple(b"QUEUED"), b"+QUEUED\r\n", b"+QUEUED\r\n"),
    (ErrorReply("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n"),
    ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    ({b"m"}, b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
    (Verbatim(b"a:1"), b"$3\r\na:1\r\n", b"=7\r\ntxt:a:1\r\n"),
    (Push([b"message", b"c", b"x"]), b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n",
     b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    ("text", b"$4\r\ntext\r\n", b"$4\r\ntext\r\n"),
    ([[b"nested", [1, 2]]], b"*1\r\n*2\r\n$6\r\nnested\r\n*2\r\n:1\r\n:2\r\n",
     b"*1\r\n*2\r\n$6\r\nnested\r\n*2\r\n:1\r\n:2\r\n"),
    # the shapes the compiled encoder formats itself, at the edges of its C integers
    ([b"a", b"", b"x" * 10], b"*3\r\n$1\r\na\r\n$0\r\n\r\n$10\r\n" + b"x" * 10 + b"\r\n",
     b"*3\r\n$1\r\na\r\n$0\r\n\r\n$10\r\n" + b"x" * 10 + b"\r\n"),
    ((b"t", b"u"), b"*2\r\n$1\r\nt\r\n$1\r\nu\r\n", b"*2\r\n$1\r\nt\r\n$1\r\nu\r\n"),
    (0, b":0\r\n", b":0\r\n"),
    (2**63 - 1, b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
    (-(2**63), b":-9223372036854775808\r\n", b":-9223372036854775808\r\n"),
    (Simple(b""), b"+\r\n", b"+\r\n"),
]


@pytest.mark.parametrize(("reply", "resp2", "resp3"), REPLIES)
def test_reply_vectors(codec: Codec, reply: object, resp2: bytes, resp3: bytes) -> None:
    assert codec.encode(reply, resp3=False) == resp2
    assert codec.encode(reply, resp3=True) == resp3


@pytest.mark.parametrize(("reply", "resp2", "resp3"), REPLIES)
def test_replies_decode_with_hiredis(reply: object, resp2: bytes, resp3: bytes) -> None:
    decode(resp2, resp3=False)
    decode(resp3, resp3=True)


def test_integers_beyond_64_bits_are_formatted_as_python_does(codec: Codec) -> None:
    """Not valid RESP (hiredis rejects them) but what Python-computed values give: the compiled
    encoder hands them to the pure one instead of overflowing."""
    assert codec.encode(2**70, resp3=False) == b":1180591620717411303424\r\n"
    assert codec.encode(-(2**64), resp3=True) == b":-18446744073709551616\r\n"


def test_no_reply_encodes_to_nothing(codec: Codec) -> None:
    assert codec.encode(NO_REPLY, resp3=True) == b""


def test_unknown_reply_types_are_a_bug(codec: Codec) -> None:
    with pytest.raises(TypeError):
        codec.encode(object(), resp3=False)
