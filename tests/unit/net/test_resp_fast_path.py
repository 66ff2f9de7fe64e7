"""The parser's fast path (a whole read framed at once) against the general path.

Whatever the fast path frames must be exactly what the general path would read, one command
at a time, including when limits or authentication change between two pipelined commands.
The compiled codec frames one command per `gets()`; every test here holds for it too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcached.errors import ProtocolError
from jobcached.net.resp import ParserLimits
from tests.unit.net.codecs import Codec


def multibulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def drain(parser: Any) -> list[list[bytes]]:
    commands = []
    while (cmd := parser.gets()) is not None:
        commands.append(cmd)
    return commands


def one_byte_at_a_time(codec: Codec, data: bytes) -> list[list[bytes]]:
    """The reference: fed byte by byte, every command goes through the general path."""
    parser = codec.RequestParser()
    commands = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        commands += drain(parser)
    return commands


ARGUMENT = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"", b"\r\n", b"a\r\nb", b"$3", b"*2", b"\r", b"\n", b"x" * 5000]),
)
COMMAND = st.lists(ARGUMENT, min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(COMMAND, max_size=8), st.integers(min_value=1, max_value=4000),
       st.booleans())
def test_fuzz_fast_path_reads_what_the_general_path_reads(
        codec: Codec, commands: list[list[bytes]], step: int, with_inline: bool) -> None:
    """Invariant: any pipeline, cut into reads anywhere, yields the same commands as the same
    bytes fed one at a time (the general path), in the same order."""
    data = b"".join(multibulk(*c) for c in commands)
    expected = [list(c) for c in commands]
    if with_inline:
        data = b"PING\r\n" + data + b"ECHO x\r\n" + data
        expected = [[b"PING"], *expected, [b"ECHO", b"x"], *expected]
    parser = codec.RequestParser()
    got: list[list[bytes]] = []
    for i in range(0, len(data), step):
        parser.feed(data[i : i + step])
        got += drain(parser)
    assert got == expected
    assert one_byte_at_a_time(codec, data) == expected
    assert parser.buffered_bytes() == 0


def test_a_bulk_holding_crlf_inside_a_pipeline(codec: Codec) -> None:
    data = multibulk(b"SET", b"a", b"1") + multibulk(b"SET", b"b", b"x\r\n$1\r\ny") + \
        multibulk(b"GET", b"b")
    parser = codec.RequestParser()
    parser.feed(data)
    assert drain(parser) == [[b"SET", b"a", b"1"], [b"SET", b"b", b"x\r\n$1\r\ny"], [b"GET", b"b"]]


def test_non_canonical_headers_get_the_general_paths_errors(codec: Codec) -> None:
    parser = codec.RequestParser()
    parser.feed(multibulk(b"PING") + b"*1\r\n$04\r\nPING\r\n")
    assert parser.gets() == [b"PING"]
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.gets()


def test_commands_framed_ahead_count_in_the_query_buffer(codec: Codec) -> None:
    second = multibulk(b"SET", b"k", b"v")
    third = multibulk(b"GET", b"k")
    parser = codec.RequestParser()
    parser.feed(multibulk(b"PING") + second + third + b"*1\r\n")
    assert parser.gets() == [b"PING"]
    assert parser.buffered_bytes() == len(second) + len(third) + 4


def test_reads_arriving_while_commands_wait_keep_their_order(codec: Codec) -> None:
    """A blocked client does not run its pipelined commands, but its reads still arrive."""
    parser = codec.RequestParser()
    parser.feed(multibulk(b"BLPOP", b"q", b"0") + multibulk(b"GET", b"a"))
    assert parser.gets() == [b"BLPOP", b"q", b"0"]
    parser.feed(multibulk(b"GET", b"b"))
    assert drain(parser) == [[b"GET", b"a"], [b"GET", b"b"]]


def test_a_command_cut_by_the_end_of_a_read_is_completed_by_the_next(codec: Codec) -> None:
    data = multibulk(b"SET", b"k", b"v") * 3
    parser = codec.RequestParser()
    parser.feed(data[:30])
    first = drain(parser)
    parser.feed(data[30:])
    assert first + drain(parser) == [[b"SET", b"k", b"v"]] * 3


def test_a_limit_lowered_between_pipelined_commands_applies_to_the_next_one(codec: Codec) -> None:
    """CONFIG SET proto-max-bulk-len in a pipeline: Redis checks the next command against the
    new limit, so the commands framed ahead must be read again."""
    limits = ParserLimits()
    parser = codec.RequestParser(limits)
    parser.feed(multibulk(b"CONFIG", b"SET", b"proto-max-bulk-len", b"10")
                + multibulk(b"SET", b"k", b"x" * 20))
    assert parser.gets() == [b"CONFIG", b"SET", b"proto-max-bulk-len", b"10"]
    limits.max_bulk_bytes = 10
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.gets()


def test_losing_authentication_between_pipelined_commands_applies_its_limits(codec: Codec) -> None:
    """RESET with a password set: the next command is read with the unauthenticated bounds."""
    parser = codec.RequestParser()
    parser.feed(multibulk(b"RESET") + multibulk(*[b"x"] * 11))
    assert parser.gets() == [b"RESET"]
    parser.authenticated = False
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        parser.gets()


def test_small_limits_keep_every_command_on_the_general_path(codec: Codec) -> None:
    parser = codec.RequestParser(ParserLimits(max_bulk_bytes=4, max_multibulk_args=2))
    parser.feed(multibulk(b"GET", b"k") + multibulk(b"SET", b"k", b"v"))
    assert parser.gets() == [b"GET", b"k"]
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        parser.gets()
